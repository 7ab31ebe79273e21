//! The synthetic demo datasets: chest-X-ray-like 64×64 grayscale images with four learnable findings
//! (demo-cls, ChestX-ray14 list format) and lung masks (demo-seg, image/mask folders). Deterministic.

use super::image::Img;
use super::transform::Rng;
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

pub const SIZE: usize = 64;
/// Findings of demo-cls, in label order (as dataset/demo-cls.toml).
pub const FINDINGS: [&str; 4] = ["Cardiomegaly", "Effusion", "Mass", "Nodule"];
const CLS_SPLITS: [(&str, usize); 3] = [("train", 300), ("val", 100), ("test", 100)];
const SEG_SPLITS: [(&str, usize); 3] = [("train", 60), ("val", 20), ("test", 20)];
/// Written last: a demo folder without it is incomplete.
const COMPLETE_MARKER: &str = ".complete";

struct Canvas {
    pixels: Vec<f32>,
}

impl Canvas {
    fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, value: f32) {
        for y in 0..SIZE {
            for x in 0..SIZE {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
                if dx * dx + dy * dy <= 1.0 {
                    self.pixels[y * SIZE + x] = value;
                }
            }
        }
    }

    fn finish(&self, rng: &mut Rng) -> Img {
        let data = self
            .pixels
            .iter()
            .map(|&v| (v + rng.uniform(-12.0, 12.0) as f32).round().clamp(0.0, 255.0) as u8)
            .collect();
        Img { width: SIZE, height: SIZE, channels: 1, data }
    }
}

/// Lung fields (left, right) as (cx, cy, rx, ry), jittered per patient.
fn lungs(rng: &mut Rng) -> [(f32, f32, f32, f32); 2] {
    let j = |rng: &mut Rng| rng.uniform(-2.0, 2.0) as f32;
    [
        (20.0 + j(rng), 30.0 + j(rng), 10.0 + j(rng) / 2.0, 20.0 + j(rng)),
        (44.0 + j(rng), 30.0 + j(rng), 10.0 + j(rng) / 2.0, 20.0 + j(rng)),
    ]
}

fn chest(rng: &mut Rng, findings: [bool; 4]) -> (Img, Img) {
    let mut canvas = Canvas { pixels: vec![40.0; SIZE * SIZE] };
    canvas.ellipse(32.0, 34.0, 29.0, 31.0, 150.0);
    let lung_fields = lungs(rng);
    let mut mask = Canvas { pixels: vec![0.0; SIZE * SIZE] };
    for &(cx, cy, rx, ry) in &lung_fields {
        canvas.ellipse(cx, cy, rx, ry, 70.0);
        mask.ellipse(cx, cy, rx, ry, 255.0);
    }
    // Each finding is drawn large or repeated, so that the study's RandomResizedCrop (down to 8% of the
    // area) still shows it in most crops and a few epochs at 32 px learn it.
    let heart = if findings[0] { rng.uniform(14.0, 16.0) } else { rng.uniform(4.0, 6.0) } as f32;
    canvas.ellipse(30.0, 42.0, heart, heart * 0.8, 175.0);
    if findings[1] {
        for &(lx, ly, lrx, lry) in &lung_fields {
            for y in (ly - lry * 0.1) as usize..SIZE {
                for x in (lx - lrx).max(0.0) as usize..((lx + lrx) as usize).min(SIZE) {
                    let p = &mut canvas.pixels[y * SIZE + x];
                    if *p < 100.0 {
                        *p = 205.0;
                    }
                }
            }
        }
    }
    if findings[2] {
        let (cx, cy, ..) = lung_fields[0];
        canvas.ellipse(cx + rng.uniform(-3.0, 3.0) as f32, cy - rng.uniform(4.0, 10.0) as f32, 6.0, 6.0, 235.0);
    }
    if findings[3] {
        for &(lx, ly, lrx, lry) in lung_fields.iter().cycle().take(6) {
            let (dx, dy) = (rng.uniform(-0.6, 0.6) as f32, rng.uniform(-0.7, 0.7) as f32);
            canvas.ellipse(lx + dx * lrx, ly + dy * lry, 3.0, 3.0, 250.0);
        }
    }
    let noise_mask =
        Img { width: SIZE, height: SIZE, channels: 1, data: mask.pixels.iter().map(|&v| v as u8).collect() };
    (canvas.finish(rng), noise_mask)
}

