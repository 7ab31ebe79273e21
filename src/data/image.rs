//! 8-bit images (gray or RGB, interleaved) and the pixel operations the transforms need: decoding with the
//! `image` crate (DICOM with `data::dicom`), PIL's antialiased bilinear resize (same fixed-point arithmetic), crops, flips, rotation.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Img {
    pub width: usize,
    pub height: usize,
    /// 1 (gray) or 3 (RGB)
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Img {
    pub fn new(width: usize, height: usize, channels: usize) -> Img {
        Img { width, height, channels, data: vec![0; width * height * channels] }
    }

    /// Decodes PNG (8/16-bit), JPEG, TIFF, GIF or DICOM (`.dcm`, or `DICM` at offset 128; see `data::dicom`);
    /// images without colour stay gray, 16-bit is scaled to 8.
    pub fn open(path: &Path) -> Result<Img> {
        let mut file = File::open(path).with_context(|| format!("cannot open image {}", path.display()))?;
        let mut head = Vec::with_capacity(132);
        (&mut file)
            .take(132)
            .read_to_end(&mut head)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .with_context(|| format!("cannot read image {}", path.display()))?;
        if super::dicom::is_dicom(path, &head) {
            return super::dicom::decode(path);
        }
        let decoded = image::ImageReader::new(BufReader::new(file))
            .with_guessed_format()
            .with_context(|| format!("cannot read image {}", path.display()))?
            .decode()
            .with_context(|| format!("cannot decode image {}", path.display()))?;
        Ok(Img::from_dynamic(decoded))
    }

    pub fn from_dynamic(decoded: image::DynamicImage) -> Img {
        let (width, height) = (decoded.width() as usize, decoded.height() as usize);
        if decoded.color().has_color() {
            Img { width, height, channels: 3, data: decoded.to_rgb8().into_raw() }
        } else {
            Img { width, height, channels: 1, data: decoded.to_luma8().into_raw() }
        }
    }

    /// Writes the image as PNG atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let bytes = self.encode_png()?;
        crate::atomic::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn encode_png(&self) -> Result<Vec<u8>> {
        let color = if self.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
        let mut bytes = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut bytes),
            &self.data,
            self.width as u32,
            self.height as u32,
            color,
        )
        .context("cannot encode an image as PNG")?;
        Ok(bytes)
    }

    pub fn crop(&self, left: usize, top: usize, width: usize, height: usize) -> Img {
        let mut out = Img::new(width, height, self.channels);
        let row = width * self.channels;
        for y in 0..height {
            let src = ((top + y) * self.width + left) * self.channels;
            out.data[y * row..(y + 1) * row].copy_from_slice(&self.data[src..src + row]);
        }
        out
    }

    pub fn hflip(&self) -> Img {
        let mut out = Img::new(self.width, self.height, self.channels);
        let c = self.channels;
        for y in 0..self.height {
            for x in 0..self.width {
                let (s, d) = ((y * self.width + x) * c, (y * self.width + self.width - 1 - x) * c);
                out.data[d..d + c].copy_from_slice(&self.data[s..s + c]);
            }
        }
        out
    }

    /// PIL `rotate(angle_degrees)` counter-clockwise about the centre, nearest neighbour, zero fill, same size.
    pub fn rotate_nearest(&self, degrees: f64) -> Img {
        let (sin, cos) = degrees.to_radians().sin_cos();
        let (cx, cy) = (self.width as f64 / 2.0, self.height as f64 / 2.0);
        let c = self.channels;
        let mut out = Img::new(self.width, self.height, c);
        for y in 0..self.height {
            for x in 0..self.width {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                // floor(v) for v >= 0 is the truncation `as usize` does; negative v is outside anyway
                let sx = cos * dx - sin * dy + cx;
                let sy = sin * dx + cos * dy + cy;
                if sx >= 0.0 && sy >= 0.0 && (sx as usize) < self.width && (sy as usize) < self.height {
                    let s = (sy as usize * self.width + sx as usize) * c;
                    let d = (y * self.width + x) * c;
                    out.data[d..d + c].copy_from_slice(&self.data[s..s + c]);
                }
            }
        }
        out
    }

    /// Nearest-neighbour resize (masks).
    pub fn resize_nearest(&self, width: usize, height: usize) -> Img {
        let c = self.channels;
        let mut out = Img::new(width, height, c);
        for y in 0..height {
            let sy = ((y as f64 + 0.5) * self.height as f64 / height as f64) as usize;
            for x in 0..width {
                let sx = ((x as f64 + 0.5) * self.width as f64 / width as f64) as usize;
                let s = (sy.min(self.height - 1) * self.width + sx.min(self.width - 1)) * c;
                out.data[(y * width + x) * c..(y * width + x + 1) * c].copy_from_slice(&self.data[s..s + c]);
            }
        }
        out
    }

    /// PIL's `resize((width, height), BILINEAR)`: separable, antialiased when shrinking, 8-bit fixed point.
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Img {
        let mut img = self.clone();
        if width != self.width {
            img = resample_pass(&img, width, true);
        }
        if height != self.height {
            img = resample_pass(&img, height, false);
        }
        img
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel: first input index and fixed-point weights (PIL's precompute_coeffs + normalize).
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let weights: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) / filter_scale).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let k = if total != 0.0 { w / total } else { *w };
                    let v = k * (1u32 << PRECISION_BITS) as f64;
                    (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn resample_pass(img: &Img, out_size: usize, horizontal: bool) -> Img {
    let c = img.channels;
    let (out_w, out_h) = if horizontal { (out_size, img.height) } else { (img.width, out_size) };
    let coeffs = coefficients(if horizontal { img.width } else { img.height }, out_size);
    let mut out = Img::new(out_w, out_h, c);
    // i32 as PIL: the weights sum to 2^22, so 255 * 2^22 + half stays below 2^31.
    let half = 1i32 << (PRECISION_BITS - 1);
    let clip = |sum: i32| (sum >> PRECISION_BITS).clamp(0, 255) as u8;
    if horizontal {
        let (in_row, out_row) = (img.width * c, out_w * c);
        for (row, orow) in img.data.chunks_exact(in_row).zip(out.data.chunks_exact_mut(out_row)) {
            for (x, (start, weights)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let taps = row[start * c + ch..].iter().step_by(c);
                    let sum = weights.iter().zip(taps).fold(half, |sum, (w, &v)| sum + v as i32 * w);
                    orow[x * c + ch] = clip(sum);
                }
            }
        }
    } else {
        // row by row: every output row is a weighted sum of whole input rows
        let row_len = img.width * c;
        let mut acc = vec![0i32; row_len];
        for ((start, weights), orow) in coeffs.iter().zip(out.data.chunks_exact_mut(row_len)) {
            acc.fill(half);
            for (k, w) in weights.iter().enumerate() {
                let row = &img.data[(start + k) * row_len..(start + k + 1) * row_len];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v as i32 * w;
                }
            }
            for (o, &a) in orow.iter_mut().zip(&acc) {
                *o = clip(a);
            }
        }
    }
    out
}
