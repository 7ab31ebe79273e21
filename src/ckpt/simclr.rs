//! The `simclr-v1` and `simclr-v2` recipes: a TensorFlow bundle given as its `.index`, a folder
//! holding one checkpoint, or a zip of one (read in memory), with TF1 layer names
//! (`base_model/conv2d[_N]/kernel`, `base_model/batch_normalization[_N]/...`) mapped to torchvision
//! by creation order N: module order with the projection shortcut first in each first block.

use super::convert::Converted;
use super::layout::Tensor32;
use super::recipe::Dropped;
use super::tfbundle::{self, Bundle};
use super::unzip;
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// A bundle's files, loaded: the index, the shards by number, and how they were found.
pub struct Files {
    pub index: Vec<u8>,
    pub shards: Vec<Vec<u8>>,
    /// "tf bundle", "tf bundle in a zip".
    pub format: &'static str,
    /// The checkpoint's prefix inside the folder or zip.
    pub prefix: String,
    /// sha256 of the zip, or of the .index (which holds every tensor's CRC).
    pub sha256: String,
}

const INDEX: &str = ".index";
/// Most bytes a zipped checkpoint may inflate to, all members together (each is also bounded by
/// `unzip::MAX_MEMBER` and never inflated past its declared size).
const MAX_ZIP_TOTAL: u64 = 16 << 30;

