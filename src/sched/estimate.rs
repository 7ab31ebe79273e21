//! How long a sweep's new runs may take on this machine: the seconds per image and epoch measured by an
//! earlier run in this home with the same task, device, precision and image size, times the planned runs'
//! images (train + validation, after the label subset) and their epoch limit. An upper bound: early stopping
//! ends most runs sooner. Before any such run, a classification sweep is timed from a calibration instead:
//! `medxfer bench train-step` on this device and size, measured once and kept in the home's cache
//! (`throughput.json`); it leaves out image decoding, so it is the rougher of the two.

use super::sweep::PlannedRun;
use crate::home::Home;
use crate::runs::record::{MetricLine, RunSpec, Task};
use crate::runs::store::{self, RunEntry, tail::MetricsTail};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The longest of the new runs, every epoch trained (seconds).
    pub max_run_s: f64,
    /// The new runs one after the other, every epoch trained (seconds); slots running at once divide it.
    pub max_total_s: f64,
    /// Seconds per image per epoch (training and validation), as measured.
    pub s_per_image_epoch: f64,
    /// Where that figure comes from: a run id, or with `calibrated` the calibration's description.
    pub measured_in: String,
    #[serde(default)]
    pub calibrated: bool,
}

/// The calibrations kept in the home: images/s of a train step, by `calibration_key`.
const CALIBRATIONS: &str = "throughput.json";
/// Batch of the calibration's train steps, at most (a CPU step at 224 px takes seconds per 8 images).
const CALIBRATION_BATCH: usize = 8;

/// What a run costs per epoch is compared between runs that agree on these.
fn key(spec: &RunSpec) -> (Task, String, String, u32) {
    (spec.task, device_kind(&spec.device.device), spec.device.precision.clone(), spec.data.image_size)
}

fn device_kind(device: &str) -> String {
    device.split(':').next().unwrap_or(device).to_string()
}

/// The estimate for a plan's new runs from the runs already in `home`, or the sentence that says why
/// there is none.
pub fn for_plan(plan: &[PlannedRun], home: &Home) -> Result<Estimate, String> {
    let new: Vec<&RunSpec> = plan.iter().filter(|p| p.existing.is_none()).map(|p| &p.spec).collect();
    let Some(first) = new.first() else { return Err("nothing new to run".into()) };
    let (earlier, _) = store::list_runs(&home.runs);
    let (per_image_epoch, measured_in, calibrated) = match measured(first, &earlier) {
        Some((s, run)) => (s, run, false),
        None if first.executor == "slurm" => {
            return Err("no time estimate: the runs go to Slurm, and no earlier run measured its nodes".into());
        }
        None if first.task != Task::Classification => return Err(missing_reason(first)),
        None => {
            let (s, what) =
                calibration(first, home).map_err(|e| format!("{}; calibration failed: {e}", missing_reason(first)))?;
            (s, what, true)
        }
    };
    // A plan's runs differ in their model, trial and label percentage; only the last changes the images.
    let mut images_at: BTreeMap<u32, usize> = BTreeMap::new();
    let mut runs = Vec::new();
    for spec in new {
        let percent = spec.data.anno_percent;
        let images = match images_at.get(&percent) {
            Some(n) => *n,
            None => {
                let splits = crate::data::resolve(&spec.dataset, &spec.data, home, spec.seed)
                    .map_err(|e| format!("no time estimate: {}", crate::error::one_sentence(&e)))?;
                *images_at.entry(percent).or_insert(splits.train.len() + splits.val.len())
            }
        };
        runs.push((spec.hyper.epochs, images));
    }
    Ok(Estimate { calibrated, ..of(per_image_epoch, measured_in, &runs) })
}

fn calibration_key(spec: &RunSpec) -> String {
    let batch = spec.hyper.batch_size.min(CALIBRATION_BATCH);
    format!(
        "resnet50 train-step {} {} {}px batch {batch}",
        device_kind(&spec.device.device),
        spec.device.precision,
        spec.data.image_size
    )
}

