//! 8-bit images (gray or RGB, interleaved) and the pixel operations the transforms need: decoding with the
//! `image` crate (DICOM with `data::dicom`), PIL's antialiased bilinear resize and nearest rotation (the same
//! fixed-point arithmetic and pass order, so the bytes equal Pillow's), crops, flips.

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

    /// Decodes PNG (8/16-bit), JPEG, TIFF, GIF or DICOM (`.dcm`, or `DICM` at offset 128; see `data::dicom`;
    /// the study's raw decoding); images without colour stay gray, 16-bit is scaled to 8. A raster image named
    /// `.dcm` (SIIM's masks carry their image's file name) is read as the raster it is.
    pub fn open(path: &Path) -> Result<Img> {
        Img::open_with(path, super::dicom::Decoding::Raw)
    }

    /// `open`, with `dicom` choosing how DICOM pixel data becomes 8 bits.
    pub fn open_with(path: &Path, dicom: super::dicom::Decoding) -> Result<Img> {
        let mut file = File::open(path).with_context(|| format!("cannot open image {}", path.display()))?;
        let mut head = Vec::with_capacity(132);
        (&mut file)
            .take(132)
            .read_to_end(&mut head)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .with_context(|| format!("cannot read image {}", path.display()))?;
        // DICM at 128 decides; a `.dcm` name only when the bytes are no raster format (a preamble may hold one)
        let magic = head.get(128..132) == Some(b"DICM".as_slice());
        if magic || (super::dicom::is_dicom(path, &head) && image::guess_format(&head).is_err()) {
            return super::dicom::decode(path, dicom);
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
        let mut out = self.clone();
        let c = self.channels;
        for row in out.data.chunks_exact_mut(self.width * c) {
            if c == 1 {
                row.reverse();
            } else {
                for x in 0..self.width / 2 {
                    let (l, r) = (x * c, (self.width - 1 - x) * c);
                    for ch in 0..c {
                        row.swap(l + ch, r + ch);
                    }
                }
            }
        }
        out
    }

    /// PIL `rotate(degrees)` counter-clockwise about the centre, nearest neighbour, zero fill, same size.
    pub fn rotate_nearest(&self, degrees: f64) -> Img {
        self.flip_rotate_nearest(false, degrees)
    }

    /// `hflip()` (when `flip`) then `rotate_nearest(degrees)`, in one pass with the same result.
    ///
    /// PIL's `Image.rotate` builds the inverse affine matrix with each entry rounded to 15 decimals, and
    /// `ImagingTransformAffine` walks it in 16.16 fixed point, adding the matrix columns pixel by pixel and row
    /// by row; this does the same, so the pixels picked are PIL's own.
    pub fn flip_rotate_nearest(&self, flip: bool, degrees: f64) -> Img {
        let (w, h, c) = (self.width, self.height, self.channels);
        let round15 = |v: f64| format!("{v:.15}").parse::<f64>().unwrap_or(v);
        let theta = -degrees.rem_euclid(360.0).to_radians();
        let (a, b, d, e) = (round15(theta.cos()), round15(theta.sin()), round15(-theta.sin()), round15(theta.cos()));
        let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
        let cst = a * -cx + b * -cy + 0.0 + cx;
        let fst = d * -cx + e * -cy + 0.0 + cy;
        let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i32;
        let (a0, a1, a3, a4) = (fix(a), fix(b), fix(d), fix(e));
        let (mut row_x, mut row_y) = (fix(cst + a * 0.5 + b * 0.5), fix(fst + d * 0.5 + e * 0.5));
        let mut out = Img::new(w, h, c);
        for orow in out.data.chunks_exact_mut(w * c) {
            let (mut xx, mut yy) = (row_x, row_y);
            for o in orow.chunks_exact_mut(c) {
                let (xin, yin) = (xx >> 16, yy >> 16);
                if (0..w as i32).contains(&xin) && (0..h as i32).contains(&yin) {
                    let sx = if flip { w - 1 - xin as usize } else { xin as usize };
                    let s = (yin as usize * w + sx) * c;
                    if c == 1 {
                        o[0] = self.data[s];
                    } else {
                        o.copy_from_slice(&self.data[s..s + c]);
                    }
                }
                xx = xx.wrapping_add(a0);
                yy = yy.wrapping_add(a3);
            }
            row_x = row_x.wrapping_add(a1);
            row_y = row_y.wrapping_add(a4);
        }
        out
    }

    /// Nearest-neighbour resize (masks); the same size is a copy.
    pub fn resize_nearest(&self, width: usize, height: usize) -> Img {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
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

    /// One channel holding each pixel's largest channel value (how masks are read: any channel counts).
    pub fn channel_max(&self) -> Img {
        if self.channels == 1 {
            return self.clone();
        }
        let mut gray = Img::new(self.width, self.height, 1);
        for (g, px) in gray.data.iter_mut().zip(self.data.chunks_exact(self.channels)) {
            *g = px.iter().copied().max().unwrap_or(0);
        }
        gray
    }

    /// PIL's `resize((width, height), BILINEAR)`: separable, antialiased when shrinking, 8-bit fixed point.
    pub fn resize_bilinear(&self, width: usize, height: usize) -> Img {
        self.resized_crop(0, 0, self.width, self.height, width, height)
    }

    /// `crop(left, top, crop_w, crop_h).resize_bilinear(width, height)` without copying the crop first.
    ///
    /// The two passes round to 8 bits in between, so their order changes some pixels by one. Pillow 13 runs the
    /// vertical pass first when the height shrinks by more than twice the width's shrink (`h - oh > 2 (w - ow)`,
    /// python-pillow/Pillow#9549), the horizontal pass first otherwise; this follows it.
    pub fn resized_crop(
        &self,
        left: usize,
        top: usize,
        crop_w: usize,
        crop_h: usize,
        width: usize,
        height: usize,
    ) -> Img {
        let c = self.channels;
        let stride = self.width * c;
        let vertical_first = height < crop_h && (crop_h - height) as i64 > 2 * (crop_w as i64 - width as i64);
        match (width != crop_w, height != crop_h) {
            (false, false) => {
                let mut out = Img::new(width, height, c);
                for (y, orow) in out.data.chunks_exact_mut(width * c).enumerate() {
                    let s = (top + y) * stride + left * c;
                    orow.copy_from_slice(&self.data[s..s + width * c]);
                }
                out
            }
            (true, false) => resample_rows(self, (left, top, crop_w, crop_h), width),
            (false, true) => resample_columns(&self.data, stride, left * c, top, (crop_w * c, crop_h), height, c),
            (true, true) if vertical_first => {
                let tall = resample_columns(&self.data, stride, left * c, top, (crop_w * c, crop_h), height, c);
                resample_rows(&tall, (0, 0, crop_w, height), width)
            }
            (true, true) => {
                let wide = resample_rows(self, (left, top, crop_w, crop_h), width);
                resample_columns(&wide.data, width * c, 0, 0, (width * c, crop_h), height, c)
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's precompute_coeffs + normalize for the bilinear filter: for each output pixel, the first input index,
/// the number of taps, and fixed-point weights (`taps` per pixel, zero-padded).
struct Coefficients {
    taps: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

impl Coefficients {
    fn new(in_size: usize, out_size: usize) -> Coefficients {
        let scale = in_size as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let (support, inverse_scale) = (filter_scale, 1.0 / filter_scale);
        let taps = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * taps];
        let mut float = Vec::with_capacity(taps);
        for (xx, fixed) in weights.chunks_exact_mut(taps).enumerate() {
            let center = (xx as f64 + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            float.clear();
            float.extend((xmin..xmax).map(|x| {
                // PIL multiplies by the reciprocal; dividing rounds differently and moves some weights by one
                let t = ((x as f64 - center + 0.5) * inverse_scale).abs();
                if t < 1.0 { 1.0 - t } else { 0.0 }
            }));
            let total: f64 = float.iter().sum();
            for (f, w) in fixed.iter_mut().zip(&float) {
                let k = if total != 0.0 { w / total } else { *w };
                let v = k * (1u32 << PRECISION_BITS) as f64;
                *f = (if v < 0.0 { v - 0.5 } else { v + 0.5 }) as i32;
            }
            bounds.push((xmin, xmax - xmin));
        }
        Coefficients { taps, bounds, weights }
    }

    fn of(&self, out: usize) -> (usize, &[i32]) {
        let (start, len) = self.bounds[out];
        (start, &self.weights[out * self.taps..out * self.taps + len])
    }
}

// i32 as PIL: the weights sum to 2^22, so 255 * 2^22 + half stays below 2^31.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// The horizontal pass over the rows of a crop box of `img`: (box width → `out_w`) × box height.
fn resample_rows(img: &Img, (left, top, w, h): (usize, usize, usize, usize), out_w: usize) -> Img {
    let c = img.channels;
    let coeffs = Coefficients::new(w, out_w);
    let mut out = Img::new(out_w, h, c);
    let in_stride = img.width * c;
    for (y, orow) in out.data.chunks_exact_mut(out_w * c).enumerate() {
        let row = &img.data[(top + y) * in_stride + left * c..(top + y) * in_stride + (left + w) * c];
        if c == 1 {
            for (x, o) in orow.iter_mut().enumerate() {
                let (start, weights) = coeffs.of(x);
                let taps = &row[start..start + weights.len()];
                *o = clip8(weights.iter().zip(taps).fold(HALF, |sum, (k, &v)| sum + v as i32 * k));
            }
        } else {
            for (x, o) in orow.chunks_exact_mut(c).enumerate() {
                let (start, weights) = coeffs.of(x);
                let taps = row[start * c..(start + weights.len()) * c].chunks_exact(c);
                let mut sums = [HALF; 3];
                for (k, px) in weights.iter().zip(taps) {
                    for (s, &v) in sums.iter_mut().zip(px) {
                        *s += v as i32 * k;
                    }
                }
                for (o, &s) in o.iter_mut().zip(&sums) {
                    *o = clip8(s);
                }
            }
        }
    }
    out
}

/// The vertical pass: rows `y0..y0 + in_h` of `src` (each `row_len` bytes from byte `x0`, rows `stride` apart)
/// → `out_h` rows; every output row is a weighted sum of whole input rows.
fn resample_columns(
    src: &[u8],
    stride: usize,
    x0: usize,
    y0: usize,
    (row_len, in_h): (usize, usize),
    out_h: usize,
    channels: usize,
) -> Img {
    let coeffs = Coefficients::new(in_h, out_h);
    let mut out = Img::new(row_len / channels, out_h, channels);
    let mut acc = vec![0i32; row_len];
    for (y, orow) in out.data.chunks_exact_mut(row_len).enumerate() {
        let (start, weights) = coeffs.of(y);
        acc.fill(HALF);
        for (k, w) in weights.iter().enumerate() {
            let s = (y0 + start + k) * stride + x0;
            for (a, &v) in acc.iter_mut().zip(&src[s..s + row_len]) {
                *a += v as i32 * w;
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    out
}
