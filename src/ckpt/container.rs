//! torch.save containers (zip >= 1.6 and the legacy pickle stream) into a checked `Checkpoint`:
//! the object tree plus little-endian storages, every tensor view verified against its storage.

use super::dtype::DType;
use super::pickle::unpickle;
use super::value::{StorageRef, TensorRef, Value};
use super::zip;
use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Zip,
    Legacy,
}

/// A loaded checkpoint. Storages borrow the file's bytes when no byte swap is needed.
pub struct Checkpoint<'a> {
    pub format: Format,
    /// The zip's root folder (None for legacy files).
    pub root: Option<String>,
    pub big_endian: bool,
    pub value: Value,
    pub globals: BTreeSet<String>,
    storages: HashMap<String, (DType, Cow<'a, [u8]>)>,
}

const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Parses and checks a checkpoint file's bytes.
pub fn load(data: &[u8]) -> Result<Checkpoint<'_>> {
    let ckpt = if data.starts_with(b"PK\x03\x04") {
        load_zip(data)?
    } else if data.first() == Some(&0x80) {
        load_legacy(data)?
    } else if data.get(257..262) == Some(b"ustar") {
        bail!("this is a tar checkpoint (PyTorch < 0.4), which is not supported")
    } else {
        bail!("this is neither a torch zip checkpoint nor a legacy torch pickle")
    };
    check_tree(&ckpt.value, &ckpt.storages)?;
    Ok(ckpt)
}

fn swap(data: &[u8], size: usize) -> Vec<u8> {
    data.chunks_exact(size).flat_map(|c| c.iter().rev().copied()).collect()
}

fn storage_refs(v: &Value, out: &mut Vec<StorageRef>) {
    match v {
        Value::Storage(s) => out.push(s.clone()),
        Value::Tensor(t) => out.push(t.storage.clone()),
        other => other.children().into_iter().for_each(|c| storage_refs(c, out)),
    }
}

/// Storage key -> (dtype, elements the root storage must hold at least).
fn storage_needs(value: &Value) -> Result<HashMap<String, (DType, u64)>> {
    let mut refs = Vec::new();
    storage_refs(value, &mut refs);
    let mut needs: HashMap<String, (DType, u64)> = HashMap::new();
    for r in refs {
        let end = r.elem_offset.checked_add(r.numel).ok_or_else(|| anyhow!("storage {:?} view overflows", r.key))?;
        let e = needs.entry(r.key.clone()).or_insert((r.dtype, 0));
        if e.0 != r.dtype {
            bail!("storage {:?} is used as both {} and {}", r.key, e.0.name(), r.dtype.name());
        }
        e.1 = e.1.max(end);
    }
    Ok(needs)
}

fn load_zip(data: &[u8]) -> Result<Checkpoint<'_>> {
    let archive = zip::read(data)?;
    let pkl = archive.entries.get("data.pkl").ok_or_else(|| anyhow!("zip has no {}/data.pkl", archive.root))?;
    let big_endian = match archive.entries.get("byteorder").copied() {
        None | Some(b"little") => false,
        Some(b"big") => true,
        Some(other) => bail!("zip byteorder file says {:?}", String::from_utf8_lossy(other)),
    };
    let un = unpickle(pkl, 0).with_context(|| format!("in {}/data.pkl", archive.root))?;
    if un.end != pkl.len() {
        bail!(
            "{}/data.pkl has {} bytes after its STOP at byte {} (the file parses more than one way)",
            archive.root,
            pkl.len() - un.end,
            un.end
        );
    }
    let mut storages = HashMap::new();
    for (key, (dtype, numel)) in storage_needs(&un.value)? {
        let bytes = archive.entries.get(&format!("data/{key}")).copied();
        let bytes = bytes.ok_or_else(|| anyhow!("storage {key:?} has no entry {}/data/{key}", archive.root))?;
        let want = numel.checked_mul(dtype.size() as u64).ok_or_else(|| anyhow!("storage {key:?} size overflows"))?;
        if bytes.len() as u64 != want {
            bail!("storage {key:?} holds {} bytes but its {numel} {} elements need {want}", bytes.len(), dtype.name());
        }
        let bytes = if big_endian { Cow::Owned(swap(bytes, dtype.size())) } else { Cow::Borrowed(bytes) };
        storages.insert(key, (dtype, bytes));
    }
    Ok(Checkpoint {
        format: Format::Zip,
        root: Some(archive.root),
        big_endian,
        value: un.value,
        globals: un.globals,
        storages,
    })
}