/// Seconds per image-epoch from the home's calibration for runs like `spec`, measuring it first when the home
/// has none (a few seconds: `medxfer bench train-step`, the same binary, a child process). Plans checked at
/// once (the Launch view's preflights) wait for one another here, so each size is measured once.
fn calibration(spec: &RunSpec, home: &Home) -> Result<(f64, String), String> {
    std::fs::create_dir_all(&home.cache).map_err(|e| format!("cannot create {}: {e}", home.cache.display()))?;
    let _one_at_a_time = crate::zoo::lock::IdLock::acquire(&home.cache.join("throughput.lock"))
        .map_err(|e| crate::error::one_sentence(&e))?;
    let path = home.cache.join(CALIBRATIONS);
    let mut known: BTreeMap<String, f64> =
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let key = calibration_key(spec);
    let rate = match known.get(&key) {
        Some(rate) => *rate,
        None => {
            let rate = measure_train_steps(spec)?;
            known.insert(key.clone(), rate);
            let text = serde_json::to_string_pretty(&known).map_err(|e| e.to_string())?;
            // A calibration that cannot be kept is measured again next time; the estimate stands.
            let _ = crate::atomic::write(&path, text.as_bytes());
            rate
        }
    };
    if rate.is_nan() || rate <= 0.0 {
        return Err(format!("{} says {rate} images/s", path.display()));
    }
    Ok((1.0 / rate, format!("the {key} calibration, {rate:.1} img/s without decoding")))
}

