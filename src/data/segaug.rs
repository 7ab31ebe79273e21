//! The study's segmentation data path (study-protocol.md §2.6–2.9): OpenCV's resizes and remaps in their
//! fixed-point arithmetic, and albumentations 0.4.3's augmentations with the study's parameters and quirks,
//! so that on the same parameters the bytes equal what the study's pipeline (cv2 4.x, numpy, scipy) produces.
//!
//! Montgomery / SIIM (and user image-mask data): image and mask resized to 224 with nearest neighbour, mask
//! > 0 → 255, then in train **and val**, in order,
//! 1. with p 0.3 one of RandomBrightnessContrast (α = 1 + U(−0.2, 0.2), β = U(−0.2, 0.2)·255) or RandomGamma
//!    (g = randint(80, 120) / 100, exponent 1 / g), image only;
//! 2. with p 0.3 one of ElasticTransform (α 120, σ 6, affine 3.6), GridDistortion (5 steps, 1 + U(−0.3, 0.3)) or
//!    OpticalDistortion (k = U(−2, 2); its shift rounds to 0), image bilinear and mask nearest, border
//!    reflect-101;
//! 3. with p 0.25 RandomSizedCrop: a square of side randint(156, 224) at int((224 − side)·U[0, 1)), resized back
//!    (image bilinear, mask nearest). No flip.
//!
//! DRIVE: 512, bilinear for image and mask, mask > 127 → 255, no augmentation. Sizes other than the study's
//! scale the crop range (156/224 of the side).

use super::dicom::Decoding;
use super::image::Img;
use super::pyrandom::PyRandom;
use super::transform::{Mode, Rng};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// How images and masks are brought to the model's input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegResize {
    /// cv2 INTER_NEAREST (the study's Montgomery and SIIM).
    Nearest,
    /// cv2 INTER_LINEAR (the study's DRIVE).
    Linear,
}

/// Which augmentations train (and, with `augment_val`, validation) samples get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegAugment {
    /// The study's albumentations pipeline (module docs).
    Study,
    None,
}

/// The training loss of a segmentation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegLoss {
    /// Soft Dice over the whole batch, smooth 1 (Montgomery, SIIM).
    Dice,
    /// Binary cross-entropy (DRIVE).
    Bce,
}

/// The resolved segmentation data settings of a run (spec.toml `[data.segmentation]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegOptions {
    pub resize: SegResize,
    pub augment: SegAugment,
    /// Validation samples are augmented like training ones (the study's Montgomery and SIIM).
    pub augment_val: bool,
    /// A resized mask pixel above this is foreground: 0 (Montgomery, SIIM) or 127 (DRIVE).
    pub mask_threshold: u8,
    pub loss: SegLoss,
    /// How DICOM images (SIIM) become 8 bits: the study's raw cast, or window-aware.
    #[serde(default)]
    pub dicom: Decoding,
}

/// `--set` keys of the segmentation options.
pub const SET_KEYS: &[&str] = &["seg_resize", "seg_augment", "seg_augment_val", "mask_threshold", "seg_loss", "dicom"];

impl SegOptions {
    /// The study's settings for a segmentation dataset.
    pub fn study(dataset: &str) -> SegOptions {
        if dataset == "drive" {
            SegOptions {
                resize: SegResize::Linear,
                augment: SegAugment::None,
                augment_val: false,
                mask_threshold: 127,
                loss: SegLoss::Bce,
                dicom: Decoding::Raw,
            }
        } else {
            SegOptions {
                resize: SegResize::Nearest,
                augment: SegAugment::Study,
                augment_val: true,
                mask_threshold: 0,
                loss: SegLoss::Dice,
                dicom: Decoding::Raw,
            }
        }
    }

    /// The study's input size for a segmentation dataset: 512 for DRIVE, 224 otherwise.
    pub fn study_image_size(dataset: &str) -> u32 {
        if dataset == "drive" { 512 } else { 224 }
    }

