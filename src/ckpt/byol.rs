//! The `byol` recipe: DeepMind's BYOL checkpoint, a dill pickle (protocol 2) of
//! `dict(experiment_state=_ByolExperimentState(online_params, target_params, online_state,
//! target_state, opt_state), step, rng)`, read under the BYOL allow-list. Only online_params and
//! online_state are used, mapped by haiku module name to torchvision names.

use super::allow::Policy;
use super::convert::Converted;
use super::layout::Tensor32;
use super::numpy;
use super::pickle::unpickle_with;
use super::recipe::Dropped;
use super::value::Value;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;

/// What a haiku (module, name) pair becomes.
#[derive(Debug, PartialEq)]
enum Target {
    /// A torchvision name and whether the value is a HWIO kernel (else a (1, 1, 1, C) vector).
    Keep(String, bool),
    Drop(&'static str),
    /// Not part of the encoder (projector, predictor, classifier).
    Head,
}

fn index(component: &str, prefix: &str) -> Option<usize> {
    let digits = component.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// torchvision module for the encoder path below the top module, e.g. ["block_group_1", "block_0", "conv_2"].
fn module(path: &[&str]) -> Option<(String, bool)> {
    let conv_or_bn = |c: &str, prefix: &str| -> Option<(String, bool)> {
        if c == "shortcut_conv" {
            return Some((format!("{prefix}downsample.0"), true));
        }
        if c == "shortcut_batchnorm" {
            return Some((format!("{prefix}downsample.1"), false));
        }
        if let Some(k) = index(c, "conv_") {
            return Some((format!("{prefix}conv{}", k + 1), true));
        }
        index(c, "batchnorm_").map(|k| (format!("{prefix}bn{}", k + 1), false))
    };
    match path {
        ["initial_conv"] => Some(("conv1".into(), true)),
        ["initial_batchnorm"] => Some(("bn1".into(), false)),
        [g, b, c] => {
            let (g, b) = (index(g, "block_group_")?, index(b, "block_")?);
            conv_or_bn(c, &format!("layer{}.{b}.", g + 1))
        }
        _ => None,
    }
}

/// Maps one parameter (`state` false) or state entry (`state` true) of haiku module `name`.
fn target(name: &str, param: &str, state: bool) -> Target {
    let parts: Vec<&str> = name.split("/~/").collect();
    let Some((_, path)) = parts.split_first() else { return Target::Head };
    let (path, ema) = match path.split_last() {
        Some((&last, rest)) if state && (last == "mean_ema" || last == "var_ema") => (rest, Some(last)),
        _ => (path, None),
    };
    let Some((module, is_conv)) = module(path) else { return Target::Head };
    match (is_conv, state, ema, param) {
        (true, false, None, "w") => Target::Keep(format!("{module}.weight"), true),
        (false, false, None, "scale") => Target::Keep(format!("{module}.weight"), false),
        (false, false, None, "offset") => Target::Keep(format!("{module}.bias"), false),
        (false, true, Some("mean_ema"), "average") => Target::Keep(format!("{module}.running_mean"), false),
        (false, true, Some("var_ema"), "average") => Target::Keep(format!("{module}.running_var"), false),
        (false, true, Some(_), "hidden" | "counter") => Target::Drop("moving-average bookkeeping"),
        _ => Target::Drop("not a ResNet50 weight"),
    }
}

fn describe(v: &Value) -> String {
    numpy::array(v).map(|a| a.describe()).unwrap_or_else(|_| v.kind().to_string())
}

/// The `{module: {name: array}}` entries of haiku params or state.
fn leaves<'v>(tree: &'v Value, what: &str) -> Result<Vec<(&'v str, &'v str, &'v Value)>> {
    let Value::Dict(modules) = tree else { bail!("{what} is a {}, not a mapping of haiku modules", tree.kind()) };
    let mut out = Vec::new();
    for (m, inner) in modules {
        let Value::Str(m) = m else { bail!("{what} has a module key that is not a string") };
        let Value::Dict(items) = inner else { bail!("{what}[{m:?}] is a {}, not a mapping", inner.kind()) };
        for (k, v) in items {
            let Value::Str(k) = k else { bail!("{what}[{m:?}] has a key that is not a string") };
            out.push((m.as_str(), k.as_str(), v));
        }
    }
    Ok(out)
}

/// Converts the bytes of a BYOL .pkl.
pub fn convert(bytes: &[u8]) -> Result<Converted> {
    let un = unpickle_with(bytes, 0, Policy::Byol)?;
    if un.end != bytes.len() {
        bail!("{} bytes follow the pickle", bytes.len() - un.end);
    }
    let top = un.value;
    let state = top.get("experiment_state").ok_or_else(|| anyhow!("no \"experiment_state\" at the top level"))?;
    let ignored: Vec<String> = match &top {
        Value::Dict(items) => items
            .iter()
            .filter_map(|(k, _)| match k {
                Value::Str(s) if s != "experiment_state" => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let field = |f: &str| state.get(f).ok_or_else(|| anyhow!("experiment_state has no field {f:?}"));
    let mut tensors = BTreeMap::new();
    let mut dropped = Vec::new();
    let mut encoder: Option<&str> = None;
    for (tree, is_state) in [("online_params", false), ("online_state", true)] {
        for (m, k, v) in leaves(field(tree)?, tree)? {
            let key = format!("{tree}/{m}/{k}");
            match target(m, k, is_state) {
                Target::Head => dropped.push(Dropped { key, what: describe(v), reason: "not the encoder".into() }),
                Target::Drop(why) => dropped.push(Dropped { key, what: describe(v), reason: why.into() }),
                Target::Keep(name, is_conv) => {
                    let top_module = m.split("/~/").next().unwrap_or(m);
                    match encoder {
                        None => encoder = Some(top_module),
                        Some(e) if e != top_module => {
                            bail!("two encoders in {tree}: {e:?} and {top_module:?}")
                        }
                        _ => {}
                    }
                    let t = numpy::array(v).and_then(|a| a.to_f32()).with_context(|| key.clone())?;
                    let t: Tensor32 =
                        if is_conv { t.hwio_to_oihw() } else { t.to_vector() }.with_context(|| key.clone())?;
                    if tensors.insert(name.clone(), t).is_some() {
                        bail!("{key} maps to {name}, which another entry already filled");
                    }
                }
            }
        }
    }
    Ok(Converted {
        tensors,
        dropped,
        ignored,
        state_dict_at: "experiment_state.online_params + experiment_state.online_state".into(),
        source_format: "dill pickle",
        padding: Some("same"),
        input_normalization: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_haiku_names_to_torchvision() {
        let keep = |n: &str, p: &str, s: bool| match target(n, p, s) {
            Target::Keep(name, _) => name,
            other => panic!("{n}/{p}: {other:?}"),
        };
        assert_eq!(keep("res_net50/~/initial_conv", "w", false), "conv1.weight");
        assert_eq!(keep("res_net50/~/initial_batchnorm", "scale", false), "bn1.weight");
        assert_eq!(keep("res_net50/~/initial_batchnorm/~/var_ema", "average", true), "bn1.running_var");
        assert_eq!(keep("res_net50/~/block_group_3/~/block_2/~/conv_1", "w", false), "layer4.2.conv2.weight");
        assert_eq!(keep("res_net50/~/block_group_0/~/block_0/~/batchnorm_2", "offset", false), "layer1.0.bn3.bias");
        assert_eq!(
            keep("res_net50/~/block_group_1/~/block_0/~/shortcut_batchnorm/~/mean_ema", "average", true),
            "layer2.0.downsample.1.running_mean"
        );
        assert_eq!(
            keep("res_net50/~/block_group_1/~/block_0/~/shortcut_conv", "w", false),
            "layer2.0.downsample.0.weight"
        );
        assert_eq!(target("projector/~/linear", "w", false), Target::Head);
        assert_eq!(
            target("res_net50/~/initial_batchnorm/~/mean_ema", "hidden", true),
            Target::Drop("moving-average bookkeeping")
        );
        assert_eq!(target("res_net50/~/block_group_0/~/block_0/~/conv_+1", "w", false), Target::Head);
    }
}
