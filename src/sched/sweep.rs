//! Sweeps: datasets × models × trials × label fractions expanded into RunSpecs, matched against the runs
//! already on disk by identity (the resolved spec without id, sweep, executor and snapshot), and written
//! as queued run folders.

use crate::data::{DatasetSpec, shipped};
use crate::runs::record::{DataSpec, DeviceSpec, Hyper, RunSpec, Snapshot, State, Task, validate_run_id};
use crate::zoo::ModelPaths;
use crate::zoo::verify::hash_file;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the user asked for. Built from `medxfer sweep`'s arguments (`cli::sweep::Args::request`) or from
/// the TUI's Launch form (`tui::launch::plan`), carried by the TUI's sweep effects, and turned back into that
/// command's arguments by `args` alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepRequest {
    pub dataset: String,
    /// Zoo ids, "random", or paths to .safetensors files; ["all"] = the 21 zoo ids.
    pub models: Vec<String>,
    pub trials: u32,
    /// Empty = 100.
    pub anno_percents: Vec<u32>,
    /// `--set key=value` in order.
    pub overrides: Vec<(String, String)>,
    /// `--executor`; None = config.toml's scheduler.executor, filled in by the command before `plan` (which
    /// takes None as local).
    pub executor: Option<String>,
    pub root: Option<PathBuf>,
    pub train_list: Option<PathBuf>,
    pub val_list: Option<PathBuf>,
    pub test_list: Option<PathBuf>,
    /// The device when not set: "cuda" on a machine with GPUs, else "cpu". Chosen by the command where it
    /// runs, so never one of its arguments.
    pub default_device: String,
}

impl SweepRequest {
    /// The `medxfer` arguments that ask for this sweep (the output flags, `--json` and `--dry-run`, are the
    /// caller's).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["sweep", "--dataset", &self.dataset, "--models", &self.models.join(",")]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--trials".into(), self.trials.to_string()]);
        if !self.anno_percents.is_empty() {
            let list: Vec<String> = self.anno_percents.iter().map(u32::to_string).collect();
            args.extend(["--anno-percent".into(), list.join(",")]);
        }
        for (key, value) in &self.overrides {
            args.extend(["--set".into(), format!("{key}={value}")]);
        }
        if let Some(executor) = &self.executor {
            args.extend(["--executor".into(), executor.clone()]);
        }
        let paths = [
            ("--root", &self.root),
            ("--train-list", &self.train_list),
            ("--val-list", &self.val_list),
            ("--test-list", &self.test_list),
        ];
        for (flag, path) in paths {
            if let Some(path) = path {
                args.extend([flag.into(), path.to_string_lossy().into_owned()]);
            }
        }
        args
    }

    /// How many runs the sweep holds: models × label fractions × trials.
    pub fn run_count(&self) -> usize {
        self.models.len() * self.anno_percents.len().max(1) * self.trials as usize
    }

    /// The runs' ids without their time stamp, in `plan`'s order (model, percent, trial); "all" is not
    /// expanded.
    pub fn run_names(&self) -> impl Iterator<Item = String> + '_ {
        let percents: &[u32] = if self.anno_percents.is_empty() { &[100] } else { &self.anno_percents };
        self.models.iter().flat_map(move |m| {
            percents.iter().flat_map(move |&p| (1..=self.trials).map(move |t| run_name(&self.dataset, m, t, p)))
        })
    }
}

/// What `medxfer sweep --json` prints (with or without `--dry-run`), and the TUI reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub count: usize,
    pub new: usize,
    pub existing: usize,
    pub runs: Vec<PlanSummaryRun>,
    /// How long the new runs may take here (`sched::estimate`); None with `no_estimate` saying why.
    #[serde(default)]
    pub estimate: Option<super::estimate::Estimate>,
    #[serde(default)]
    pub no_estimate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanSummaryRun {
    pub id: String,
    /// Not on disk before this sweep (queued by it, or would be with `--dry-run`).
    pub new: bool,
    pub state: State,
}