    /// Applies one `--set` key of `SET_KEYS`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let bad = |allowed: &str| anyhow::anyhow!("--set {key}={value}: expected one of {allowed}");
        match key {
            "seg_resize" => {
                self.resize = match value {
                    "nearest" => SegResize::Nearest,
                    "linear" => SegResize::Linear,
                    _ => return Err(bad("nearest, linear")),
                }
            }
            "seg_augment" => {
                self.augment = match value {
                    "study" => SegAugment::Study,
                    "none" => SegAugment::None,
                    _ => return Err(bad("study, none")),
                }
            }
            "seg_augment_val" => self.augment_val = value.parse().map_err(|_| bad("true, false"))?,
            "mask_threshold" => self.mask_threshold = value.parse().map_err(|_| bad("0 to 254"))?,
            "seg_loss" => {
                self.loss = match value {
                    "dice" => SegLoss::Dice,
                    "bce" => SegLoss::Bce,
                    _ => return Err(bad("dice, bce")),
                }
            }
            "dicom" => {
                self.dicom = match value {
                    "raw" => Decoding::Raw,
                    "window" => Decoding::Window,
                    _ => return Err(bad("raw, window")),
                }
            }
            _ => bail!("--set {key}={value}: unknown segmentation key {key:?}"),
        }
        if self.mask_threshold == 255 {
            bail!("--set {key}={value}: mask_threshold 255 leaves no foreground");
        }
        Ok(())
    }

    /// Whether samples of `mode` are augmented.
    pub fn augments(&self, mode: Mode) -> bool {
        self.augment == SegAugment::Study && (mode == Mode::Train || (mode == Mode::Val && self.augment_val))
    }
}

/// Writes the study's segmentation settings and input size into a segmentation run's spec (before `--set`).
pub fn resolve_study_defaults(spec: &mut crate::runs::record::RunSpec) {
    if spec.task == crate::runs::record::Task::Segmentation {
        spec.data.segmentation = Some(SegOptions::study(&spec.dataset));
        spec.data.image_size = SegOptions::study_image_size(&spec.dataset);
    }
}

/// One sample through the study's path: resize, mask threshold (→ 0/255), augmentation when `opts` asks for it
/// in `mode`. `mask` has one channel.
pub fn study_pair(img: &Img, mask: &Img, mode: Mode, size: usize, opts: &SegOptions, rng: &mut Rng) -> (Img, Img) {
    let (img, mut mask) = match opts.resize {
        SegResize::Nearest => (resize_nearest(img, size, size), resize_nearest(mask, size, size)),
        SegResize::Linear => (resize_linear(img, size, size), resize_linear(mask, size, size)),
    };
    mask.data.iter_mut().for_each(|v| *v = if *v > opts.mask_threshold { 255 } else { 0 });
    if !opts.augments(mode) {
        return (img, mask);
    }
    let ops = Augmentation::draw(size, rng);
    ops.apply(&img, &mask)
}

