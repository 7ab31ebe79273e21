//! The typed files of a run folder: spec.toml, status.json, metrics.jsonl lines, result.json.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SPEC_FILE: &str = "spec.toml";
pub const STATUS_FILE: &str = "status.json";
pub const METRICS_FILE: &str = "metrics.jsonl";
pub const RESULT_FILE: &str = "result.json";
pub const LOG_FILE: &str = "train.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classification,
    Segmentation,
}

/// The fully resolved configuration of one run, written once at enqueue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub id: String,
    pub dataset: String,
    pub task: Task,
    /// A zoo id, "random", or a path to a .safetensors file.
    pub init: String,
    pub trial: u32,
    pub seed: u64,
    #[serde(default)]
    pub sweep: Option<String>,
    #[serde(default = "default_executor")]
    pub executor: String,
    pub data: DataSpec,
    pub hyper: Hyper,
    pub device: DeviceSpec,
    #[serde(default)]
    pub snapshot: Snapshot,
}

fn default_executor() -> String {
    "local".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSpec {
    /// Folder the dataset's image paths are relative to.
    pub root: Option<PathBuf>,
    pub train_list: Option<PathBuf>,
    pub val_list: Option<PathBuf>,
    pub test_list: Option<PathBuf>,
    /// Percent of the training set used (the study's label-efficiency subsets).
    pub anno_percent: u32,
    pub image_size: u32,
    pub workers: usize,
    /// imagenet | chestxray | none; resolved at plan time (None in older specs: the dataset spec's default).
    pub normalization: Option<String>,
    /// The study-protocol settings (label policy, anno scope, head init, padding, loss, ...).
    pub protocol: crate::data::protocol::Protocol,
    /// Segmentation resize, mask threshold, augmentation and loss; None = the study's for the dataset.
    #[serde(default)]
    pub segmentation: Option<crate::data::segaug::SegOptions>,
}

impl Default for DataSpec {
    fn default() -> Self {
        DataSpec {
            root: None,
            train_list: None,
            val_list: None,
            test_list: None,
            anno_percent: 100,
            image_size: 224,
            workers: 2,
            normalization: None,
            protocol: Default::default(),
            segmentation: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    pub epochs: u32,
    pub batch_size: usize,
    pub test_batch_size: usize,
    pub lr: f64,
    pub patience: u32,
    /// adam | adamw | sgd
    pub optimizer: String,
    pub weight_decay: f64,
    pub momentum: f64,
    /// plateau | cosine | none
    pub scheduler: String,
    /// Classification: ten-crop test-time averaging.
    pub tta: bool,
}

impl Hyper {
    /// The study's protocol for a task.
    pub fn study_defaults(task: Task) -> Hyper {
        match task {
            Task::Classification => Hyper {
                epochs: 1000,
                batch_size: 32,
                test_batch_size: 32,
                lr: 2e-4,
                patience: 10,
                optimizer: "adam".into(),
                weight_decay: 0.0,
                momentum: 0.9,
                scheduler: "plateau".into(),
                tta: true,
            },
            Task::Segmentation => Hyper {
                epochs: 200,
                batch_size: 32,
                test_batch_size: 48,
                lr: 1e-3,
                patience: 20,
                optimizer: "adam".into(),
                weight_decay: 0.0,
                momentum: 0.9,
                scheduler: "cosine".into(),
                tta: false,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSpec {
    /// cpu | cuda | cuda:N
    pub device: String,
    /// CPU threads (0 = libtorch's default).
    pub threads: usize,
    /// fp32 | tf32 | bf16
    pub precision: String,
    /// nchw | nhwc
    pub memory_format: String,
}

impl Default for DeviceSpec {
    fn default() -> Self {
        DeviceSpec { device: "cpu".into(), threads: 0, precision: "fp32".into(), memory_format: "nchw".into() }
    }
}

/// What the run was made from, recorded at enqueue so results stay traceable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Snapshot {
    pub medxfer_version: String,
    pub git_commit: String,
    /// sha256 of each split list, by role (train, val, test).
    pub lists: BTreeMap<String, String>,
    pub init_sha256: Option<String>,
}

impl RunSpec {
    /// One run of `init` on `dataset` with the study's hyperparameters for `task` and the defaults elsewhere:
    /// trial 1 (seed 1), local, the default data and device settings, in no sweep, nothing snapshotted.
    /// Callers set what differs; `sched::sweep::plan` resolves every field of the runs it writes.
    pub fn study(id: &str, dataset: &str, task: Task, init: &str) -> RunSpec {
        RunSpec {
            id: id.into(),
            dataset: dataset.into(),
            task,
            init: init.into(),
            trial: 1,
            seed: 1,
            sweep: None,
            executor: "local".into(),
            data: DataSpec::default(),
            hyper: Hyper::study_defaults(task),
            device: DeviceSpec::default(),
            snapshot: Snapshot::default(),
        }
    }

    pub fn load(dir: &Path) -> Result<RunSpec> {
        let path = dir.join(SPEC_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let spec: RunSpec = crate::config::parse_toml(&path, &text)?;
        validate_run_id(&spec.id).with_context(|| format!("{}: field id", path.display()))?;
        Ok(spec)
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)?;
        crate::atomic::write(&dir.join(SPEC_FILE), text.as_bytes())
            .with_context(|| format!("cannot write {}", dir.join(SPEC_FILE).display()))
    }

    /// Applies one `--set key=value` override.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value.parse().map_err(|_| anyhow::anyhow!("--set {key}={value}: {value:?} is not a valid number"))
        }
        match key {
            "epochs" => self.hyper.epochs = num(key, value)?,
            "batch_size" => self.hyper.batch_size = num(key, value)?,
            "test_batch_size" => self.hyper.test_batch_size = num(key, value)?,
            "lr" => self.hyper.lr = num(key, value)?,
            "patience" => self.hyper.patience = num(key, value)?,
            "weight_decay" => self.hyper.weight_decay = num(key, value)?,
            "momentum" => self.hyper.momentum = num(key, value)?,
            "optimizer" => self.hyper.optimizer = one_of(key, value, &["adam", "adamw", "sgd"])?,
            "scheduler" => self.hyper.scheduler = one_of(key, value, &["plateau", "cosine", "none"])?,
            "tta" => self.hyper.tta = num(key, value)?,
            "image_size" => self.data.image_size = num(key, value)?,
            "workers" => self.data.workers = num(key, value)?,
            "anno_percent" => {
                let p: u32 = num(key, value)?;
                if !(1..=100).contains(&p) {
                    bail!("--set anno_percent={value}: must be between 1 and 100");
                }
                self.data.anno_percent = p
            }
            "normalization" => self.data.normalization = Some(one_of(key, value, &["imagenet", "chestxray", "none"])?),
            "seed" => self.seed = num(key, value)?,
            key if crate::data::protocol::KEYS.contains(&key) => self.data.protocol.set(key, value)?,
            "device" => {
                crate::gpu::Wanted::parse(value).map_err(|why| anyhow::anyhow!("--set device={value}: {why}"))?;
                self.device.device = value.trim().to_string()
            }
            "threads" => self.device.threads = num(key, value)?,
            "precision" => self.device.precision = one_of(key, value, &["fp32", "tf32", "bf16"])?,
            "memory_format" => self.device.memory_format = one_of(key, value, &["nchw", "nhwc"])?,
            k if crate::data::segaug::SET_KEYS.contains(&k) => {
                if self.task != Task::Segmentation {
                    bail!("--set {key}={value}: {key} applies to segmentation datasets only");
                }
                let study = crate::data::segaug::SegOptions::study(&self.dataset);
                self.data.segmentation.get_or_insert(study).set(key, value)?
            }
            _ => bail!("--set {key}={value}: unknown key {key:?}; the keys: {}", set_keys().join(", ")),
        }
        Ok(())
    }
}

/// The `--set` keys of the run's own settings (the protocol's and the segmentation options' come after).
const OWN_SET_KEYS: &[&str] = &[
    "epochs",
    "batch_size",
    "test_batch_size",
    "lr",
    "patience",
    "weight_decay",
    "momentum",
    "optimizer",
    "scheduler",
    "tta",
    "image_size",
    "workers",
    "anno_percent",
    "normalization",
    "seed",
    "device",
    "threads",
    "precision",
    "memory_format",
];

/// Every key `RunSpec::set` takes.
pub fn set_keys() -> Vec<&'static str> {
    [OWN_SET_KEYS, crate::data::protocol::KEYS, crate::data::segaug::SET_KEYS].concat()
}

fn one_of(key: &str, value: &str, allowed: &[&str]) -> Result<String> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        bail!("--set {key}={value}: expected one of {}", allowed.join(", "))
    }
}

/// Run ids are folder names: `[a-z0-9._-]`, not starting with a dot, at most 200 bytes.
pub fn validate_run_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        bail!("run id {id:?} is not a plain name (lowercase letters, digits, '.', '_', '-')");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Queued,
    Running,
    Stopped,
    Failed,
    Finished,
}