impl PlanSummary {
    pub fn of(plan: &[PlannedRun]) -> PlanSummary {
        let runs: Vec<PlanSummaryRun> = plan
            .iter()
            .map(|p| match &p.existing {
                Some((id, state)) => PlanSummaryRun { id: id.clone(), new: false, state: *state },
                None => PlanSummaryRun { id: p.spec.id.clone(), new: true, state: State::Queued },
            })
            .collect();
        let new = runs.iter().filter(|r| r.new).count();
        PlanSummary { count: runs.len(), new, existing: runs.len() - new, runs, estimate: None, no_estimate: None }
    }

    /// With the time estimate for the new runs (or why there is none).
    pub fn estimated(mut self, estimate: Result<super::estimate::Estimate, String>) -> PlanSummary {
        (self.estimate, self.no_estimate) = match estimate {
            Ok(e) => (Some(e), None),
            Err(why) => (None, Some(why)),
        };
        self
    }

    /// One line: "up to 12m40s per run, 3h05m in all one after the other (…)", or why there is no estimate.
    pub fn time_text(&self) -> Option<String> {
        use super::estimate::duration_text;
        match (&self.estimate, &self.no_estimate) {
            (Some(e), _) => Some(format!(
                "time: up to {} per run, {} for all {} new one after the other ({:.3} s per image and epoch, {} {})",
                duration_text(e.max_run_s),
                duration_text(e.max_total_s),
                self.new,
                e.s_per_image_epoch,
                if e.calibrated { "from" } else { "measured in" },
                e.measured_in
            )),
            (None, why) => why.clone(),
        }
    }
}

/// One planned run: new (to be written) or already on disk under `existing`.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub spec: RunSpec,
    pub existing: Option<(String, State)>,
}

/// The task of a dataset, from its spec (classification when there is no such spec).
pub fn task_of(dataset: &str) -> Task {
    DatasetSpec::load(dataset).map_or(Task::Classification, |spec| spec.task)
}

/// Expands a sweep into specs (ids carry `stamp`, e.g. "20261126-081200") and matches them to `runs`.
pub fn plan(req: &SweepRequest, runs: &Path, stamp: &str, zoo_cache: &Path) -> Result<Vec<PlannedRun>> {
    if validate_run_id(&req.dataset).is_err() {
        bail!("--dataset {:?} is not a plain dataset name (lowercase letters, digits, '.', '_', '-')", req.dataset);
    }
    if req.trials == 0 {
        bail!("--trials 0: at least one trial is needed");
    }
    let models = expand_models(&req.models)?;
    let percents = if req.anno_percents.is_empty() { vec![100] } else { req.anno_percents.clone() };
    if let Some(p) = percents.iter().find(|p| !(1..=100).contains(*p)) {
        bail!("--anno-percent {p}: must be between 1 and 100");
    }
    if req.overrides.iter().any(|(k, _)| k == "anno_percent") && !req.anno_percents.is_empty() {
        bail!("use --anno-percent or --set anno_percent, not both");
    }
    let dataset = DatasetSpec::load(&req.dataset)?;
    let data = base_data(req, &dataset)?;
    let lists = list_hashes(&data, &dataset)?;
    let existing = existing_identities(runs);
    let mut out = Vec::new();
    for init in &models {
        let init_sha256 = init_digest(init, zoo_cache)?;
        if init_sha256.is_none() && init != "random" {
            bail!("model {init} is not converted yet: run `medxfer zoo pull {init}` first (nothing was queued)");
        }
        for &percent in &percents {
            for trial in 1..=req.trials {
                let task = dataset.task;
                let mut spec = RunSpec {
                    id: String::new(),
                    dataset: req.dataset.clone(),
                    task,
                    init: init.clone(),
                    trial,
                    seed: u64::from(trial),
                    sweep: Some(format!("{stamp}-{}", req.dataset)),
                    executor: req.executor.clone().unwrap_or_else(|| "local".into()),
                    data: DataSpec { anno_percent: percent, ..data.clone() },
                    hyper: Hyper::study_defaults(task),
                    device: DeviceSpec { device: req.default_device.clone(), ..DeviceSpec::default() },
                    snapshot: Snapshot {
                        medxfer_version: crate::VERSION.into(),
                        git_commit: crate::GIT_COMMIT.into(),
                        lists: lists.clone(),
                        init_sha256: init_sha256.clone(),
                    },
                };
                crate::data::segaug::resolve_study_defaults(&mut spec);
                for (k, v) in &req.overrides {
                    spec.set(k, v)?;
                }
                resolve_protocol(&mut spec, &dataset)?;
                spec.id = run_id(stamp, &spec);
                let found = existing.get(&identity(&spec)?).cloned();
                out.push(PlannedRun { spec, existing: found });
            }
        }
    }
    Ok(out)
}