/// One draw of the study's augmentation (each step None when its probability said no).
#[derive(Debug, Clone, PartialEq)]
pub struct Augmentation {
    pub intensity: Option<Intensity>,
    pub distortion: Option<Distortion>,
    /// (side, top, left)
    pub crop: Option<(usize, usize, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intensity {
    BrightnessContrast { alpha: f64, beta: f64 },
    Gamma { gamma: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Distortion {
    /// numpy RandomState seed (albumentations draws it with randint(0, 10000)).
    Elastic {
        seed: u32,
    },
    /// Per-node factors along x and y (6 each).
    Grid {
        xsteps: Vec<f64>,
        ysteps: Vec<f64>,
    },
    Optical {
        k: f64,
    },
}

impl Augmentation {
    pub fn draw(size: usize, rng: &mut Rng) -> Augmentation {
        let intensity = (rng.unit() < 0.3).then(|| {
            if rng.unit() < 0.5 {
                Intensity::BrightnessContrast { alpha: 1.0 + rng.uniform(-0.2, 0.2), beta: rng.uniform(-0.2, 0.2) }
            } else {
                Intensity::Gamma { gamma: rng.int_inclusive(80, 120) as f64 / 100.0 }
            }
        });
        let distortion = (rng.unit() < 0.3).then(|| match rng.int_inclusive(0, 2) {
            0 => Distortion::Elastic { seed: rng.int_inclusive(0, 10000) as u32 },
            1 => {
                let mut steps = || (0..=GRID_STEPS).map(|_| 1.0 + rng.uniform(-0.3, 0.3)).collect::<Vec<_>>();
                let xsteps = steps();
                Distortion::Grid { xsteps, ysteps: steps() }
            }
            _ => Distortion::Optical { k: rng.uniform(-2.0, 2.0) },
        });
        let crop = (rng.unit() < 0.25).then(|| {
            let side = rng.int_inclusive((size * 156).div_ceil(224).max(1), size);
            let top = ((size - side) as f64 * rng.unit()) as usize;
            let left = ((size - side) as f64 * rng.unit()) as usize;
            (side, top, left)
        });
        Augmentation { intensity, distortion, crop }
    }

    pub fn apply(&self, img: &Img, mask: &Img) -> (Img, Img) {
        let mut img = match &self.intensity {
            Some(Intensity::BrightnessContrast { alpha, beta }) => lut(img, &brightness_contrast_lut(*alpha, *beta)),
            Some(Intensity::Gamma { gamma }) => lut(img, &gamma_lut(*gamma)),
            None => img.clone(),
        };
        let mut mask = mask.clone();
        if let Some(d) = &self.distortion {
            (img, mask) = match d {
                Distortion::Elastic { seed } => (elastic(&img, *seed, false), elastic(&mask, *seed, true)),
                Distortion::Grid { xsteps, ysteps } => {
                    let (mx, my) = grid_maps(img.width, img.height, xsteps, ysteps);
                    (remap(&img, &mx, &my, false), remap(&mask, &mx, &my, true))
                }
                Distortion::Optical { k } => {
                    let (mx, my) = optical_maps(img.width, img.height, *k);
                    (remap(&img, &mx, &my, false), remap(&mask, &mx, &my, true))
                }
            };
        }
        if let Some((side, top, left)) = self.crop {
            let (w, h) = (img.width, img.height);
            img = resize_linear(&img.crop(left, top, side, side), w, h);
            mask = resize_nearest(&mask.crop(left, top, side, side), w, h);
        }
        (img, mask)
    }
}

const GRID_STEPS: usize = 5;

fn lut(img: &Img, table: &[u8; 256]) -> Img {
    Img { data: img.data.iter().map(|&v| table[v as usize]).collect(), ..img.clone() }
}

/// albumentations' uint8 brightness/contrast table (brightness by max): float32 i·α + β·255, clipped, truncated.
pub fn brightness_contrast_lut(alpha: f64, beta: f64) -> [u8; 256] {
    let (alpha, shift) = (alpha as f32, (beta * 255.0) as f32);
    std::array::from_fn(|i| (i as f32 * alpha + shift).clamp(0.0, 255.0) as u8)
}

/// albumentations' uint8 gamma table: trunc(255 · (i / 255)^(1 / (g + 1e-7))).
pub fn gamma_lut(gamma: f64) -> [u8; 256] {
    let inv = 1.0 / (gamma + 1e-7);
    std::array::from_fn(|i| ((i as f64 / 255.0).powf(inv) * 255.0) as u8)
}

/// cv2.resize INTER_NEAREST: source index floor(dst · src / dst_size).
pub fn resize_nearest(img: &Img, width: usize, height: usize) -> Img {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let c = img.channels;
    let (fx, fy) = (1.0 / (width as f64 / img.width as f64), 1.0 / (height as f64 / img.height as f64));
    let xs: Vec<usize> = (0..width).map(|x| ((x as f64 * fx).floor() as usize).min(img.width - 1)).collect();
    let mut out = Img::new(width, height, c);
    for (y, row) in out.data.chunks_exact_mut(width * c).enumerate() {
        let sy = ((y as f64 * fy).floor() as usize).min(img.height - 1);
        for (o, &sx) in row.chunks_exact_mut(c).zip(&xs) {
            let s = (sy * img.width + sx) * c;
            o.copy_from_slice(&img.data[s..s + c]);
        }
    }
    out
}

const RESIZE_COEF_SCALE: f32 = 2048.0;

/// (the two source indices, their fixed-point weights) per destination index, as cv::resize linear computes
/// them: columns are clamped to the image with the weight moved to the edge pixel, rows keep their weights and
/// read the edge row twice.
fn linear_taps(src: usize, dst: usize, columns: bool) -> Vec<([usize; 2], [i32; 2])> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut f = f - s as f32;
            if columns && s < 0 {
                (s, f) = (0, 0.0);
            }
            if columns && s >= last {
                (s, f) = (last, 0.0);
            }
            let w = |v: f32| (v * RESIZE_COEF_SCALE).round_ties_even() as i32;
            ([s.clamp(0, last) as usize, (s + 1).clamp(0, last) as usize], [w(1.0 - f), w(f)])
        })
        .collect()
}

/// cv2.resize INTER_LINEAR on 8-bit images: 11-bit weights, the horizontal pass in integers, the vertical one
/// as OpenCV's vector kernel computes it (which, measured against cv2 4.10, also covers the row tails).
pub fn resize_linear(img: &Img, width: usize, height: usize) -> Img {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let c = img.channels;
    let (xt, yt) = (linear_taps(img.width, width, true), linear_taps(img.height, height, false));
    let row = |y: usize| -> Vec<i32> {
        let src = &img.data[y * img.width * c..(y + 1) * img.width * c];
        let mut out = Vec::with_capacity(width * c);
        for &([s0, s1], [a0, a1]) in &xt {
            for ch in 0..c {
                out.push(src[s0 * c + ch] as i32 * a0 + src[s1 * c + ch] as i32 * a1);
            }
        }
        out
    };
    let mut out = Img::new(width, height, c);
    let hi = |v: i32, b: i32| -> i32 { (((v >> 4).clamp(-32768, 32767) * b) >> 16) as i16 as i32 };
    for (orow, &([y0, y1], [b0, b1])) in out.data.chunks_exact_mut(width * c).zip(&yt) {
        let (r0, r1) = (row(y0), row(y1));
        for ((o, &s0), &s1) in orow.iter_mut().zip(&r0).zip(&r1) {
            let sum = (hi(s0, b0) + hi(s1, b1)) as i16 as i32;
            *o = ((sum + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

const INTER_BITS: i32 = 5;
const INTER_TAB_SIZE: i32 = 1 << INTER_BITS;
const REMAP_COEF_SCALE: f32 = 32768.0;

/// OpenCV's bilinear weight table entry for fractions (fx, fy) in 1/32: four weights summing to 32768 (exact
/// products of multiples of 1/32, so OpenCV's correction of the sum never applies).
fn bilinear_weights(fx: i32, fy: i32) -> [i32; 4] {
    let (x, y) = (fx as f32 / INTER_TAB_SIZE as f32, fy as f32 / INTER_TAB_SIZE as f32);
    let (vx, vy) = ([1.0 - x, x], [1.0 - y, y]);
    let mut w = [0i32; 4];
    for k1 in 0..2 {
        for k2 in 0..2 {
            w[k1 * 2 + k2] = (vy[k1] * vx[k2] * REMAP_COEF_SCALE).round_ties_even() as i32;
        }
    }
    w
}

/// BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba).
fn reflect101(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// Samples `img` at fixed-point source positions (in 1/32 pixel) per destination pixel: OpenCV's
/// remapBilinear (reflect-101 borders); `nearest` takes the whole-pixel positions `(x >> 5, y >> 5)` instead.
fn sample_fixed(img: &Img, w: usize, h: usize, pos: impl Fn(usize, usize) -> (i64, i64), nearest: bool) -> Img {
    let c = img.channels;
    let mut out = Img::new(w, h, c);
    let px = |x: i64, y: i64, ch: usize| -> i32 {
        img.data[(reflect101(y, img.height) * img.width + reflect101(x, img.width)) * c + ch] as i32
    };
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = pos(x, y);
            let o = (y * w + x) * c;
            if nearest {
                for ch in 0..c {
                    out.data[o + ch] = px(fx, fy, ch) as u8;
                }
                continue;
            }
            let (sx, sy) = (fx >> INTER_BITS, fy >> INTER_BITS);
            let wt = bilinear_weights((fx & 31) as i32, (fy & 31) as i32);
            for ch in 0..c {
                let v = px(sx, sy, ch) * wt[0]
                    + px(sx + 1, sy, ch) * wt[1]
                    + px(sx, sy + 1, ch) * wt[2]
                    + px(sx + 1, sy + 1, ch) * wt[3];
                out.data[o + ch] = ((v + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        }
    }
    out
}

/// cv2.remap with float32 maps (same size as the output), INTER_LINEAR or INTER_NEAREST, BORDER_REFLECT_101.
pub fn remap(img: &Img, map_x: &[f32], map_y: &[f32], nearest: bool) -> Img {
    let w = img.width;
    let round = |v: f32, scale: f32| (v * scale).round_ties_even() as i64;
    let pos = |x: usize, y: usize| {
        let (mx, my) = (map_x[y * w + x], map_y[y * w + x]);
        if nearest { (round(mx, 1.0), round(my, 1.0)) } else { (round(mx, 32.0), round(my, 32.0)) }
    };
    sample_fixed(img, w, img.height, pos, nearest)
}

/// albumentations 0.4.3 grid_distortion maps (num_steps 5): float32 map_x, map_y of `width` × `height`.
pub fn grid_maps(width: usize, height: usize, xsteps: &[f64], ysteps: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let axis = |len: usize, steps: &[f64]| -> Vec<f32> {
        let step = len / GRID_STEPS;
        let mut out = vec![0f32; len];
        let mut prev = 0.0f64;
        for (idx, factor) in steps.iter().enumerate().take(GRID_STEPS + 1) {
            let start = idx * step;
            let mut end = start + step;
            let cur = if end > len {
                end = len;
                len as f64
            } else {
                prev + step as f64 * factor
            };
            if start < end {
                for (o, v) in out[start..end].iter_mut().zip(linspace(prev, cur, end - start)) {
                    *o = v as f32;
                }
            }
            prev = cur;
        }
        out
    };
    let (xx, yy) = (axis(width, xsteps), axis(height, ysteps));
    let map_x = (0..height).flat_map(|_| xx.iter().copied()).collect();
    let map_y = yy.iter().flat_map(|&v| std::iter::repeat_n(v, width)).collect();
    (map_x, map_y)
}

/// numpy.linspace(start, stop, num) in float64.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// albumentations 0.4.3 optical_distortion maps (shift 0): cv2.initUndistortRectifyMap with camera fx = fy = W,
/// centre (W/2, H/2), k1 = k2 = k, no new camera matrix (OpenCV then centres it at ((W−1)/2, (H−1)/2)).
pub fn optical_maps(width: usize, height: usize, k: f64) -> (Vec<f32>, Vec<f32>) {
    let k = k as f32 as f64;
    let f = width as f64;
    let (u0, v0) = ((width as f32 * 0.5) as f64, (height as f32 * 0.5) as f64);
    // the inverse of the new camera matrix, as OpenCV's LU gives it
    let inv = -(-1.0 / f);
    let (ncx, ncy) = ((width - 1) as f64 * 0.5, (height - 1) as f64 * 0.5);
    let (ir0, ir2, ir4, ir5) = (inv, (0.0 - ncx) * inv, inv, (0.0 - ncy) * inv);
    let mut map_x = Vec::with_capacity(width * height);
    let mut map_y = Vec::with_capacity(width * height);
    for i in 0..height {
        let mut gx = i as f64 * 0.0 + ir2;
        let gy = i as f64 * ir4 + ir5;
        for _ in 0..width {
            let (x, y) = (gx, gy);
            let (x2, y2) = (x * x, y * y);
            let r2 = x2 + y2;
            let kr = (1.0 + ((0.0 * r2 + k) * r2 + k) * r2) / (1.0 + ((0.0 * r2 + 0.0) * r2 + 0.0) * r2);
            let xd = x * kr;
            let yd = y * kr;
            map_x.push((f * xd + u0) as f32);
            map_y.push((f * yd + v0) as f32);
            gx += ir0;
        }
    }
    (map_x, map_y)
}

/// albumentations 0.4.3 elastic_transform (α 120, σ 6, α_affine 3.6, not approximate) with numpy
/// RandomState(`seed`): a random affine warp (cv2.warpAffine), then a remap by Gaussian-smoothed noise.
pub fn elastic(img: &Img, seed: u32, nearest: bool) -> Img {
    let (alpha, sigma, alpha_affine) = (120.0, 6.0, 3.6);
    let (w, h) = (img.width, img.height);
    let mut rs = PyRandom::numpy_legacy(seed);
    let (cy, cx) = ((h / 2) as f32, (w / 2) as f32);
    let sq = (h.min(w) / 3) as f32;
    let pts1 = [[cy + sq, cx + sq], [cy + sq, cx - sq], [cy - sq, cx - sq]];
    let mut pts2 = pts1;
    for p in pts2.iter_mut() {
        for v in p.iter_mut() {
            *v += (-alpha_affine + 2.0 * alpha_affine * rs.random()) as f32;
        }
    }
    let m = affine_transform(&pts1, &pts2);
    let warped = warp_affine(img, m, nearest);
    let mut field = || -> Vec<f32> {
        let noise: Vec<f64> = (0..w * h).map(|_| rs.random() * 2.0 - 1.0).collect();
        gaussian_filter(&noise, w, h, sigma).into_iter().map(|v| (v * alpha) as f32).collect()
    };
    let dx = field();
    let dy = field();
    let map_x: Vec<f32> = (0..w * h).map(|i| ((i % w) as f64 + dx[i] as f64) as f32).collect();
    let map_y: Vec<f32> = (0..w * h).map(|i| ((i / w) as f64 + dy[i] as f64) as f32).collect();
    remap(&warped, &map_x, &map_y, nearest)
}

/// cv2.getAffineTransform: the 6×6 system solved by OpenCV's LU (partial pivoting, stored inverse pivots).
fn affine_transform(src: &[[f32; 2]; 3], dst: &[[f32; 2]; 3]) -> [f64; 6] {
    let mut a = [[0f64; 6]; 6];
    let mut b = [0f64; 6];
    for i in 0..3 {
        let (x, y) = (src[i][0] as f64, src[i][1] as f64);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0];
        b[2 * i] = dst[i][0] as f64;
        b[2 * i + 1] = dst[i][1] as f64;
    }
    for i in 0..6 {
        let k = (i..6).fold(i, |k, j| if a[j][i].abs() > a[k][i].abs() { j } else { k });
        if k != i {
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        for j in i + 1..6 {
            let alpha = a[j][i] * d;
            let pivot_row = a[i];
            for (v, p) in a[j][i + 1..].iter_mut().zip(&pivot_row[i + 1..]) {
                *v += alpha * p;
            }
            b[j] += alpha * b[i];
        }
        a[i][i] = -d;
    }
    for i in (0..6).rev() {
        let mut s = b[i];
        for k in i + 1..6 {
            s -= a[i][k] * b[k];
        }
        b[i] = s * a[i][i];
    }
    b
}

const AB_BITS: i32 = 10;
const AB_SCALE: f64 = 1024.0;

/// cv2.warpAffine (forward matrix, inverted as OpenCV does), same size, reflect-101, 10-bit fixed point.
fn warp_affine(img: &Img, m: [f64; 6], nearest: bool) -> Img {
    let mut m = m;
    let d = m[0] * m[4] - m[1] * m[3];
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22) = (m[4] * d, m[0] * d);
    m[0] = a11;
    m[1] *= -d;
    m[3] *= -d;
    m[4] = a22;
    let b1 = -m[0] * m[2] - m[1] * m[5];
    let b2 = -m[3] * m[2] - m[4] * m[5];
    m[2] = b1;
    m[5] = b2;
    let round = |v: f64| v.round_ties_even() as i64;
    let adelta: Vec<i64> = (0..img.width).map(|x| round(m[0] * x as f64 * AB_SCALE)).collect();
    let bdelta: Vec<i64> = (0..img.width).map(|x| round(m[3] * x as f64 * AB_SCALE)).collect();
    let delta = if nearest { (AB_SCALE / 2.0) as i64 } else { (AB_SCALE / 32.0 / 2.0) as i64 };
    let shift = if nearest { AB_BITS } else { AB_BITS - INTER_BITS };
    let pos = |x: usize, y: usize| {
        let x0 = round((m[1] * y as f64 + m[2]) * AB_SCALE) + delta;
        let y0 = round((m[4] * y as f64 + m[5]) * AB_SCALE) + delta;
        ((x0 + adelta[x]) >> shift, (y0 + bdelta[x]) >> shift)
    };
    sample_fixed(img, img.width, img.height, pos, nearest)
}

/// numpy's pairwise float64 sum for fewer than 128 values: eight strided partial sums, then the tail.
fn numpy_sum(a: &[f64]) -> f64 {
    if a.len() < 8 {
        return a.iter().fold(0.0, |s, v| s + v);
    }
    let body = a.len() - a.len() % 8;
    let mut r = [0f64; 8];
    r.copy_from_slice(&a[..8]);
    for chunk in a[8..body].chunks_exact(8) {
        for (acc, v) in r.iter_mut().zip(chunk) {
            *acc += v;
        }
    }
    let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for v in &a[body..] {
        sum += v;
    }
    sum
}

/// scipy.ndimage.gaussian_filter (truncate 4, mode reflect) of a row-major float64 image: axis 0, then axis 1.
fn gaussian_filter(data: &[f64], w: usize, h: usize, sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let sigma2 = sigma * sigma;
    let phi: Vec<f64> = (-radius..=radius).map(|x| (-0.5 / sigma2 * (x * x) as f64).exp()).collect();
    let total = numpy_sum(&phi);
    let weights: Vec<f64> = phi.iter().map(|p| p / total).collect();
    let r = radius as usize;
    let correlate = |line: &[f64]| -> Vec<f64> {
        let n = line.len() as i64;
        let at = |i: i64| -> f64 {
            // scipy 'reflect': d c b a | a b c d | d c b a
            let period = 2 * n;
            let m = i.rem_euclid(period);
            line[(if m < n { m } else { period - 1 - m }) as usize]
        };
        (0..n)
            .map(|i| {
                let mut acc = at(i) * weights[r];
                for j in (1..=radius).rev() {
                    acc += (at(i - j) + at(i + j)) * weights[r - j as usize];
                }
                acc
            })
            .collect()
    };
    let mut pass = data.to_vec();
    for x in 0..w {
        let column: Vec<f64> = (0..h).map(|y| pass[y * w + x]).collect();
        for (y, v) in correlate(&column).into_iter().enumerate() {
            pass[y * w + x] = v;
        }
    }
    pass.chunks_exact(w).flat_map(correlate).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Image and mask go through the same geometry: on a picture whose bright pixels are exactly its mask, the two
    /// still agree after every augmentation draw (bilinear edges and intensity changes allow a few pixels).
    #[test]
    fn study_augmentation_keeps_image_and_mask_aligned() {
        let (w, h) = (90, 70);
        let mut img = Img::new(w, h, 1);
        for y in 0..h {
            for x in 0..w {
                let inside = ((x as f64 - 30.0).powi(2) + (y as f64 - 35.0).powi(2) < 400.0) || (x > 60 && y % 20 < 9);
                img.data[y * w + x] = if inside { 230 } else { 20 };
            }
        }
        let mut mask = img.clone();
        mask.data.iter_mut().for_each(|v| *v = if *v > 125 { 255 } else { 0 });
        let opts = SegOptions::study("montgomery");
        let (mut changed, mut worst) = (0, 1.0f64);
        for seed in 0..60 {
            let (a, m) = study_pair(&img, &mask, Mode::Train, 48, &opts, &mut Rng::new(seed));
            let (plain, _) = study_pair(&img, &mask, Mode::Test, 48, &opts, &mut Rng::new(seed));
            changed += usize::from(a != plain);
            let agree = a.data.iter().zip(&m.data).filter(|(p, q)| (**p > 125) == (**q > 127)).count();
            worst = worst.min(agree as f64 / a.data.len() as f64);
        }
        assert!(worst > 0.9, "image and mask disagree on {:.1}% of the pixels", 100.0 * (1.0 - worst));
        assert!((20..60).contains(&changed), "{changed} of 60 samples augmented (p 1 - 0.7 * 0.7 * 0.75 = 0.63)");
    }

    #[test]
    fn validation_is_augmented_for_montgomery_and_never_for_drive() {
        let mont = SegOptions::study("montgomery");
        assert!(mont.augments(Mode::Train) && mont.augments(Mode::Val) && !mont.augments(Mode::Test));
        let drive = SegOptions::study("drive");
        assert!(!drive.augments(Mode::Train) && !drive.augments(Mode::Val));
        assert_eq!((drive.mask_threshold, drive.loss, drive.resize), (127, SegLoss::Bce, SegResize::Linear));
        let mut o = mont;
        o.set("seg_augment_val", "false").unwrap();
        assert!(!o.augments(Mode::Val));
        assert!(o.set("seg_resize", "cubic").unwrap_err().to_string().contains("nearest, linear"));
    }

    #[test]
    fn opencv_weights_sum_to_one_in_fixed_point() {
        for fx in 0..32 {
            for fy in 0..32 {
                assert_eq!(bilinear_weights(fx, fy).iter().sum::<i32>(), 32768, "({fx}, {fy})");
            }
        }
        assert_eq!(linspace(0.0, 1.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
}