impl State {
    pub const ALL: [State; 5] = [State::Queued, State::Running, State::Stopped, State::Failed, State::Finished];

    const NAMES: [&'static str; 5] = [
        State::Queued.as_str(),
        State::Running.as_str(),
        State::Stopped.as_str(),
        State::Failed.as_str(),
        State::Finished.as_str(),
    ];

    /// The state's name in status.json, `runs ls` and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Running => "running",
            State::Stopped => "stopped",
            State::Failed => "failed",
            State::Finished => "finished",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, State::Failed | State::Finished)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<State, D::Error> {
        let name = String::deserialize(deserializer)?;
        State::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| serde::de::Error::unknown_variant(&name, &State::NAMES))
    }
}

/// status.json, replaced atomically; only `runs::lifecycle` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: State,
    #[serde(default)]
    pub epoch: u32,
    #[serde(default)]
    pub best_epoch: Option<u32>,
    #[serde(default)]
    pub best_val_loss: Option<f64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub pid: Option<u32>,
    /// RFC 3339 time of the last change.
    #[serde(default)]
    pub updated: String,
}

impl Status {
    pub fn new(state: State) -> Status {
        Status {
            state,
            epoch: 0,
            best_epoch: None,
            best_val_loss: None,
            reason: None,
            pid: None,
            updated: now_rfc3339(),
        }
    }