fn measure_train_steps(spec: &RunSpec) -> Result<f64, String> {
    #[derive(Deserialize)]
    struct Rate {
        images_per_s: f64,
    }
    let batch = spec.hyper.batch_size.min(CALIBRATION_BATCH).to_string();
    let size = spec.data.image_size.to_string();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let args = ["bench", "train-step", "--device", &spec.device.device, "--precision", &spec.device.precision];
    let out = std::process::Command::new(exe)
        .args(args)
        .args(["--size", &size, "--batch", &batch, "--warmup", "1", "--steps", "2"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match serde_json::from_str::<Rate>(stdout.trim()) {
        Ok(rate) if out.status.success() => Ok(rate.images_per_s),
        _ => Err(String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("no output").to_string()),
    }
}

/// A sentence for when there is nothing to estimate from.
pub fn missing_reason(spec: &RunSpec) -> String {
    format!(
        "no time estimate yet: no run in this home has finished an epoch on {} at {} px; the first one's speed is used",
        device_kind(&spec.device.device),
        spec.data.image_size
    )
}

/// The measured cost of one image-epoch for runs like `like`: from the newest run in `earlier` that agrees
/// on the key, has an epoch line and its `splits/` lists. None when no run qualifies.
pub fn measured(like: &RunSpec, earlier: &[RunEntry]) -> Option<(f64, String)> {
    let want = key(like);
    let mut candidates: Vec<&RunEntry> = earlier.iter().filter(|r| key(&r.spec) == want).collect();
    candidates.sort_by(|a, b| b.id.cmp(&a.id));
    candidates.into_iter().find_map(|run| per_image_epoch(&run.dir).map(|s| (s, run.id.clone())))
}

/// Seconds per image-epoch of one run folder: its time at the last epoch line over the epochs it finished
/// and the images of its train and validation lists.
fn per_image_epoch(dir: &Path) -> Option<f64> {
    let lines = MetricsTail::new(dir).read_new().ok()?.lines;
    let epochs: Vec<&MetricLine> = lines.iter().filter(|l| l.kind == "epoch").collect();
    let last = epochs.last()?;
    let done = epochs.iter().map(|l| l.epoch).collect::<BTreeSet<_>>().len();
    let images: usize =
        ["train.txt", "val.txt"].iter().map(|f| count_lines(&dir.join("splits").join(f))).sum::<Option<usize>>()?;
    (images > 0 && last.elapsed_s > 0.0).then(|| last.elapsed_s / (done as f64 * images as f64))
}

fn count_lines(path: &Path) -> Option<usize> {
    std::fs::read_to_string(path).ok().map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
}

/// The estimate for new runs given each one's epoch limit and images per epoch.
pub fn of(per_image_epoch: f64, measured_in: String, runs: &[(u32, usize)]) -> Estimate {
    let each: Vec<f64> =
        runs.iter().map(|&(epochs, images)| per_image_epoch * f64::from(epochs) * images as f64).collect();
    Estimate {
        max_run_s: each.iter().copied().fold(0.0, f64::max),
        max_total_s: each.iter().sum(),
        s_per_image_epoch: per_image_epoch,
        measured_in,
        calibrated: false,
    }
}

/// "3h05m", "12m40s", "45s".
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::record::{DataSpec, DeviceSpec};

    fn spec(id: &str, device: &str, image_size: u32) -> RunSpec {
        RunSpec {
            data: DataSpec { image_size, ..DataSpec::default() },
            device: DeviceSpec { device: device.into(), ..DeviceSpec::default() },
            ..RunSpec::study(id, "demo-cls", Task::Classification, "random")
        }
    }

    fn run(dir: &Path, id: &str, device: &str, size: u32, epochs: &[(u32, f64)], train: usize, val: usize) -> RunEntry {
        let d = dir.join(id);
        std::fs::create_dir_all(d.join("splits")).unwrap();
        let lines: String = epochs
            .iter()
            .map(|(e, t)| {
                format!(
                    "{{\"kind\":\"epoch\",\"epoch\":{e},\"step\":1,\"train_loss\":0.5,\"lr\":0.1,\"images_per_s\":1,\"elapsed_s\":{t}}}\n"
                )
            })
            .collect();
        std::fs::write(d.join("metrics.jsonl"), lines).unwrap();
        std::fs::write(d.join("splits/train.txt"), "a\n".repeat(train)).unwrap();
        std::fs::write(d.join("splits/val.txt"), "b\n".repeat(val)).unwrap();
        RunEntry { id: id.into(), dir: d, spec: spec(id, device, size), status: None, result: None }
    }

    #[test]
    fn the_newest_run_alike_sets_the_speed_and_the_estimate_scales_with_images_and_epochs() {
        let dir = tempfile::tempdir().unwrap();
        // 100 images, 2 epochs in 40 s: 0.2 s per image-epoch. A redone epoch 2 counts once.
        let old = run(dir.path(), "20260101-000000-a", "cpu", 64, &[(1, 999.0)], 1, 0);
        let new = run(dir.path(), "20260102-000000-a", "cpu", 64, &[(1, 20.0), (2, 30.0), (2, 40.0)], 80, 20);
        let gpu = run(dir.path(), "20260103-000000-a", "cuda:0", 64, &[(1, 1.0)], 80, 20);
        let other_size = run(dir.path(), "20260104-000000-a", "cpu", 224, &[(1, 1.0)], 80, 20);
        let earlier = [old, new, gpu, other_size];
        let mut like = spec("planned", "cpu", 64);
        let (s, from) = measured(&like, &earlier).unwrap();
        assert!((s - 0.2).abs() < 1e-12, "{s}");
        assert_eq!(from, "20260102-000000-a");
        let e = of(s, from, &[(10, 50), (5, 50)]);
        assert!((e.max_run_s - 100.0).abs() < 1e-9 && (e.max_total_s - 150.0).abs() < 1e-9, "{e:?}");
        like.device.device = "cuda:1".into();
        assert_eq!(measured(&like, &earlier).unwrap().1, "20260103-000000-a", "cuda:N are one kind");
        like.data.image_size = 32;
        assert!(measured(&like, &earlier).is_none());
        assert!(missing_reason(&like).contains("cuda at 32 px"));
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration_text(45.2), "45s");
        assert_eq!(duration_text(760.0), "12m40s");
        assert_eq!(duration_text(11_100.0), "3h05m");
    }
}
