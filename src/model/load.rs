//! Loading weights by name from a .safetensors file into a VarStore: strict for the encoder (every
//! backbone tensor present and shaped right), heads left fresh, `num_batches_tracked` never needed.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::Path;
use tch::{Tensor, nn::VarStore};

/// What a load did: tensors copied, and file tensors that matched no variable it was asked to fill.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    pub unused: Vec<String>,
}

/// Reads every tensor of a .safetensors file, keyed by name.
pub fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let tensors =
        Tensor::read_safetensors(path).with_context(|| format!("cannot read safetensors file {}", path.display()))?;
    Ok(tensors.into_iter().collect())
}

/// Fills the backbone under `prefix` ("" for a bare ResNet50, "encoder." for the U-Net) from a file
/// with torchvision names (`conv1.weight`, ...; names already carrying `prefix` are accepted too).
/// The ResNet `fc` and the U-Net decoder/head are not touched. Fails, listing every missing or
/// misshapen tensor, unless all backbone tensors fit.
pub fn load_encoder(vs: &mut VarStore, path: &Path, prefix: &str) -> Result<LoadReport> {
    let head = format!("{prefix}fc.");
    let select = |name: &str| -> Option<Vec<String>> {
        let rest = name.strip_prefix(prefix)?;
        if name.starts_with(&head) || (prefix.is_empty() && !is_resnet_name(rest)) {
            return None;
        }
        Some(vec![rest.to_string(), name.to_string()])
    };
    load_selected(vs, path, "encoder", select)
}

/// Fills every variable of `vs` from the file by its exact name (a full torchvision or smp state_dict).
pub fn load_all(vs: &mut VarStore, path: &Path) -> Result<LoadReport> {
    load_selected(vs, path, "model", |name| Some(vec![name.to_string()]))
}

fn is_resnet_name(name: &str) -> bool {
    ["conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4."].iter().any(|p| name.starts_with(p))
}

/// Copies, for each variable that `select` maps to candidate file names, the first candidate present.
fn load_selected(
    vs: &mut VarStore,
    path: &Path,
    what: &str,
    select: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<LoadReport> {
    let file = read_tensors(path)?;
    let mut used: Vec<&str> = Vec::new();
    let mut missing = Vec::new();
    let mut misshapen = Vec::new();
    let mut fills = Vec::new();
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in variables {
        let Some(candidates) = select(&name) else { continue };
        let Some((file_name, src)) = candidates.iter().find_map(|c| file.get_key_value(c.as_str())) else {
            missing.push(candidates[0].clone());
            continue;
        };
        used.push(file_name.as_str());
        if src.size() != var.size() {
            misshapen.push(format!("{file_name}: file {:?}, model {:?}", src.size(), var.size()));
            continue;
        }
        fills.push((var, src));
    }
    if !missing.is_empty() || !misshapen.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("{} missing ({})", missing.len(), abbreviate(&missing)));
        }
        if !misshapen.is_empty() {
            parts.push(format!("{} misshapen ({})", misshapen.len(), abbreviate(&misshapen)));
        }
        bail!("{}: {what} weights do not fit: {}", path.display(), parts.join("; "));
    }
    let loaded = fills.len();
    tch::no_grad(|| {
        for (mut var, src) in fills {
            var.copy_(&src.to_kind(var.kind()).to_device(var.device()));
        }
    });
    let mut unused: Vec<String> =
        file.keys().filter(|k| !used.contains(&k.as_str()) && !k.ends_with("num_batches_tracked")).cloned().collect();
    unused.sort();
    Ok(LoadReport { loaded, unused })
}

fn abbreviate(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(", and {} more", items.len() - SHOWN));
    }
    s
}
