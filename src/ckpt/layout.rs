//! Float32 tensors held by value (for origins whose layout differs from PyTorch's), and the two
//! layout changes TensorFlow/haiku weights need: HWIO kernels to OIHW, (1, 1, 1, C) to (C).

use anyhow::{Result, bail};

/// A contiguous little-endian float32 tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor32 {
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl Tensor32 {
    pub fn new(shape: Vec<usize>, data: Vec<u8>) -> Result<Tensor32> {
        let bytes = shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d));
        if bytes != Some(data.len()) {
            bail!("shape {shape:?} does not hold the {} bytes of float32 given", data.len());
        }
        Ok(Tensor32 { shape, data })
    }

    /// A convolution kernel stored (H, W, in, out) as PyTorch's (out, in, H, W).
    pub fn hwio_to_oihw(self) -> Result<Tensor32> {
        let [h, w, i, o] = self.shape[..] else {
            bail!("a convolution kernel has shape {:?}, not (H, W, in, out)", self.shape);
        };
        let mut out = vec![0u8; self.data.len()];
        for hh in 0..h {
            for ww in 0..w {
                for ii in 0..i {
                    for oo in 0..o {
                        let src = (((hh * w + ww) * i + ii) * o + oo) * 4;
                        let dst = (((oo * i + ii) * h + hh) * w + ww) * 4;
                        out[dst..dst + 4].copy_from_slice(&self.data[src..src + 4]);
                    }
                }
            }
        }
        Ok(Tensor32 { shape: vec![o, i, h, w], data: out })
    }

    /// A per-channel vector stored with leading unit dimensions, e.g. haiku's (1, 1, 1, C), as (C).
    pub fn to_vector(self) -> Result<Tensor32> {
        let (last, lead) = self.shape.split_last().map(|(l, r)| (*l, r)).unwrap_or((1, &[]));
        if lead.iter().any(|&d| d != 1) {
            bail!("a per-channel tensor has shape {:?}, not (1, ..., 1, C)", self.shape);
        }
        Ok(Tensor32 { shape: vec![last], data: self.data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize]) -> Tensor32 {
        let n: usize = shape.iter().product();
        Tensor32::new(shape.to_vec(), (0..n).flat_map(|x| (x as f32).to_le_bytes()).collect()).unwrap()
    }

    #[test]
    fn hwio_becomes_oihw() {
        let k = t(&[2, 3, 4, 5]).hwio_to_oihw().unwrap();
        assert_eq!(k.shape, [5, 4, 2, 3]);
        // element (o=4, i=1, h=1, w=2) was at (h=1, w=2, i=1, o=4)
        let at = (((4 * 4 + 1) * 2 + 1) * 3 + 2) * 4;
        let want = (((3 + 2) * 4 + 1) * 5 + 4) as f32; // h=1, w=2, i=1, o=4 in (2, 3, 4, 5)
        assert_eq!(f32::from_le_bytes(k.data[at..at + 4].try_into().unwrap()), want);
        assert!(t(&[3, 3, 2]).hwio_to_oihw().is_err());
        assert_eq!(t(&[1, 1, 1, 7]).to_vector().unwrap().shape, [7]);
        assert!(t(&[1, 2, 7]).to_vector().is_err());
    }
}