/// The checkpoint prefix among `names` (paths of .index files and `checkpoint` files).
fn choose(names: &[String], read_checkpoint: &mut dyn FnMut(&str) -> Option<String>) -> Result<String> {
    let candidates: Vec<&String> = names.iter().filter(|n| n.ends_with(INDEX)).collect();
    match candidates.as_slice() {
        [] => bail!("there is no TensorFlow checkpoint (.index file) in it"),
        [one] => return Ok(one.trim_end_matches(INDEX).to_string()),
        _ => {}
    }
    // Several: keep those a `checkpoint` file beside them names as model_checkpoint_path.
    let mut named = Vec::new();
    for c in &candidates {
        let (dir, _) = c.rsplit_once('/').unwrap_or(("", c));
        let file = if dir.is_empty() { "checkpoint".to_string() } else { format!("{dir}/checkpoint") };
        let Some(text) = read_checkpoint(&file) else { continue };
        let wanted = text.lines().find_map(|l| {
            let v = l.trim().strip_prefix("model_checkpoint_path:")?.trim().trim_matches('"');
            Some(v.rsplit('/').next().unwrap_or(v).to_string())
        });
        let prefix = c.trim_end_matches(INDEX);
        if wanted.as_deref() == Some(prefix.rsplit('/').next().unwrap_or(prefix)) {
            named.push(prefix.to_string());
        }
    }
    match named.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "it holds {} checkpoints ({}) and no single `checkpoint` file says which; give the .index path",
            candidates.len(),
            candidates.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn shards_from(bundle: &Bundle, mut get: impl FnMut(&str) -> Result<Vec<u8>>, prefix: &str) -> Result<Vec<Vec<u8>>> {
    (0..bundle.num_shards).map(|s| get(&tfbundle::shard_name(prefix, s, bundle.num_shards))).collect()
}

/// Loads the bundle that `input` (an .index, a folder, or a zip) holds.
pub fn load_files(input: &Path) -> Result<Files> {
    if input.is_dir() {
        let mut names = Vec::new();
        for e in std::fs::read_dir(input).with_context(|| format!("cannot list {}", input.display()))? {
            let e = e?;
            if e.file_type()?.is_file() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        let prefix = choose(&names, &mut |f| std::fs::read_to_string(input.join(f)).ok())
            .with_context(|| format!("in folder {}", input.display()))?;
        return load_prefix(&input.join(&prefix), prefix);
    }
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(prefix) = name.strip_suffix(INDEX) {
        return load_prefix(&input.with_file_name(prefix), prefix.to_string());
    }
    let data = read(input)?;
    if !data.starts_with(b"PK\x03\x04") {
        bail!("it is neither a TensorFlow .index file, a folder holding one, nor a zip of one");
    }
    let sha256 = hex::encode(Sha256::digest(&data));
    let members = unzip::list(&data)?;
    let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
    let member = |n: &str| members.iter().find(|m| m.name == n);
    let mut read_small = |n: &str| {
        member(n)
            .filter(|m| m.size < 1 << 16)
            .and_then(|m| unzip::extract(&data, m).ok())
            .and_then(|b| String::from_utf8(b).ok())
    };
    let prefix = choose(&names, &mut read_small).context("in the zip")?;
    let get = |n: &str| -> Result<Vec<u8>> {
        let m = member(n).ok_or_else(|| anyhow!("the zip has no {n}"))?;
        unzip::extract(&data, m)
    };
    let index = get(&format!("{prefix}{INDEX}"))?;
    let bundle = tfbundle::read_index(&index).with_context(|| format!("in {prefix}{INDEX}"))?;
    let mut declared = index.len() as u64;
    for s in 0..bundle.num_shards {
        let name = tfbundle::shard_name(&prefix, s, bundle.num_shards);
        declared = declared.saturating_add(member(&name).map_or(0, |m| m.size));
    }
    if declared > MAX_ZIP_TOTAL {
        bail!("the checkpoint in the zip declares {declared} bytes, more than the {MAX_ZIP_TOTAL}-byte limit");
    }
    let shards = shards_from(&bundle, get, &prefix)?;
    Ok(Files { index, shards, format: "tf bundle in a zip", prefix, sha256 })
}

fn load_prefix(prefix_path: &Path, prefix: String) -> Result<Files> {
    let index_path =
        prefix_path.with_file_name(format!("{}{INDEX}", prefix_path.file_name().unwrap_or_default().to_string_lossy()));
    let index = read(&index_path)?;
    let bundle = tfbundle::read_index(&index).with_context(|| format!("in {}", index_path.display()))?;
    let stem = prefix_path.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let shards = shards_from(&bundle, |n| read(&prefix_path.with_file_name(n)), &stem)?;
    let sha256 = hex::encode(Sha256::digest(&index));
    Ok(Files { index, shards, format: "tf bundle", prefix, sha256 })
}

/// torchvision conv and batch-norm modules in SimCLR's creation order (shortcut first in block 0).
fn creation_order() -> (Vec<String>, Vec<String>) {
    let (mut convs, mut bns) = (vec!["conv1".to_string()], vec!["bn1".to_string()]);
    for (layer, blocks) in [3, 4, 6, 3].into_iter().enumerate() {
        for b in 0..blocks {
            let p = format!("layer{}.{b}", layer + 1);
            if b == 0 {
                convs.push(format!("{p}.downsample.0"));
                bns.push(format!("{p}.downsample.1"));
            }
            for k in 1..=3 {
                convs.push(format!("{p}.conv{k}"));
                bns.push(format!("{p}.bn{k}"));
            }
        }
    }
    (convs, bns)
}

/// N of a TF1 auto-numbered layer name (`base` is 0, `base_N` is N).
fn layer_number(name: &str, base: &str) -> Option<usize> {
    if name == base {
        return Some(0);
    }
    let digits = name.strip_prefix(base)?.strip_prefix('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// Converts a loaded bundle with recipe `id` ("simclr-v1" or "simclr-v2").
pub fn convert(id: &str, files: &Files) -> Result<Converted> {
    let bundle = tfbundle::read_index(&files.index).with_context(|| format!("in {}{INDEX}", files.prefix))?;
    let shards: Vec<&[u8]> = files.shards.iter().map(|s| s.as_slice()).collect();
    bundle.check_all(&shards)?;
    let has = |scope: &str| bundle.entries.contains_key(&format!("{scope}conv2d/kernel"));
    let scope = match id {
        "simclr-v2" if !has("base_model/") && has("ema_model/base_model/") => "ema_model/base_model/",
        _ => "base_model/",
    };
    if !has(scope) {
        bail!("there is no {scope}conv2d/kernel: not a SimCLR ResNet checkpoint");
    }
    let (conv_names, bn_names) = creation_order();
    let mut convs: BTreeMap<usize, &str> = BTreeMap::new();
    let mut bns: BTreeMap<usize, BTreeMap<&'static str, &str>> = BTreeMap::new();
    let mut dropped = Vec::new();
    for (key, e) in &bundle.entries {
        let drop = |reason: &str| Dropped { key: key.clone(), what: e.describe(), reason: reason.into() };
        let parts: Vec<&str> = key.strip_prefix(scope).map(|r| r.split('/').collect()).unwrap_or_default();
        match parts.as_slice() {
            [layer, "kernel"] if layer_number(layer, "conv2d").is_some() => {
                convs.insert(layer_number(layer, "conv2d").unwrap_or(0), key);
            }
            [layer, p @ ("gamma" | "beta" | "moving_mean" | "moving_variance")]
                if layer_number(layer, "batch_normalization").is_some() =>
            {
                let torch = match *p {
                    "gamma" => "weight",
                    "beta" => "bias",
                    "moving_mean" => "running_mean",
                    _ => "running_var",
                };
                bns.entry(layer_number(layer, "batch_normalization").unwrap_or(0)).or_default().insert(torch, key);
            }
            _ if key.ends_with("/Momentum") => dropped.push(drop("optimizer slot")),
            _ if key.starts_with(scope) => dropped.push(drop("not a ResNet50 weight")),
            _ => dropped.push(drop(&format!("outside scope {scope:?}"))),
        }
    }
    let contiguous = |ns: Vec<usize>, want: usize, what: &str| -> Result<()> {
        if ns != (0..want).collect::<Vec<_>>() {
            bail!("found {what} numbered {ns:?} under {scope}, but ResNet50 has {want} numbered 0 to {}", want - 1);
        }
        Ok(())
    };
    contiguous(convs.keys().copied().collect(), conv_names.len(), "convolutions")?;
    contiguous(bns.keys().copied().collect(), bn_names.len(), "batch norms")?;
    let mut tensors = BTreeMap::new();
    for (n, key) in convs {
        let (shape, data) = bundle.tensor_f32(key, &shards)?;
        let t = Tensor32::new(shape, data)?.hwio_to_oihw().with_context(|| key.to_string())?;
        tensors.insert(format!("{}.weight", conv_names[n]), t);
    }
    for (n, params) in bns {
        for (torch, key) in params {
            let (shape, data) = bundle.tensor_f32(key, &shards)?;
            tensors.insert(format!("{}.{torch}", bn_names[n]), Tensor32::new(shape, data)?.to_vector()?);
        }
    }
    Ok(Converted {
        tensors,
        dropped,
        ignored: Vec::new(),
        state_dict_at: format!("{}{INDEX} variables under {scope}", files.prefix),
        source_format: files.format,
        padding: None,
        input_normalization: Some("none"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_order_follow_tf1_layer_naming() {
        assert_eq!(layer_number("conv2d", "conv2d"), Some(0));
        assert_eq!(layer_number("conv2d_52", "conv2d"), Some(52));
        assert_eq!(layer_number("conv2d_05", "conv2d"), None);
        assert_eq!(layer_number("conv2d_transpose", "conv2d"), None);
        let (convs, bns) = creation_order();
        assert_eq!((convs.len(), bns.len()), (53, 53));
        assert_eq!(convs[1..5], ["layer1.0.downsample.0", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3"]);
        assert_eq!(bns[52], "layer4.2.bn3");
    }

    #[test]
    fn a_checkpoint_file_picks_among_several() {
        let names: Vec<String> =
            ["m/model.ckpt-1.index", "m/hub/variables/variables.index", "m/checkpoint"].map(String::from).into();
        let mut ck =
            |f: &str| (f == "m/checkpoint").then(|| "model_checkpoint_path: \"/gcs/x/model.ckpt-1\"\n".to_string());
        assert_eq!(choose(&names, &mut ck).unwrap(), "m/model.ckpt-1");
        let mut none = |_: &str| None;
        assert!(format!("{:#}", choose(&names, &mut none).unwrap_err()).contains("holds 2 checkpoints"));
    }
}