fn load_legacy(data: &[u8]) -> Result<Checkpoint<'_>> {
    let magic = unpickle(data, 0).context("in the legacy magic number")?;
    if magic.value != Value::BigInt(LEGACY_MAGIC.to_vec()) {
        bail!("not a torch legacy checkpoint (wrong magic number)");
    }
    let proto = unpickle(data, magic.end).context("in the legacy protocol version")?;
    if proto.value != Value::Int(1001) {
        bail!("legacy protocol version is {:?}, not 1001", proto.value);
    }
    let sys = unpickle(data, proto.end).context("in the legacy sys_info")?;
    let big_endian = matches!(sys.value.get("little_endian"), Some(Value::Bool(false)));
    let obj = unpickle(data, sys.end).context("in the legacy object pickle")?;
    let keys = unpickle(data, obj.end).context("in the legacy storage key list")?;
    let Value::List(keys_list) = keys.value else { bail!("legacy storage key list is not a list") };
    let needs = storage_needs(&obj.value)?;
    let mut at = keys.end;
    let mut storages = HashMap::new();
    for k in keys_list {
        let Value::Str(key) = k else { bail!("legacy storage key is a {}, not a str", k.kind()) };
        let (dtype, need) = *needs.get(&key).ok_or_else(|| anyhow!("legacy storage {key:?} is listed but unused"))?;
        let raw =
            data.get(at..at + 8).ok_or_else(|| anyhow!("legacy storage {key:?} count is missing (truncated?)"))?;
        let raw: [u8; 8] = raw.try_into()?;
        let count = if big_endian { u64::from_be_bytes(raw) } else { u64::from_le_bytes(raw) };
        let len = count.checked_mul(dtype.size() as u64).and_then(|l| usize::try_from(l).ok());
        let end = len.and_then(|l| (at + 8).checked_add(l)).filter(|&e| e <= data.len());
        let end = end.ok_or_else(|| {
            anyhow!("legacy storage {key:?} of {count} elements reaches past the end of the file (truncated?)")
        })?;
        if count < need {
            bail!("legacy storage {key:?} holds {count} elements but its tensors need {need}");
        }
        let bytes = &data[at + 8..end];
        let bytes = if big_endian { Cow::Owned(swap(bytes, dtype.size())) } else { Cow::Borrowed(bytes) };
        if storages.insert(key.clone(), (dtype, bytes)).is_some() {
            bail!("legacy storage {key:?} is listed twice");
        }
        at = end;
    }
    if let Some(missing) = needs.keys().find(|k| !storages.contains_key(*k)) {
        bail!("legacy storage {missing:?} is used but not stored");
    }
    if at != data.len() {
        bail!(
            "legacy file has {} bytes after its last storage at byte {at} (the file parses more than one way)",
            data.len() - at
        );
    }
    let mut globals = obj.globals;
    globals.extend(sys.globals);
    Ok(Checkpoint { format: Format::Legacy, root: None, big_endian, value: obj.value, globals, storages })
}