/// `YYYYMMDD-HHMMSS-<dataset>-<init>-t<trial>`, plus `-a<P>` below 100 % of the labels.
pub fn run_id(stamp: &str, spec: &RunSpec) -> String {
    format!("{stamp}-{}", run_name(&spec.dataset, &spec.init, spec.trial, spec.data.anno_percent))
}

/// A run id without its time stamp: `<dataset>-<init>-t<trial>`, plus `-a<P>` below 100 % of the labels.
pub fn run_name(dataset: &str, init: &str, trial: u32, anno_percent: u32) -> String {
    let mut name = format!("{dataset}-{}-t{trial}", init_label(init));
    if anno_percent != 100 {
        name.push_str(&format!("-a{anno_percent}"));
    }
    name
}

/// One `--set KEY=VALUE` as (key, value), trimmed.
pub fn parse_override(kv: &str) -> Result<(String, String)> {
    match kv.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => bail!("--set {kv:?}: expected KEY=VALUE"),
    }
}

/// Fills what the dataset decides and the overrides left open: normalisation and the protocol settings.
fn resolve_protocol(spec: &mut RunSpec, dataset: &DatasetSpec) -> Result<()> {
    if spec.data.normalization.is_none() {
        spec.data.normalization = Some(dataset.normalization.name().into());
    }
    spec.data.protocol.resolve(dataset, spec.data.image_size)
}

/// Applies `overrides` to a run spec of `dataset`'s task, as `plan` does, reporting the first bad one.
pub fn check_overrides(dataset: &str, overrides: &[(String, String)]) -> Result<()> {
    let task = task_of(dataset);
    let mut spec = RunSpec { executor: String::new(), ..RunSpec::study("", dataset, task, "random") };
    overrides.iter().try_for_each(|(k, v)| spec.set(k, v))?;
    match DatasetSpec::load(dataset) {
        Ok(dataset) => resolve_protocol(&mut spec, &dataset),
        Err(_) => Ok(()),
    }
}

/// A file init is named by its stem, reduced to `[a-z0-9._-]`.
fn init_label(init: &str) -> String {
    let stem = Path::new(init).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let label: String = stem
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    if label.is_empty() { "init".into() } else { label.trim_start_matches('.').to_string() }
}

fn expand_models(models: &[String]) -> Result<Vec<String>> {
    // The catalog lists the benchmark's models in the study's order; "all" means every one but `random`.
    let catalog = crate::zoo::Catalog::embedded()?;
    let zoo_ids: Vec<&str> = catalog.entries.iter().map(|e| e.id.as_str()).filter(|id| *id != "random").collect();
    let mut out: Vec<String> = Vec::new();
    for m in models.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
        if m == "all" {
            out.extend(zoo_ids.iter().map(|s| s.to_string()));
        } else if m == "random" || zoo_ids.contains(&m) {
            out.push(m.to_string());
        } else if m.ends_with(".safetensors") {
            let path = std::path::absolute(m)?;
            if !path.is_file() {
                bail!("--models: init checkpoint {} does not exist", path.display());
            }
            out.push(path.display().to_string());
        } else {
            bail!("--models: {m:?} is not a zoo id (see `medxfer zoo ls`), \"random\", \"all\" or a .safetensors file");
        }
    }
    if out.is_empty() {
        bail!("--models: no model given");
    }
    out.dedup();
    Ok(out)
}