/// Writes a fresh folder atomically: built under a staging name, renamed into place when complete.
fn write_folder(target: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let staging = target.with_file_name(format!(
        ".{}.tmp.{}",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("demo"),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
    fill(&staging)?;
    fs::write(staging.join(COMPLETE_MARKER), b"").with_context(|| format!("cannot write in {}", staging.display()))?;
    if target.exists() {
        fs::remove_dir_all(target).with_context(|| format!("cannot replace {}", target.display()))?;
    }
    fs::rename(&staging, target)
        .with_context(|| format!("cannot move {} to {}", staging.display(), target.display()))?;
    crate::atomic::sync_dir(target.parent().unwrap_or(Path::new("."))).context("cannot sync the demo folder")
}

fn put(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

fn write_cls(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("images")).with_context(|| format!("cannot create {}/images", dir.display()))?;
    let mut rng = Rng::new(20211);
    let mut n = 0;
    for (split, count) in CLS_SPLITS {
        let mut list = String::new();
        for _ in 0..count {
            let findings = [rng.unit() < 0.3, rng.unit() < 0.3, rng.unit() < 0.3, rng.unit() < 0.3];
            let (img, _) = chest(&mut rng, findings);
            let name = format!("{n:05}_000.png");
            put(&dir.join("images").join(&name), &img.encode_png()?)?;
            let labels: Vec<&str> = findings.iter().map(|&f| if f { "1" } else { "0" }).collect();
            list.push_str(&format!("{name} {}\n", labels.join(" ")));
            n += 1;
        }
        put(&dir.join(format!("{split}.txt")), list.as_bytes())?;
    }
    Ok(())
}

fn write_seg(dir: &Path) -> Result<()> {
    let mut rng = Rng::new(20212);
    let mut n = 0;
    for (split, count) in SEG_SPLITS {
        for sub in ["images", "masks"] {
            fs::create_dir_all(dir.join(split).join(sub))
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        for _ in 0..count {
            let findings = [rng.unit() < 0.3, false, false, false];
            let (img, mask) = chest(&mut rng, findings);
            let name = format!("{n:04}.png");
            put(&dir.join(split).join("images").join(&name), &img.encode_png()?)?;
            put(&dir.join(split).join("masks").join(&name), &mask.encode_png()?)?;
            n += 1;
        }
    }
    Ok(())
}

/// Writes `dir/demo-cls` and `dir/demo-seg` (replacing older ones). Returns their paths.
pub fn write(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (cls, seg) = (dir.join("demo-cls"), dir.join("demo-seg"));
    write_folder(&cls, write_cls)?;
    write_folder(&seg, write_seg)?;
    Ok((cls, seg))
}

/// The demo datasets of a home, generated on first use: `<home>/datasets/demo-cls` and `demo-seg`.
/// Concurrent first runs take turns on a lock, so none replaces a folder another one is already reading.
pub fn ensure(datasets_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let (cls, seg) = (datasets_dir.join("demo-cls"), datasets_dir.join("demo-seg"));
    let complete = || cls.join(COMPLETE_MARKER).exists() && seg.join(COMPLETE_MARKER).exists();
    if complete() {
        return Ok((cls, seg));
    }
    fs::create_dir_all(datasets_dir).with_context(|| format!("cannot create {}", datasets_dir.display()))?;
    let lock_path = datasets_dir.join(".demo.lock");
    let lock = fs::File::create(&lock_path).with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("cannot lock {}", lock_path.display()))?;
    if complete() {
        return Ok((cls, seg));
    }
    write(datasets_dir)
}
