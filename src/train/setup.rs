//! Building a run's network on its device and filling it from its init (random, a zoo id, a file),
//! and copying named weights in and out of the VarStore for checkpoints.

use crate::home::Home;
use crate::model::{self, Net, Padding};
use crate::runs::record::Task;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// Where an init comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    Random,
    File(PathBuf),
}

/// Resolves a spec's `init`: "random", a path to a .safetensors file, or a zoo id whose converted
/// weights must already be in the cache.
pub fn resolve_init(init: &str, home: &Home) -> Result<Init> {
    if init == "random" {
        return Ok(Init::Random);
    }
    if init.ends_with(".safetensors") || init.contains('/') {
        let path = PathBuf::from(init);
        if !path.is_file() {
            bail!("init file {} does not exist", path.display());
        }
        return Ok(Init::File(path));
    }
    let path = crate::zoo::ModelPaths::converted_weights(&home.zoo_cache(), init);
    if !path.is_file() {
        bail!("init {init:?}: {} is not there; run `medxfer zoo pull {init}` first", path.display());
    }
    Ok(Init::File(path))
}

/// What converted weights expect, from the metadata `ckpt::convert_file` wrote into them:
/// SAME padding (BYOL) and inputs without mean/std normalisation (SimCLR).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Conventions {
    pub padding: Padding,
    pub no_normalization: bool,
}

/// Largest safetensors header read for its metadata.
const MAX_HEADER: u64 = 100 << 20;

/// The init's conventions (defaults for a random init or weights without medxfer metadata).
pub fn conventions(init: &Init) -> Result<Conventions> {
    let Init::File(path) = init else { return Ok(Conventions::default()) };
    let read = || -> Result<serde_json::Value> {
        use std::io::Read;
        let mut f = std::fs::File::open(path)?;
        let mut n = [0u8; 8];
        f.read_exact(&mut n)?;
        let n = u64::from_le_bytes(n);
        if n > MAX_HEADER {
            bail!("its header claims {n} bytes");
        }
        let mut header = vec![0u8; n as usize];
        f.read_exact(&mut header)?;
        Ok(serde_json::from_slice(&header)?)
    };
    let header = read().with_context(|| format!("cannot read the safetensors header of {}", path.display()))?;
    let meta = |k: &str| header.get("__metadata__").and_then(|m| m.get(k)).and_then(|v| v.as_str());
    Ok(Conventions {
        padding: if meta(crate::ckpt::META_PADDING) == Some("same") { Padding::Same } else { Padding::Torch },
        no_normalization: meta(crate::ckpt::META_INPUT_NORMALIZATION) == Some("none"),
    })
}

/// The network for a task: ResNet50 with `classes` outputs, or a one-class U-Net, with `padding`
/// (SAME for weights trained with it, e.g. BYOL's).
pub fn build(vs: &VarStore, task: Task, classes: usize, padding: Padding) -> Net {
    match task {
        Task::Classification => Net::ResNet50(model::resnet50(vs.root(), Some(classes as i64), padding)),
        Task::Segmentation => Net::Unet(model::unet(vs.root(), 1, padding)),
    }
}

/// Fills the backbone from the init (heads stay freshly initialised).
pub fn apply_init(vs: &mut VarStore, net: &Net, init: &Init) -> Result<String> {
    match init {
        Init::Random => Ok("random init".into()),
        Init::File(path) => {
            let report = model::load_encoder(vs, path, net.encoder_prefix())?;
            Ok(format!("loaded {} tensors from {}", report.loaded, path.display()))
        }
    }
}

/// The VarStore's variables by name, sorted (copies on CPU are made by the checkpoint writer).
pub fn named_variables(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The trainable variables by name, sorted: what the optimizer steps.
pub fn trainable(vs: &VarStore) -> Vec<(String, Tensor)> {
    named_variables(vs).into_iter().filter(|(_, t)| t.requires_grad()).collect()
}

/// Copies `weights` into the VarStore; every variable must be present with its shape.
pub fn restore(vs: &VarStore, weights: &[(String, Tensor)], origin: &Path) -> Result<()> {
    let vars = vs.variables();
    let mut missing: Vec<&str> = vars.keys().map(String::as_str).collect();
    tch::no_grad(|| -> Result<()> {
        for (name, t) in weights {
            let Some(var) = vars.get(name) else { continue };
            if var.size() != t.size() {
                bail!("{}: tensor {name} has shape {:?}, the model wants {:?}", origin.display(), t.size(), var.size());
            }
            var.shallow_clone().copy_(&t.to_device(var.device()));
            missing.retain(|m| m != name);
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        missing.sort();
        bail!("{} lacks {} model tensors, e.g. {}", origin.display(), missing.len(), missing[0]);
    }
    Ok(())
}

/// Applies the spec's device settings: CPU threads and the device itself.
pub fn device(name: &str, threads: usize) -> Result<Device> {
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    crate::torch_runtime::device(name).with_context(|| format!("spec.toml [device] device = {name:?}"))
}
