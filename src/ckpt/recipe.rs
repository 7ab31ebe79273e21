//! Per-origin recipes: where the state dict lives, the exact prefix to remove, the heads to drop
//! (matched as whole dotted components, never as substrings), and guessing a recipe from the keys.

use super::value::{TensorRef, Value};
use anyhow::{Result, bail};

/// How one lab's checkpoints are laid out.
pub struct Recipe {
    pub id: &'static str,
    /// Keys holding the state dict, tried in order; "" means the top level itself.
    pub containers: &'static [&'static str],
    /// Removed from the start of backbone keys; keys without it are dropped (key encoders, queues).
    pub prefix: &'static str,
    /// Modules dropped after the prefix is removed: a key `h` or `h.<anything>` for each head `h`.
    pub heads: &'static [&'static str],
}

pub const ALL: &[Recipe] = &[
    Recipe { id: "torchvision", containers: &["state_dict", ""], prefix: "", heads: &["fc"] },
    Recipe { id: "moco", containers: &["state_dict"], prefix: "module.encoder_q.", heads: &["fc"] },
    Recipe { id: "pcl", containers: &["state_dict"], prefix: "module.encoder_q.", heads: &["fc"] },
    Recipe { id: "swav", containers: &[""], prefix: "module.", heads: &["projection_head", "prototypes"] },
    Recipe { id: "barlowtwins", containers: &[""], prefix: "", heads: &[] },
    Recipe { id: "pycontrast", containers: &["model"], prefix: "module.encoder.", heads: &["head", "head_jig"] },
    Recipe { id: "zenodo-module", containers: &["state_dict"], prefix: "module.", heads: &["fc"] },
];

/// Recipes that do not read a torch.save pickle (`convert::convert_file` dispatches them):
/// TensorFlow bundles (`simclr`) and BYOL's dill pickle (`byol`).
pub const OTHER: &[&str] = &["simclr-v1", "simclr-v2", "byol"];

/// The recipe ids a catalog entry may name (plus "auto" on the command line).
pub const RECIPES: &[&str] = &[
    "torchvision",
    "moco",
    "pcl",
    "swav",
    "barlowtwins",
    "pycontrast",
    "zenodo-module",
    "simclr-v1",
    "simclr-v2",
    "byol",
];

/// A torch.save recipe by id.
pub fn find(id: &str) -> Result<&'static Recipe> {
    match ALL.iter().find(|r| r.id == id) {
        Some(r) => Ok(r),
        None if OTHER.contains(&id) => bail!("origin {id:?} does not read torch.save files (auto never picks it)"),
        None => bail!("unknown checkpoint origin {id:?}; known: {}, auto", RECIPES.join(", ")),
    }
}

/// A key left out of the output, with why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Dropped {
    pub key: String,
    /// "float32[64, 3, 7, 7]" for tensors, the value kind otherwise.
    pub what: String,
    pub reason: String,
}

/// The backbone tensors a recipe selects, under their torchvision names, and what it left out.
pub struct Selected {
    pub tensors: Vec<(String, TensorRef)>,
    pub dropped: Vec<Dropped>,
    /// Top-level keys beside the state dict (optimizer, epoch, ...), not read.
    pub ignored: Vec<String>,
    pub container: &'static str,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Tensor(t) => format!("{}{:?}", t.storage.dtype.name(), t.shape),
        other => other.kind().to_string(),
    }
}

fn is_state_dict(v: &Value) -> bool {
    matches!(v, Value::Dict(items) if !items.is_empty() && items.iter().all(|(k, v)| matches!(k, Value::Str(_)) && matches!(v, Value::Tensor(_))))
}

