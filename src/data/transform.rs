//! The study's torchvision pipelines on `Img`: train RandomResizedCrop + hflip + rotation ±7°, val
//! Resize + CenterCrop, test Resize + TenCrop; segmentation resize, then intensity, grid distortion and random
//! sized crop.
//! Sizes scale with `image_size` (crop) and `image_size * 8 / 7` (resize; 224 → 256).

use super::image::Img;
use super::spec::Normalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Val,
    Test,
}

/// SplitMix64: a small deterministic generator for per-sample augmentation.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [lo, hi].
    pub fn int_inclusive(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// The resize size before cropping: 256 for 224.
pub fn resize_size(image_size: usize) -> usize {
    image_size * 8 / 7
}

fn round_half_even(v: f64) -> usize {
    v.round_ties_even().max(0.0) as usize
}

/// torchvision `RandomResizedCrop.get_params(img, scale=(0.08, 1), ratio=(3/4, 4/3))`: (left, top, w, h).
pub fn random_resized_crop_box(width: usize, height: usize, rng: &mut Rng) -> (usize, usize, usize, usize) {
    let area = (width * height) as f64;
    let (log_lo, log_hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.uniform(0.08, 1.0);
        let aspect = rng.uniform(log_lo, log_hi).exp();
        let w = round_half_even((target * aspect).sqrt());
        let h = round_half_even((target / aspect).sqrt());
        if w > 0 && w <= width && h > 0 && h <= height {
            return (rng.int_inclusive(0, width - w), rng.int_inclusive(0, height - h), w, h);
        }
    }
    let ratio = width as f64 / height as f64;
    let (w, h) = if ratio < 3.0 / 4.0 {
        (width, round_half_even(width as f64 / (3.0 / 4.0)))
    } else if ratio > 4.0 / 3.0 {
        (round_half_even(height as f64 * 4.0 / 3.0), height)
    } else {
        (width, height)
    };
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// torchvision `center_crop` offsets.
pub fn center_crop(img: &Img, size: usize) -> Img {
    let top = round_half_even((img.height - size) as f64 / 2.0);
    let left = round_half_even((img.width - size) as f64 / 2.0);
    img.crop(left, top, size, size)
}

/// torchvision `ten_crop`: top-left, top-right, bottom-left, bottom-right, centre, then the same of the flip.
pub fn ten_crop(img: &Img, size: usize) -> Vec<Img> {
    let five = |im: &Img| {
        let (w, h) = (im.width, im.height);
        vec![
            im.crop(0, 0, size, size),
            im.crop(w - size, 0, size, size),
            im.crop(0, h - size, size, size),
            im.crop(w - size, h - size, size, size),
            center_crop(im, size),
        ]
    };
    let mut crops = five(img);
    crops.extend(five(&img.hflip()));
    crops
}

/// Classification views of one image (one for train/val, ten for test), each `image_size` square.
pub fn classification_views(img: &Img, mode: Mode, image_size: usize, rng: &mut Rng) -> Vec<Img> {
    match mode {
        Mode::Train => {
            let (left, top, w, h) = random_resized_crop_box(img.width, img.height, rng);
            let out = img.resized_crop(left, top, w, h, image_size, image_size);
            let flip = rng.unit() < 0.5;
            vec![out.flip_rotate_nearest(flip, rng.uniform(-7.0, 7.0))]
        }
        Mode::Val => {
            let r = resize_size(image_size);
            vec![center_crop(&img.resize_bilinear(r, r), image_size)]
        }
        Mode::Test => {
            let r = resize_size(image_size);
            ten_crop(&img.resize_bilinear(r, r), image_size)
        }
    }
}

/// Segmentation, after the study's albumentations pipeline: image (bilinear) and binary mask (nearest) resized
/// to `image_size`; train then applies, each drawn in turn,
/// - with p 0.3 one of contrast (×U(0.8, 1.2)), gamma (U(0.8, 1.2)) or brightness (+U(-0.2, 0.2)·255), image only;
/// - with p 0.3 a grid distortion (5 bands per axis, each stretched by 1 + U(-0.3, 0.3)), image and mask alike;
/// - with p 0.25 a random sized square crop of side U(156/224, 1)·image_size, resized back to image_size.
pub fn segmentation_pair(img: &Img, mask: &Img, mode: Mode, image_size: usize, rng: &mut Rng) -> (Img, Img) {
    let s = image_size;
    let (mut img, mut mask) = (img.resize_bilinear(s, s), mask.resize_nearest(s, s));
    if mode != Mode::Train {
        return (img, mask);
    }
    if rng.unit() < 0.3 {
        let table: [u8; 256] = match rng.int_inclusive(0, 2) {
            0 => {
                let alpha = rng.uniform(0.8, 1.2);
                std::array::from_fn(|v| (v as f64 * alpha).round().clamp(0.0, 255.0) as u8)
            }
            1 => {
                let gamma = rng.uniform(0.8, 1.2);
                std::array::from_fn(|v| (255.0 * (v as f64 / 255.0).powf(gamma)).round().clamp(0.0, 255.0) as u8)
            }
            _ => {
                let beta = rng.uniform(-0.2, 0.2) * 255.0;
                std::array::from_fn(|v| (v as f64 + beta).round().clamp(0.0, 255.0) as u8)
            }
        };
        img.data.iter_mut().for_each(|v| *v = table[*v as usize]);
    }
    if rng.unit() < 0.3 {
        let xs = grid_distortion_map(img.width, rng);
        let ys = grid_distortion_map(img.height, rng);
        img = remap(&img, &xs, &ys, false);
        mask = remap(&mask, &xs, &ys, true);
    }
    if rng.unit() < 0.25 {
        let side = ((s as f64 * rng.uniform(156.0 / 224.0, 1.0)).round() as usize).clamp(1, s);
        let (left, top) = (rng.int_inclusive(0, s - side), rng.int_inclusive(0, s - side));
        img = img.resized_crop(left, top, side, side, s, s);
        mask = mask.crop(left, top, side, side).resize_nearest(s, s);
    }
    (img, mask)
}

/// A grid distortion along one axis, in the manner of albumentations' GridDistortion: the axis is cut into 5
/// bands, each pixel of a band advances the source position by 1 + U(-0.3, 0.3) of its band, and the whole map is
/// scaled to end at the last pixel, so the image keeps its extent: the source coordinate of each output pixel.
fn grid_distortion_map(len: usize, rng: &mut Rng) -> Vec<f64> {
    const BANDS: usize = 5;
    let mut map = Vec::with_capacity(len);
    let mut pos = 0.0;
    for band in 0..BANDS {
        let stretch = 1.0 + rng.uniform(-0.3, 0.3);
        let (start, end) = (band * len / BANDS, (band + 1) * len / BANDS);
        for _ in start..end {
            map.push(pos);
            pos += stretch;
        }
    }
    let last = map.last().copied().unwrap_or(0.0);
    if last > 0.0 {
        let scale = (len - 1) as f64 / last;
        map.iter_mut().for_each(|v| *v *= scale);
    }
    map
}

/// Samples `img` at (xs[x], ys[y]) for every output pixel: bilinear (or nearest, for masks), reflecting at the
/// borders (OpenCV's BORDER_REFLECT_101).
fn remap(img: &Img, xs: &[f64], ys: &[f64], nearest: bool) -> Img {
    let (w, h, c) = (img.width, img.height, img.channels);
    let reflect = |i: i64, n: usize| -> usize {
        let n = n as i64;
        if n == 1 {
            return 0;
        }
        let period = 2 * (n - 1);
        let m = i.rem_euclid(period);
        (if m < n { m } else { period - m }) as usize
    };
    let mut out = Img::new(w, h, c);
    for (y, &sy) in ys.iter().enumerate() {
        for (x, &sx) in xs.iter().enumerate() {
            let o = (y * w + x) * c;
            if nearest {
                let s = (reflect(sy.round() as i64, h) * w + reflect(sx.round() as i64, w)) * c;
                out.data[o..o + c].copy_from_slice(&img.data[s..s + c]);
                continue;
            }
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (xa, xb) = (reflect(x0 as i64, w), reflect(x0 as i64 + 1, w));
            let (ya, yb) = (reflect(y0 as i64, h), reflect(y0 as i64 + 1, h));
            for ch in 0..c {
                let p = |yy: usize, xx: usize| img.data[(yy * w + xx) * c + ch] as f64;
                let top = p(ya, xa) * (1.0 - fx) + p(ya, xb) * fx;
                let bottom = p(yb, xa) * (1.0 - fx) + p(yb, xb) * fx;
                out.data[o + ch] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Writes the image as normalised f32 CHW with 3 channels (gray is repeated, as PIL's convert("RGB")) into
/// `out`, which holds exactly 3 × width × height values.
pub fn write_normalized(img: &Img, norm: Normalization, out: &mut [f32]) {
    let (mean, std) = norm.mean_std();
    let plane = img.width * img.height;
    assert_eq!(out.len(), 3 * plane, "an image of {plane} pixels fills 3 planes");
    for (ch, dst) in out.chunks_exact_mut(plane).enumerate() {
        // the same arithmetic per value, looked up instead of recomputed for every pixel
        let table: [f32; 256] = std::array::from_fn(|v| (v as f32 / 255.0 - mean[ch]) / std[ch]);
        if img.channels == 1 {
            for (d, &v) in dst.iter_mut().zip(&img.data) {
                *d = table[v as usize];
            }
        } else {
            for (d, &v) in dst.iter_mut().zip(img.data.iter().skip(ch).step_by(img.channels)) {
                *d = table[v as usize];
            }
        }
    }
}

/// Writes a mask as 0/1 f32 (any channel above 127 is foreground) into `out` (width × height values).
pub fn write_mask(mask: &Img, out: &mut [f32]) {
    for (d, px) in out.iter_mut().zip(mask.data.chunks_exact(mask.channels)) {
        *d = if px.iter().any(|&v| v > 127) { 1.0 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_distortion_maps_rise_from_the_first_pixel_to_the_last() {
        let mut rng = Rng::new(3);
        for len in [1, 7, 48, 224, 301] {
            let map = grid_distortion_map(len, &mut rng);
            assert_eq!(map.len(), len);
            assert_eq!(map[0], 0.0);
            assert!((map[len - 1] - (len - 1) as f64).abs() < 1e-9, "len {len} ends at {}", map[len - 1]);
            assert!(map.windows(2).all(|w| w[1] > w[0]), "len {len}: {map:?}");
        }
    }

    /// Image and mask go through the same geometry: on a picture whose bright pixels are exactly its mask, the two
    /// still agree after every train augmentation (bilinear edges and intensity changes allow a few pixels).
    #[test]
    fn segmentation_augmentation_keeps_image_and_mask_aligned() {
        let (w, h) = (90, 70);
        let mut img = Img::new(w, h, 1);
        for y in 0..h {
            for x in 0..w {
                let inside = ((x as f64 - 30.0).powi(2) + (y as f64 - 35.0).powi(2) < 400.0) || (x > 60 && y % 20 < 9);
                img.data[y * w + x] = if inside { 230 } else { 20 };
            }
        }
        let mask = img.clone();
        let (mut changed, mut worst) = (0, 1.0f64);
        for seed in 0..60 {
            let (a, m) = segmentation_pair(&img, &mask, Mode::Train, 48, &mut Rng::new(seed));
            let (plain, _) = segmentation_pair(&img, &mask, Mode::Val, 48, &mut Rng::new(seed));
            changed += usize::from(a != plain);
            let agree = a.data.iter().zip(&m.data).filter(|(p, q)| (**p > 125) == (**q > 127)).count();
            worst = worst.min(agree as f64 / a.data.len() as f64);
        }
        assert!(worst > 0.9, "image and mask disagree on {:.1}% of the pixels", 100.0 * (1.0 - worst));
        assert!((20..60).contains(&changed), "{changed} of 60 samples augmented (p 1 - 0.7 * 0.7 * 0.75 = 0.63)");
    }
}