/// Elements a view reaches: (numel, one past the highest element index), checked for overflow.
fn view_extent(t: &TensorRef) -> Result<(u64, u64)> {
    if t.shape.len() != t.stride.len() {
        bail!("tensor has {} sizes but {} strides", t.shape.len(), t.stride.len());
    }
    if t.offset < 0 || t.shape.iter().chain(&t.stride).any(|&d| d < 0) {
        bail!("tensor has a negative size, stride or offset");
    }
    let mut numel: u64 = 1;
    let mut last: u64 = t.offset as u64;
    for (&d, &s) in t.shape.iter().zip(&t.stride) {
        numel = numel.checked_mul(d as u64).ok_or_else(|| anyhow!("tensor size {:?} overflows", t.shape))?;
        if d > 0 {
            let reach = ((d - 1) as u64).checked_mul(s as u64);
            last = reach.and_then(|r| last.checked_add(r)).ok_or_else(|| anyhow!("tensor strides overflow"))?;
        }
    }
    Ok((numel, if numel == 0 { 0 } else { last + 1 }))
}

fn check_tree(v: &Value, storages: &HashMap<String, (DType, Cow<[u8]>)>) -> Result<()> {
    match v {
        Value::Tensor(t) => {
            let (_, end) = view_extent(t).with_context(|| format!("tensor on storage {:?}", t.storage.key))?;
            if end > t.storage.numel {
                bail!(
                    "tensor {:?} at offset {} with strides {:?} reaches element {end} of storage {:?} which has {}",
                    t.shape,
                    t.offset,
                    t.stride,
                    t.storage.key,
                    t.storage.numel
                );
            }
            if !storages.contains_key(&t.storage.key) {
                bail!("tensor storage {:?} is missing", t.storage.key);
            }
        }
        Value::Dict(items) => {
            let mut seen = HashSet::new();
            for (k, _) in items {
                if let Value::Str(s) = k
                    && !seen.insert(s.as_str())
                {
                    bail!("duplicate key {s:?}");
                }
            }
            items.iter().try_for_each(|(k, v)| check_tree(k, storages).and_then(|_| check_tree(v, storages)))?;
        }
        other => other.children().into_iter().try_for_each(|c| check_tree(c, storages))?,
    }
    Ok(())
}

impl<'a> Checkpoint<'a> {
    /// A tensor's elements, contiguous, little-endian, in its own dtype (borrowed when already so).
    pub fn tensor_bytes(&self, t: &TensorRef) -> Result<Cow<'_, [u8]>> {
        let (dtype, storage) =
            self.storages.get(&t.storage.key).ok_or_else(|| anyhow!("storage {:?} missing", t.storage.key))?;
        let size = dtype.size();
        let base = t.storage.elem_offset as usize + t.offset as usize;
        let (numel, _) = view_extent(t)?;
        let numel = numel as usize;
        if numel == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let mut contiguous = true;
        let mut expect = 1i64;
        for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
            if d != 1 && s != expect {
                contiguous = false;
            }
            expect = expect.saturating_mul(d);
        }
        if contiguous {
            return storage
                .get(base * size..(base + numel) * size)
                .map(Cow::Borrowed)
                .ok_or_else(|| anyhow!("view past storage"));
        }
        let mut out = Vec::with_capacity(numel * size);
        let mut index = vec![0i64; t.shape.len()];
        for _ in 0..numel {
            let at = base + index.iter().zip(&t.stride).map(|(&i, &s)| (i * s) as usize).sum::<usize>();
            out.extend_from_slice(storage.get(at * size..(at + 1) * size).ok_or_else(|| anyhow!("view past storage"))?);
            for dim in (0..index.len()).rev() {
                index[dim] += 1;
                if index[dim] < t.shape[dim] {
                    break;
                }
                index[dim] = 0;
            }
        }
        Ok(Cow::Owned(out))
    }

    /// A floating-point tensor as contiguous little-endian float32 bytes.
    pub fn tensor_f32(&self, t: &TensorRef) -> Result<Cow<'_, [u8]>> {
        let bytes = self.tensor_bytes(t)?;
        if t.storage.dtype == DType::F32 {
            return Ok(bytes);
        }
        Ok(Cow::Owned(super::dtype::to_f32_bytes(t.storage.dtype, &bytes)?))
    }
}
