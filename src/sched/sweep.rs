//! Sweeps: datasets × models × trials × label fractions expanded into RunSpecs, matched against the runs
//! already on disk by identity (the resolved spec without id, sweep, executor and snapshot), and written
//! as queued run folders.

use crate::runs::record::{DataSpec, DeviceSpec, Hyper, RunSpec, Snapshot, State, Status, Task, validate_run_id};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SEGMENTATION_DATASETS: [&str; 4] = ["demo-seg", "drive", "siim-acr", "montgomery"];

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct SweepRequest {
    pub dataset: String,
    /// Zoo ids, "random", or paths to .safetensors files; ["all"] = the 21 zoo ids.
    pub models: Vec<String>,
    pub trials: u32,
    /// Empty = 100.
    pub anno_percents: Vec<u32>,
    /// `--set key=value` in order.
    pub overrides: Vec<(String, String)>,
    pub executor: String,
    pub root: Option<PathBuf>,
    pub train_list: Option<PathBuf>,
    pub val_list: Option<PathBuf>,
    pub test_list: Option<PathBuf>,
    /// The device when not set: "cuda" on a machine with GPUs, else "cpu".
    pub default_device: String,
}

/// One planned run: new (to be written) or already on disk under `existing`.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub spec: RunSpec,
    pub existing: Option<(String, State)>,
}

pub fn task_of(dataset: &str) -> Task {
    if SEGMENTATION_DATASETS.contains(&dataset) { Task::Segmentation } else { Task::Classification }
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
    let data = base_data(req)?;
    let lists = list_hashes(&data)?;
    let existing = existing_identities(runs);
    let mut out = Vec::new();
    for init in &models {
        let init_sha256 = init_digest(init, zoo_cache)?;
        for &percent in &percents {
            for trial in 1..=req.trials {
                let task = task_of(&req.dataset);
                let mut spec = RunSpec {
                    id: String::new(),
                    dataset: req.dataset.clone(),
                    task,
                    init: init.clone(),
                    trial,
                    seed: u64::from(trial),
                    sweep: Some(format!("{stamp}-{}", req.dataset)),
                    executor: req.executor.clone(),
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

/// Applies `overrides` to a run spec of `dataset`'s task, as `plan` does, reporting the first bad one.
pub fn check_overrides(dataset: &str, overrides: &[(String, String)]) -> Result<()> {
    let task = task_of(dataset);
    let mut spec = RunSpec {
        id: String::new(),
        dataset: dataset.to_string(),
        task,
        init: "random".into(),
        trial: 1,
        seed: 1,
        sweep: None,
        executor: String::new(),
        data: DataSpec::default(),
        hyper: Hyper::study_defaults(task),
        device: DeviceSpec::default(),
        snapshot: Snapshot::default(),
    };
    overrides.iter().try_for_each(|(k, v)| spec.set(k, v))
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

fn base_data(req: &SweepRequest) -> Result<DataSpec> {
    let abs = |flag: &str, p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
        let Some(p) = p else { return Ok(None) };
        let p = std::path::absolute(p)?;
        if !p.exists() {
            bail!("{flag} {} does not exist", p.display());
        }
        Ok(Some(p))
    };
    Ok(DataSpec {
        root: abs("--root", &req.root)?,
        train_list: abs("--train-list", &req.train_list)?,
        val_list: abs("--val-list", &req.val_list)?,
        test_list: abs("--test-list", &req.test_list)?,
        ..DataSpec::default()
    })
}

fn list_hashes(data: &DataSpec) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (role, path) in [("train", &data.train_list), ("val", &data.val_list), ("test", &data.test_list)] {
        if let Some(p) = path {
            out.insert(role.to_string(), sha256_file(p)?);
        }
    }
    Ok(out)
}

/// sha256 of the init's weights: the file itself, or the zoo's converted checkpoint when it is cached.
fn init_digest(init: &str, zoo_cache: &Path) -> Result<Option<String>> {
    if init == "random" {
        return Ok(None);
    }
    let path =
        if init.starts_with('/') { PathBuf::from(init) } else { zoo_cache.join(init).join("resnet50.safetensors") };
    if path.is_file() { sha256_file(&path).map(Some) } else { Ok(None) }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
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
    for (id, status) in crate::sched::control::scan(runs) {
        if let Ok(spec) = RunSpec::load(&runs.join(&id))
            && let Ok(key) = identity(&spec)
        {
            out.entry(key).or_insert((id, status.state));
        }
    }
    out
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
        Status::new(State::Queued).save(&tmp)?;
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

    fn req(models: &[&str], trials: u32) -> SweepRequest {
        SweepRequest {
            dataset: "demo-cls".into(),
            models: models.iter().map(|s| s.to_string()).collect(),
            trials,
            executor: "local".into(),
            default_device: "cpu".into(),
            ..SweepRequest::default()
        }
    }

    #[test]
    fn expands_models_trials_and_label_fractions_with_readable_ids() {
        let t = tempfile::tempdir().unwrap();
        let mut r = req(&["imagenet", "swav"], 2);
        r.anno_percents = vec![10, 100];
        r.overrides = vec![("epochs".into(), "1".into())];
        let p = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(p.len(), 8);
        let ids: Vec<_> = p.iter().map(|p| p.spec.id.as_str()).collect();
        assert!(ids.contains(&"20261126-081200-demo-cls-swav-t2-a10"), "{ids:?}");
        assert!(ids.contains(&"20261126-081200-demo-cls-imagenet-t1"), "{ids:?}");
        assert!(p.iter().all(|p| p.spec.seed == u64::from(p.spec.trial) && p.spec.hyper.epochs == 1));
        assert_eq!(p[0].spec.snapshot.medxfer_version, crate::VERSION);
    }

    #[test]
    fn all_means_the_21_zoo_models_and_segmentation_is_inferred() {
        let t = tempfile::tempdir().unwrap();
        let mut r = req(&["all"], 1);
        r.dataset = "montgomery".into();
        let p = plan(&r, t.path(), "20261126-081200", t.path()).unwrap();
        assert_eq!(p.len(), 21);
        assert!(p.iter().all(|p| p.spec.task == Task::Segmentation && p.spec.hyper.epochs == 200));
        assert!(plan(&req(&["resnet9000"], 1), t.path(), "x", t.path()).is_err());
    }

    #[test]
    fn rerunning_a_sweep_adds_only_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
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
}
