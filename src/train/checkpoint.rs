//! Checkpoint files: named tensors plus string metadata in safetensors, written atomically.
//! `last.ckpt` holds "model.*" weights, "optim.*" optimizer state and "sched.*"/"stop.*" scalars;
//! `best.safetensors` holds the weights alone under their torchvision/smp names.

use anyhow::{Context, Result, bail};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

pub const LAST_FILE: &str = "last.ckpt";
pub const BEST_FILE: &str = "best.safetensors";

struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of(kind: Kind) -> Result<Dtype> {
    Ok(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        other => bail!("tensors of kind {other:?} cannot be checkpointed"),
    })
}

fn kind_of(dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        other => bail!("dtype {other:?} is not supported"),
    })
}

fn to_bytes(t: &Tensor) -> Result<Bytes> {
    let t = t.detach().to_device(tch::Device::Cpu).contiguous();
    let numel = t.numel();
    let dtype = dtype_of(t.kind())?;
    let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut data, numel);
    Ok(Bytes { dtype, shape: t.size().iter().map(|&d| d as usize).collect(), data })
}

/// Writes named tensors and metadata to `path` atomically (temp file + rename).
pub fn save(path: &Path, tensors: &[(String, Tensor)], meta: &BTreeMap<String, String>) -> Result<()> {
    let mut views = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        views.push((name.clone(), to_bytes(t).with_context(|| format!("tensor {name}"))?));
    }
    let info: HashMap<String, String> = meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let bytes = safetensors::serialize(views, Some(info))
        .with_context(|| format!("cannot serialize checkpoint {}", path.display()))?;
    crate::atomic::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A loaded checkpoint: tensors on CPU, in file order, and its metadata.
pub struct Loaded {
    pub tensors: Vec<(String, Tensor)>,
    pub meta: BTreeMap<String, String>,
}

impl Loaded {
    /// The tensors whose names start with `prefix`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.tensors
            .iter()
            .filter_map(|(n, t)| n.strip_prefix(prefix).map(|rest| (rest.to_string(), t.shallow_clone())))
            .collect()
    }

    /// Scalars named `<group>.*` (schedule and early-stop state) as f64.
    pub fn scalars(&self, group: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{group}.");
        self.tensors
            .iter()
            .filter(|(n, t)| n.starts_with(&prefix) && t.numel() == 1)
            .map(|(n, t)| (n.clone(), t.to_kind(Kind::Double).double_value(&[0])))
            .collect()
    }

    /// A metadata field parsed as `T`.
    pub fn meta_field<T: std::str::FromStr>(&self, path: &Path, key: &str) -> Result<T> {
        let raw = self.meta.get(key).with_context(|| format!("{}: metadata field {key} is missing", path.display()))?;
        raw.parse().map_err(|_| anyhow::anyhow!("{}: metadata field {key} = {raw:?} is not valid", path.display()))
    }
}

/// Reads a checkpoint written by `save` (or any safetensors file).
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
    let meta = header.metadata().clone().unwrap_or_default().into_iter().collect();
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
    let mut tensors = Vec::new();
    for (name, view) in st.tensors() {
        let kind = kind_of(view.dtype()).with_context(|| format!("{}: tensor {name}", path.display()))?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        tensors.push((name, Tensor::from_data_size(view.data(), &shape, kind)));
    }
    Ok(Loaded { tensors, meta })
}

/// A named scalar tensor, for schedule state.
pub fn scalar_tensors(values: &BTreeMap<String, f64>) -> Vec<(String, Tensor)> {
    values.iter().map(|(k, v)| (k.clone(), Tensor::from_slice(&[*v]))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_and_metadata_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAST_FILE);
        let w = Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0]).reshape([2, 2]);
        let n = Tensor::from_slice(&[7i64]);
        let mut tensors = vec![("model.conv1.weight".to_string(), w.shallow_clone()), ("model.bn.n".into(), n)];
        tensors.extend(scalar_tensors(&BTreeMap::from([("sched.best".to_string(), 0.25)])));
        let meta = BTreeMap::from([("epoch".to_string(), "3".to_string())]);
        save(&path, &tensors, &meta).unwrap();
        save(&path, &tensors, &meta).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left behind");
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.meta_field::<u32>(&path, "epoch").unwrap(), 3);
        assert!(loaded.meta_field::<u32>(&path, "best").unwrap_err().to_string().contains("best"));
        let model = loaded.with_prefix("model.");
        let conv = &model.iter().find(|(n, _)| n == "conv1.weight").unwrap().1;
        assert_eq!(conv.size(), vec![2, 2]);
        assert!(conv.equal(&w));
        assert_eq!(loaded.scalars("sched")["sched.best"], 0.25);
    }

    #[test]
    fn a_truncated_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LAST_FILE);
        save(&path, &[("a".into(), Tensor::from_slice(&[1.0f32; 64]))], &BTreeMap::new()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = format!("{:#}", load(&path).err().unwrap());
        assert!(err.contains("last.ckpt"), "{err}");
    }
}