/// Applies `recipe` to a checkpoint's top-level value.
pub fn select(recipe: &Recipe, top: &Value) -> Result<Selected> {
    let found = recipe.containers.iter().find_map(|&c| {
        let v = if c.is_empty() { Some(top) } else { top.get(c) };
        v.filter(|v| is_state_dict(v)).map(|v| (c, v))
    });
    let Some((container, dict)) = found else {
        let wanted: Vec<String> = recipe
            .containers
            .iter()
            .map(|c| if c.is_empty() { "the top level".into() } else { format!("key {c:?}") })
            .collect();
        bail!("no state dict (a dict of tensors) at {} for origin {:?}", wanted.join(" or "), recipe.id);
    };
    let ignored = match (container, top) {
        ("", _) => Vec::new(),
        (c, Value::Dict(items)) => items
            .iter()
            .filter_map(|(k, _)| match k {
                Value::Str(s) if s != c => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let Value::Dict(items) = dict else { bail!("state dict is not a dict") };
    let backbone = super::resnet50::backbone();
    let mut sel = Selected { tensors: Vec::new(), dropped: Vec::new(), ignored, container };
    for (k, v) in items {
        let Value::Str(key) = k else { continue };
        let drop = |reason: String| Dropped { key: key.clone(), what: describe(v), reason };
        let Some(name) = key.strip_prefix(recipe.prefix) else {
            sel.dropped.push(drop(format!("outside prefix {:?}", recipe.prefix)));
            continue;
        };
        if let Some(h) = recipe.heads.iter().find(|h| name == **h || name.starts_with(&format!("{h}."))) {
            sel.dropped.push(drop(format!("head {h:?}")));
            continue;
        }
        if super::resnet50::is_batches_tracked(name, &backbone) {
            sel.dropped.push(drop("num_batches_tracked".into()));
            continue;
        }
        let Value::Tensor(t) = v else { bail!("state dict entry {key:?} is a {}, not a tensor", v.kind()) };
        sel.tensors.push((name.to_string(), t.clone()));
    }
    Ok(sel)
}

/// Guesses the origin from the layout and keys; returns the recipe id and the evidence.
pub fn guess(top: &Value) -> Result<(&'static str, String)> {
    let keys = |v: &Value| -> Vec<String> {
        match v {
            Value::Dict(items) => {
                items.iter().filter_map(|(k, _)| if let Value::Str(s) = k { Some(s.clone()) } else { None }).collect()
            }
            _ => Vec::new(),
        }
    };
    let any = |ks: &[String], p: &str| ks.iter().any(|k| k.starts_with(p));
    if let Some(m) = top.get("model").filter(|v| is_state_dict(v))
        && any(&keys(m), "module.encoder.")
    {
        return Ok(("pycontrast", "state dict under \"model\" with keys module.encoder.*".into()));
    }
    if let Some(sd) = top.get("state_dict").filter(|v| is_state_dict(v)) {
        let ks = keys(sd);
        if any(&ks, "module.encoder_q.") {
            return Ok((
                "moco",
                "state dict under \"state_dict\" with keys module.encoder_q.* (MoCo/PCL layout)".into(),
            ));
        }
        if any(&ks, "module.") {
            return Ok(("zenodo-module", "state dict under \"state_dict\" with keys module.*".into()));
        }
        return Ok(("torchvision", "state dict under \"state_dict\" with plain torchvision keys".into()));
    }
    if is_state_dict(top) {
        let ks = keys(top);
        if any(&ks, "module.") {
            return Ok(("swav", "top-level state dict with keys module.* (SwAV/DeepCluster-v2/SeLa-v2 layout)".into()));
        }
        if ks.iter().any(|k| k == "fc.weight") {
            return Ok(("torchvision", "top-level torchvision state dict with fc".into()));
        }
        return Ok(("barlowtwins", "top-level torchvision state dict without fc".into()));
    }
    bail!("cannot guess the origin: no state dict at the top level or under \"state_dict\" or \"model\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckpt::dtype::DType;
    use crate::ckpt::value::StorageRef;

    fn tensor() -> Value {
        let storage = StorageRef { key: "0".into(), dtype: DType::F32, numel: 1, elem_offset: 0 };
        Value::Tensor(TensorRef { storage, offset: 0, shape: vec![1], stride: vec![1] })
    }

    fn dict(keys: &[&str]) -> Value {
        Value::Dict(keys.iter().map(|k| (Value::Str(k.to_string()), tensor())).collect())
    }

    #[test]
    fn prefixes_and_heads_match_whole_components_only() {
        let top = dict(&[
            "module.conv1.weight",
            "module.fcx.weight",
            "module.fc.weight",
            "x.module.bn1.bias",
            "module.prototypes",
        ]);
        let sel =
            select(find("zenodo-module").unwrap(), &Value::Dict(vec![(Value::Str("state_dict".into()), top)])).unwrap();
        let kept: Vec<&str> = sel.tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["conv1.weight", "fcx.weight", "prototypes"]);
        let dropped: Vec<&str> = sel.dropped.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(dropped, ["module.fc.weight", "x.module.bn1.bias"]);
    }

    #[test]
    fn guesses_each_layout() {
        let wrap = |k: &str, v: Value| Value::Dict(vec![(Value::Str(k.into()), v)]);
        assert_eq!(guess(&wrap("state_dict", dict(&["module.encoder_q.conv1.weight"]))).unwrap().0, "moco");
        assert_eq!(guess(&wrap("state_dict", dict(&["module.conv1.weight"]))).unwrap().0, "zenodo-module");
        assert_eq!(guess(&wrap("state_dict", dict(&["conv1.weight"]))).unwrap().0, "torchvision");
        assert_eq!(guess(&wrap("model", dict(&["module.encoder.conv1.weight"]))).unwrap().0, "pycontrast");
        assert_eq!(guess(&dict(&["module.conv1.weight"])).unwrap().0, "swav");
        assert_eq!(guess(&dict(&["conv1.weight", "fc.weight"])).unwrap().0, "torchvision");
        assert_eq!(guess(&dict(&["conv1.weight"])).unwrap().0, "barlowtwins");
        assert!(guess(&Value::Int(1)).is_err());
        assert!(RECIPES.iter().all(|id| find(id).is_ok() != OTHER.contains(id)));
        assert_eq!(RECIPES.len(), ALL.len() + OTHER.len());
    }
}