    pub fn load(dir: &Path) -> Result<Status> {
        let path = dir.join(STATUS_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid status", path.display()))
    }

    /// Writes this status as it is, for tests' fixtures; the program changes a run's state only through
    /// `runs::lifecycle`, which checks the transition.
    pub fn save(&self, dir: &Path) -> Result<()> {
        super::lifecycle::write(dir, self)
    }
}

/// One line of metrics.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricLine {
    /// "step" or "epoch".
    pub kind: String,
    pub epoch: u32,
    pub step: u64,
    pub train_loss: Option<f64>,
    #[serde(default)]
    pub val_loss: Option<f64>,
    pub lr: f64,
    pub images_per_s: f64,
    pub elapsed_s: f64,
    /// Validation metrics (epoch lines).
    #[serde(default)]
    pub val: BTreeMap<String, f64>,
    /// Batches in one training epoch (step lines), for progress and ETA inside an epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_batches: Option<u64>,
}

/// result.json: what the leaderboard aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub run_id: String,
    pub dataset: String,
    pub init: String,
    pub trial: u32,
    pub seed: u64,
    pub anno_percent: u32,
    pub task: Task,
    /// "auc" or "dice".
    pub metric: String,
    /// The headline number: mean AUROC over the test classes, or Dice.
    pub mean: f64,
    pub per_class: BTreeMap<String, f64>,
    /// Other test metrics (dice_global, dice_per_image, iou, ...).
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
    pub best_epoch: u32,
    pub epochs_run: u32,
    /// Scoring conventions; runs are only ranked together when these are equal.
    pub conventions: BTreeMap<String, serde_json::Value>,
}