/// The request's root and lists made absolute, and for a dataset that is not generated (the demos) its root
/// required and every list resolved (given, shipped or the spec's default under the root) and present.
fn base_data(req: &SweepRequest, dataset: &DatasetSpec) -> Result<DataSpec> {
    let abs = |flag: &str, p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
        let Some(p) = p else { return Ok(None) };
        let p = std::path::absolute(p)?;
        if !p.exists() {
            bail!("{flag} {} does not exist", p.display());
        }
        Ok(Some(p))
    };
    let mut data = DataSpec {
        root: abs("--root", &req.root)?,
        train_list: abs("--train-list", &req.train_list)?,
        val_list: abs("--val-list", &req.val_list)?,
        test_list: abs("--test-list", &req.test_list)?,
        ..DataSpec::default()
    };
    if dataset.is_demo() {
        return Ok(data);
    }
    let Some(root) = data.root.clone() else {
        bail!(
            "dataset {} needs --root DIR, the folder its images are under, or root under [datasets.{}] in config.toml (nothing was queued)",
            dataset.name,
            dataset.name
        );
    };
    for (role, list) in [("train", &mut data.train_list), ("val", &mut data.val_list), ("test", &mut data.test_list)] {
        let path = dataset.list_for(&root, role, list.as_deref())?;
        if !shipped::is_shipped(&path) && !path.exists() {
            bail!(
                "dataset {}: its {role} list {} does not exist; pass --{role}-list FILE",
                dataset.name,
                path.display()
            );
        }
        *list = Some(path);
    }
    Ok(data)
}

/// sha256 of each split list; a split folder (image-mask datasets) is hashed as the sample list the run
/// writes for it (`data::split_folder_list_text`), so adding, removing or renaming an image changes it.
fn list_hashes(data: &DataSpec, dataset: &DatasetSpec) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (role, path) in [("train", &data.train_list), ("val", &data.val_list), ("test", &data.test_list)] {
        let Some(path) = path else { continue };
        let digest = if path.is_dir() {
            let root = data.root.as_deref().unwrap_or(path);
            let text = crate::data::split_folder_list_text(dataset, root, path)
                .with_context(|| format!("dataset {}: {role} split folder", dataset.name))?;
            hex::encode(Sha256::digest(text.as_bytes()))
        } else {
            list_sha256(path)?
        };
        out.insert(role.to_string(), digest);
    }
    Ok(out)
}

/// sha256 of the init's weights: the file itself, or the zoo's converted checkpoint when it is cached.
fn init_digest(init: &str, zoo_cache: &Path) -> Result<Option<String>> {
    if init == "random" {
        return Ok(None);
    }
    let path = if init.starts_with('/') { PathBuf::from(init) } else { ModelPaths::converted_weights(zoo_cache, init) };
    if path.is_file() { Ok(Some(hash_file(&path)?.sha256)) } else { Ok(None) }
}

/// sha256 of a split list: a shipped one's embedded text, else the file.
pub fn list_sha256(path: &Path) -> Result<String> {
    match shipped::text(path) {
        Some(text) => Ok(hex::encode(Sha256::digest(text.as_bytes()))),
        None => Ok(hash_file(path)?.sha256),
    }
}

/// What makes two runs the same experiment: the resolved spec without id, sweep, executor and snapshot.
fn identity(spec: &RunSpec) -> Result<String> {
    let mut s = spec.clone();
    s.id.clear();
    s.sweep = None;
    s.executor.clear();
    s.snapshot = Snapshot::default();
    Ok(toml::to_string(&s)?)
}

/// Identity → (id, state) of every readable run on disk (the first by id wins).
fn existing_identities(runs: &Path) -> BTreeMap<String, (String, State)> {
    let mut out = BTreeMap::new();
    for (id, status) in crate::runs::store::statuses(runs) {
        if let Ok(spec) = RunSpec::load(&runs.join(&id))
            && let Ok(key) = identity(&spec)
        {
            out.entry(key).or_insert((id, status.state));
        }
    }
    out
}

