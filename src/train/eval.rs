//! `medxfer eval`: a finished run's best weights, or a converted zoo model (its head or decoder freshly drawn
//! from the seed), on a dataset's test split, scored by the trainer's own test phase (`trainer::test`: ten crops
//! for classification, both Dice scores for segmentation). The result is written as `eval-<dataset>.json`: in
//! the run folder, or for a zoo model under `<home>/evals/<init>/`.

use super::{setup, trainer};
use crate::config::DatasetPaths;
use crate::data;
use crate::home::Home;
use crate::runs::record::{DataSpec, DeviceSpec, RunResult, RunSpec, Status};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

/// What to evaluate and on what.
#[derive(Debug, Clone, Default)]
pub struct EvalRequest {
    /// A run folder (its spec.toml and best.safetensors).
    pub run: Option<PathBuf>,
    /// A zoo id or a .safetensors file (with `dataset`).
    pub init: Option<String>,
    /// Another dataset than the run's (same task), or the dataset of a zoo model.
    pub dataset: Option<String>,
    pub root: Option<PathBuf>,
    pub test_list: Option<PathBuf>,
    /// Where `dataset` lives as config.toml's `[datasets.<name>]` remembers it: used when the run's own
    /// folders do not apply (a zoo model, or another dataset than the run's) and `root`/`test_list` are not given.
    pub remembered: DatasetPaths,
    /// cpu | cuda | cuda:N; default: the run's device, or cpu.
    pub device: Option<String>,
    /// `--set key=value` applied to the spec the test phase runs by (e.g. image_size, threads), in order.
    pub overrides: Vec<(String, String)>,
}

/// The result and the file it was written to.
pub struct EvalOutcome {
    pub result: RunResult,
    pub file: PathBuf,
}

pub fn evaluate(req: &EvalRequest, home: &Home) -> Result<EvalOutcome> {
    let (mut spec, best, out_dir) = match (&req.run, &req.init) {
        (Some(dir), None) => {
            let spec = RunSpec::load(dir)?;
            let best = dir.join(super::checkpoint::BEST_FILE);
            if !best.is_file() {
                bail!("run {} has no {}: it has not finished an epoch", dir.display(), super::checkpoint::BEST_FILE);
            }
            (spec, Some(best), dir.clone())
        }
        (None, Some(init)) => {
            let Some(dataset) = &req.dataset else { bail!("eval --init {init} needs --dataset") };
            let task = data::DatasetSpec::load(dataset)?.task;
            let spec = RunSpec {
                device: DeviceSpec { device: "cpu".into(), ..DeviceSpec::default() },
                ..RunSpec::study(&format!("eval-{}", init_label(init)), dataset, task, init)
            };
            (spec, None, home.root.join("evals").join(init_label(init)))
        }
        _ => bail!("eval needs either --run DIR or --init MODEL --dataset D"),
    };
    let mut on_its_own_data = req.run.is_some();
    if let Some(dataset) = &req.dataset
        && req.run.is_some()
        && dataset != &spec.dataset
    {
        let task = data::DatasetSpec::load(dataset)?.task;
        if task != spec.task {
            bail!("run {} is {:?}; dataset {dataset} is {task:?}", spec.id, spec.task);
        }
        spec.dataset = dataset.clone();
        spec.data = DataSpec { image_size: spec.data.image_size, segmentation: None, ..DataSpec::default() };
        on_its_own_data = false;
    }
    if !on_its_own_data {
        spec.data.root.clone_from(&req.remembered.root);
        spec.data.test_list.clone_from(&req.remembered.test_list);
    }
    if spec.data.segmentation.is_none() && spec.task == crate::runs::record::Task::Segmentation && req.run.is_none() {
        data::segaug::resolve_study_defaults(&mut spec);
    }
    for (key, value) in &req.overrides {
        spec.set(key, value)?;
    }
    if req.root.is_some() {
        spec.data.root = req.root.clone();
    }
    if req.test_list.is_some() {
        spec.data.test_list = req.test_list.clone();
    }
    if let Some(device) = &req.device {
        spec.device.device = device.clone();
    }
    let device = setup::device(&spec.device.device, spec.device.threads)?;
    let init = setup::resolve_init(&spec.init, home);
    let conv = match (&init, &best) {
        (Ok(init), _) => setup::conventions(init)?,
        (Err(_), Some(_)) => setup::Conventions::default(),
        (Err(e), None) => bail!("{e:#}"),
    };
    if conv.no_normalization && spec.data.normalization.is_none() {
        spec.data.normalization = Some("none".into());
    }
    let splits = data::resolve(&spec.dataset, &spec.data, home, spec.seed)?;
    tch::manual_seed(spec.seed as i64);
    let mut vs = VarStore::new(device);
    let net = setup::build(&vs, spec.task, splits.labels.len(), conv.padding);
    let (best_epoch, epochs_run) = match &best {
        Some(best) => {
            crate::model::load_all(&mut vs, best).with_context(|| format!("cannot load {}", best.display()))?;
            match Status::load(&out_dir) {
                Ok(status) => (status.best_epoch.unwrap_or(status.epoch), status.epoch),
                Err(_) => (0, 0),
            }
        }
        None => {
            setup::apply_init(&mut vs, &net, init.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?)?;
            (0, 0)
        }
    };
    let result = trainer::test(&spec, &splits, &net, device, best_epoch, epochs_run)?;
    let file = out_dir.join(format!("eval-{}.json", init_label(&spec.dataset)));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    crate::atomic::write(&file, &serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(EvalOutcome { result, file })
}

/// A zoo id as it is, a file by its stem; reduced to `[a-z0-9._-]`.
fn init_label(init: &str) -> String {
    let stem = Path::new(init).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    stem.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect()
}
