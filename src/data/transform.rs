//! The study's torchvision pipelines on `Img`: train RandomResizedCrop + hflip + rotation ±7°, val
//! Resize + CenterCrop, test Resize + TenCrop (segmentation: `data::segaug`).
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