/// For the local executor: refuses a plan whose new runs name a device this machine (`gpu_count` NVML GPUs)
/// does not have, since each would fail at launch.
pub fn check_local_devices(plan: &[PlannedRun], gpu_count: u32) -> Result<()> {
    for run in plan.iter().filter(|r| r.existing.is_none()) {
        let wanted = crate::gpu::Wanted::parse(&run.spec.device.device).map_err(anyhow::Error::msg)?;
        if let Some(why) = wanted.refusal(gpu_count) {
            bail!("{why} (nothing was queued)");
        }
    }
    Ok(())
}

/// Writes the new runs of a plan as queued folders (spec.toml + status.json, renamed into place whole).
/// An id already taken gets a `-2`, `-3`... suffix. Returns the ids written.
pub fn write_new(plan: &mut [PlannedRun], runs: &Path) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for p in plan.iter_mut().filter(|p| p.existing.is_none()) {
        let base = p.spec.id.clone();
        let mut n = 1;
        while runs.join(&p.spec.id).exists() {
            n += 1;
            p.spec.id = format!("{base}-{n}");
        }
        let tmp = runs.join(format!(".new-{}-{}", p.spec.id, std::process::id()));
        crate::home::create_private_dir(&tmp)?;
        p.spec.save(&tmp)?;
        crate::runs::lifecycle::enqueue(&tmp)?;
        let dir = runs.join(&p.spec.id);
        std::fs::rename(&tmp, &dir).with_context(|| format!("cannot create run folder {}", dir.display()))?;
        written.push(p.spec.id.clone());
    }
    crate::atomic::sync_dir(runs)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stand-ins for converted zoo weights (planning only checks that they are there).
    fn converted(zoo_cache: &Path, ids: &[&str]) {
        for id in ids {
            std::fs::create_dir_all(zoo_cache.join(id)).unwrap();
            std::fs::write(zoo_cache.join(id).join("resnet50.safetensors"), id.as_bytes()).unwrap();
        }
    }

    fn req(models: &[&str], trials: u32) -> SweepRequest {
        SweepRequest {
            dataset: "demo-cls".into(),
            models: models.iter().map(|s| s.to_string()).collect(),
            trials,
            executor: Some("local".into()),
            default_device: "cpu".into(),
            ..SweepRequest::default()
        }
    }

    #[test]
    fn expands_models_trials_and_label_fractions_with_readable_ids() {
        let t = tempfile::tempdir().unwrap();
        converted(t.path(), &["imagenet", "swav"]);
        let mut r = req(&["imagenet", "swav"], 2);
        r.anno_percents = vec![10, 100];
        r.overrides = vec![("epochs".into(), "1".into())];
        let p = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(p.len(), 8);
        let ids: Vec<_> = p.iter().map(|p| p.spec.id.as_str()).collect();
        assert!(ids.contains(&"20261126-081200-demo-cls-swav-t2-a10"), "{ids:?}");
        assert!(ids.contains(&"20261126-081200-demo-cls-imagenet-t1"), "{ids:?}");
        assert!(p.iter().all(|p| p.spec.seed == u64::from(p.spec.trial) && p.spec.hyper.epochs == 1));
        use crate::data::protocol::SingleImageBatch;
        assert_eq!(p[0].spec.data.protocol.single_image_batch, Some(SingleImageBatch::Keep), "the study's");
        r.overrides.push(("image_size".into(), "32".into()));
        let small = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(small[0].spec.data.protocol.single_image_batch, Some(SingleImageBatch::SkipSingleBelow64px));
        assert_eq!(p[0].spec.snapshot.medxfer_version, crate::VERSION);
    }

    #[test]
    fn all_means_the_21_zoo_models_and_segmentation_is_inferred() {
        let t = tempfile::tempdir().unwrap();
        let catalog = crate::zoo::Catalog::embedded().unwrap();
        converted(t.path(), &catalog.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>());
        let mut r = req(&["all"], 1);
        r.dataset = "demo-seg".into();
        let p = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(p.len(), 21);
        assert!(p.iter().all(|p| p.spec.task == Task::Segmentation && p.spec.hyper.epochs == 200));
        let runs = tempfile::tempdir().unwrap();
        let err = plan(&r, runs.path(), "x", runs.path()).unwrap_err().to_string();
        assert!(err.contains("not converted") && err.contains("zoo pull"), "{err}");
        assert!(plan(&req(&["resnet9000"], 1), t.path(), "x", t.path()).is_err());
    }

    #[test]
    fn rerunning_a_sweep_adds_only_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        converted(t.path(), &["imagenet"]);
        let mut first = plan(&req(&["imagenet"], 2), t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(write_new(&mut first, t.path()).unwrap().len(), 2);
        let mut again = plan(&req(&["imagenet"], 3), t.path(), "20261126-091200", t.path()).unwrap();
        let existing: Vec<_> = again.iter().filter_map(|p| p.existing.clone()).collect();
        assert_eq!(existing.len(), 2);
        assert_eq!(existing[0], ("20261126-081200-demo-cls-imagenet-t1".into(), State::Queued));
        assert_eq!(write_new(&mut again, t.path()).unwrap(), ["20261126-091200-demo-cls-imagenet-t3"]);
        let mut other = req(&["imagenet"], 1);
        other.overrides = vec![("lr".into(), "0.1".into())];
        let p = plan(&other, t.path(), "20261126-091200", t.path()).unwrap();
        assert!(p[0].existing.is_none(), "different overrides are a different run");
    }

    #[test]
    fn split_lists_are_hashed_and_missing_ones_named() {
        let t = tempfile::tempdir().unwrap();
        let list = t.path().join("train.txt");
        std::fs::write(&list, "a.png 1\n").unwrap();
        let mut r = req(&["random"], 1);
        r.train_list = Some(list.clone());
        let p = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(p[0].spec.snapshot.lists["train"].len(), 64);
        assert_eq!(p[0].spec.data.train_list.as_deref(), Some(list.as_path()));
        r.val_list = Some(t.path().join("nope.txt"));
        let err = plan(&r, t.path(), "x", t.path()).unwrap_err().to_string();
        assert!(err.contains("--val-list") && err.contains("nope.txt"), "{err}");
    }

    #[test]
    fn image_mask_split_folders_are_hashed_as_the_sample_lists_the_run_writes() {
        let t = tempfile::tempdir().unwrap();
        for split in ["train", "val", "test"] {
            for sub in ["images", "masks"] {
                std::fs::create_dir_all(t.path().join(split).join(sub)).unwrap();
            }
            for name in ["b.png", "a.png"] {
                std::fs::write(t.path().join(split).join("images").join(name), b"png").unwrap();
            }
        }
        std::fs::write(t.path().join("train/images/notes.txt"), b"not an image").unwrap();
        let mut r = req(&["random"], 1);
        r.dataset = "image-mask".into();
        r.root = Some(t.path().to_path_buf());
        let digests = || plan(&r, t.path(), "x", t.path()).unwrap()[0].spec.snapshot.lists.clone();
        let before = digests();
        let as_written = hex::encode(Sha256::digest(b"train/images/a.png\ntrain/images/b.png\n"));
        assert_eq!(before["train"], as_written, "sorted, relative to the root, one per line: splits/train.txt");
        assert_eq!(before.len(), 3);
        std::fs::write(t.path().join("train/images/c.png"), b"png").unwrap();
        let added = digests();
        assert_ne!(added["train"], before["train"], "an added image changes the digest");
        assert_eq!((&added["val"], &added["test"]), (&before["val"], &before["test"]));
        std::fs::rename(t.path().join("test/images/a.png"), t.path().join("test/images/z.png")).unwrap();
        assert_ne!(digests()["test"], before["test"], "a renamed image changes the digest");
        std::fs::remove_dir_all(t.path().join("val/images")).unwrap();
        let err = crate::error::one_sentence(&plan(&r, t.path(), "x", t.path()).unwrap_err());
        assert!(err.contains("val split folder") && err.contains("val/images"), "{err}");
    }

    #[test]
    fn the_plan_ids_end_in_run_name_and_overrides_are_checked_as_plan_applies_them() {
        let t = tempfile::tempdir().unwrap();
        let mut r = req(&["random"], 2);
        r.anno_percents = vec![10];
        let plan = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        let ids: Vec<&str> = plan.iter().map(|p| p.spec.id.as_str()).collect();
        assert_eq!(ids, ["20261126-081200-demo-cls-random-t1-a10", "20261126-081200-demo-cls-random-t2-a10"]);
        assert_eq!(run_name("demo-cls", "random", 2, 10), ids[1]["20261126-081200-".len()..]);
        assert_eq!(parse_override(" lr = 0.1").unwrap(), ("lr".to_string(), "0.1".to_string()));
        assert!(parse_override("=1").unwrap_err().to_string().contains("expected KEY=VALUE"));
        check_overrides("demo-seg", &[("epochs".into(), "3".into())]).unwrap();
        let err = check_overrides("demo-cls", &[("precision".into(), "fp8".into())]).unwrap_err().to_string();
        assert!(err.contains("expected one of fp32, tf32, bf16"), "{err}");
    }

    #[test]
    fn planning_refuses_what_cannot_run_in_one_sentence_and_resolves_the_protocol() {
        let t = tempfile::tempdir().unwrap();
        let refuse = |r: &SweepRequest| plan(r, t.path(), "x", t.path()).unwrap_err().to_string();
        let mut r = req(&["random"], 1);
        r.dataset = "nih".into();
        assert!(refuse(&r).contains("\"nih\" is not a built-in spec"), "{}", refuse(&r));
        r.dataset = "shenzhen".into();
        assert!(refuse(&r).contains("needs --root DIR"), "{}", refuse(&r));
        r.root = Some(t.path().to_path_buf());
        let p = plan(&r, t.path(), "x", t.path()).unwrap();
        let data = &p[0].spec.data;
        assert_eq!(data.train_list.as_deref(), Some(Path::new("shipped:ShenzenCXR_train_data.txt")));
        assert_eq!(
            p[0].spec.snapshot.lists["train"], "77ac16bc43b60edcc8a21ac95bd98804562836e66245fe7cad15ae8faa653c73",
            "dataset/lists/SHA256SUMS"
        );
        assert_eq!(data.normalization.as_deref(), Some("imagenet"));
        assert_eq!(data.protocol.loss, Some(crate::data::protocol::Loss::Bce));
        r.overrides = vec![("uncertain_policy".into(), "zeros".into())];
        assert!(refuse(&r).contains("CheXpert lists only"), "{}", refuse(&r));
        r.overrides.clear();
        r.dataset = "chexpert".into();
        let err = refuse(&r);
        assert!(err.contains("train list") && err.contains("CheXpert-v1.0-small/train.csv"), "{err}");
        std::fs::create_dir_all(t.path().join("CheXpert-v1.0-small")).unwrap();
        std::fs::write(t.path().join("CheXpert-v1.0-small/train.csv"), "Path\n").unwrap();
        let err = refuse(&r);
        assert!(err.contains("needs a validation list") && err.contains("medxfer data split chexpert"), "{err}");
        assert!(err.contains("test set"), "{err}");
        r.val_list = Some(t.path().join("CheXpert-v1.0-small/train.csv"));
        let err = refuse(&r);
        assert!(err.contains("test list") && err.contains("valid.csv"), "{err}");
        r.dataset = "image-mask".into();
        r.val_list = None;
        let err = refuse(&r);
        assert!(err.contains("list") && err.contains("does not exist"), "{err}");
        for split in ["train", "val", "test"] {
            std::fs::create_dir_all(t.path().join(split).join("images")).unwrap();
        }
        let p = plan(&r, t.path(), "x", t.path()).unwrap();
        assert_eq!((p[0].spec.task, p[0].spec.hyper.epochs), (Task::Segmentation, 200), "the task is the spec's");
        assert_eq!(p[0].spec.data.protocol.loss, Some(crate::data::protocol::Loss::Dice));
        assert_eq!(task_of("drive"), Task::Segmentation);
        assert_eq!(task_of("chexpert"), Task::Classification);
    }
}