impl RunResult {
    pub fn load(dir: &Path) -> Result<RunResult> {
        let path = dir.join(RESULT_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a valid result", path.display()))
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(RESULT_FILE);
        crate::atomic::write(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Current UTC time as RFC 3339 (seconds).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format_rfc3339(secs as i64)
}

/// Formats a Unix time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(secs: i64) -> String {
    utc(secs, "%Y-%m-%dT%H:%M:%SZ")
}

/// Formats a Unix time as `YYYYMMDD-HHMMSS` (run id prefix).
pub fn format_compact(secs: i64) -> String {
    utc(secs, "%Y%m%d-%H%M%S")
}

fn utc(secs: i64, format: &str) -> String {
    let time = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    time.format(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec::study("20261126-081200-demo-cls-imagenet-t1", "demo-cls", Task::Classification, "imagenet")
    }

    #[test]
    fn spec_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec();
        s.save(dir.path()).unwrap();
        assert_eq!(RunSpec::load(dir.path()).unwrap(), s);
    }

    /// study-protocol.md §1, §4: main_classification.py's and main_segmentation.py's defaults (engine.py:42-45,
    /// 67-71,92,120,133; engine.py:194-214,235,242); sizes 256/224 (dataloader.py:25); anno_percent 100.
    #[test]
    fn the_default_hyperparameters_and_sizes_are_the_studys() {
        let cls = Hyper::study_defaults(Task::Classification);
        assert_eq!((cls.epochs, cls.batch_size, cls.test_batch_size, cls.lr, cls.patience), (1000, 32, 32, 2e-4, 10));
        assert_eq!(
            (cls.optimizer.as_str(), cls.weight_decay, cls.scheduler.as_str(), cls.tta),
            ("adam", 0.0, "plateau", true)
        );
        let seg = Hyper::study_defaults(Task::Segmentation);
        assert_eq!((seg.epochs, seg.batch_size, seg.test_batch_size, seg.lr, seg.patience), (200, 32, 48, 1e-3, 20));
        assert_eq!(
            (seg.optimizer.as_str(), seg.weight_decay, seg.scheduler.as_str(), seg.tta),
            ("adam", 0.0, "cosine", false)
        );
        let data = DataSpec::default();
        assert_eq!((data.image_size, data.anno_percent), (224, 100));
    }

    #[test]
    fn overrides_are_checked() {
        let mut s = spec();
        s.set("epochs", "3").unwrap();
        s.set("lr", "0.01").unwrap();
        assert_eq!((s.hyper.epochs, s.hyper.lr), (3, 0.01));
        assert!(s.set("epochs", "many").unwrap_err().to_string().contains("\"many\""));
        assert!(s.set("anno_percent", "0").is_err());
        assert!(s.set("colour", "red").unwrap_err().to_string().contains("unknown key"));
        assert!(s.set("precision", "fp8").is_err());
    }

    #[test]
    fn an_unknown_key_is_refused_with_every_key_that_exists() {
        let err = spec().set("colour", "red").unwrap_err().to_string();
        assert!(err.contains("unknown key \"colour\"; the keys: epochs, batch_size"), "{err}");
        let mut seg = RunSpec::study("x", "demo-seg", Task::Segmentation, "random");
        for key in set_keys() {
            assert!(err.contains(key), "{key} is missing from: {err}");
            if let Err(e) = seg.set(key, "?") {
                assert!(!e.to_string().contains("unknown key"), "{key} is listed but refused as unknown: {e}");
            }
        }
    }

    #[test]
    fn run_ids_must_be_plain_names() {
        validate_run_id("20261126-081200-chestxray14-swav-t3").unwrap();
        for bad in ["", "../x", "a/b", ".hidden", "A", "a\nb", "/abs"] {
            assert!(validate_run_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_spec_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SPEC_FILE), "id = \"x\"\ndataset = 3\n").unwrap();
        let err = RunSpec::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("spec.toml:2"), "{err}");
    }

    #[test]
    fn a_state_reads_back_the_name_it_is_written_as() {
        for state in State::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{state}\""));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), state);
        }
        let err = serde_json::from_str::<State>("\"paused\"").unwrap_err().to_string();
        assert!(err.contains("paused") && err.contains("finished"), "{err}");
    }

    #[test]
    fn civil_time_formats() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_795_680_720), "2026-11-26T08:12:00Z");
        assert_eq!(format_compact(1_795_680_720), "20261126-081200");
        // Python's datetime.fromtimestamp(s, timezone.utc): a leap day, before 1970, a century not leap.
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(-86_401), "1969-12-30T23:59:59Z");
        assert_eq!(format_rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
