//! TensorFlow tensor-bundle checkpoints (`<prefix>.index` + `<prefix>.data-0000S-of-0000N`): the
//! index's BundleHeaderProto (key "") and BundleEntryProtos decoded by hand, every entry's data range
//! and masked CRC-32C checked against its shard, tensors read as little-endian float32.

use super::crc32c;
use super::dtype::{self, DType};
use super::protobuf::{Wire, fields};
use super::sstable;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;

/// Shards a bundle may name (SimCLR's have one).
const MAX_SHARDS: u32 = 1024;

/// One variable's record in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// TensorFlow's DataType number (1 float, 2 double, 19 half, 14 bfloat16, ...).
    pub tf_dtype: u64,
    pub shape: Vec<i64>,
    pub shard: u32,
    pub offset: u64,
    pub size: u64,
    /// Masked CRC-32C of the stored bytes.
    pub crc32c: u32,
    /// Stored as slices of a partitioned variable.
    pub sliced: bool,
}

impl Entry {
    /// Our dtype for TensorFlow's, when it is a plain numeric one.
    pub fn dtype(&self) -> Option<DType> {
        Some(match self.tf_dtype {
            1 => DType::F32,
            2 => DType::F64,
            3 => DType::I32,
            4 => DType::U8,
            5 => DType::I16,
            6 => DType::I8,
            9 => DType::I64,
            10 => DType::Bool,
            14 => DType::BF16,
            19 => DType::F16,
            _ => return None,
        })
    }

    pub fn numel(&self) -> Result<u64> {
        self.shape.iter().try_fold(1u64, |n, &d| {
            u64::try_from(d)
                .ok()
                .and_then(|d| n.checked_mul(d))
                .ok_or_else(|| anyhow!("shape {:?} is invalid", self.shape))
        })
    }

    pub fn shape_usize(&self) -> Vec<usize> {
        self.shape.iter().map(|&d| d.max(0) as usize).collect()
    }

    /// "float32[64, 3, 7, 7]" or "dtype 7[...]" for unsupported ones.
    pub fn describe(&self) -> String {
        match self.dtype() {
            Some(d) => format!("{}{:?}", d.name(), self.shape),
            None => format!("TensorFlow dtype {}{:?}", self.tf_dtype, self.shape),
        }
    }
}

/// The decoded index.
#[derive(Debug)]
pub struct Bundle {
    pub num_shards: u32,
    pub big_endian: bool,
    pub entries: BTreeMap<String, Entry>,
}

fn int(w: &Wire, what: &str) -> Result<u64> {
    match w {
        Wire::Varint(v) => Ok(*v),
        _ => bail!("{what} is not a varint"),
    }
}

fn shape(msg: &[u8]) -> Result<Vec<i64>> {
    let mut dims = Vec::new();
    for (f, w) in fields(msg)? {
        match (f, w) {
            (2, Wire::Bytes(dim)) => {
                let size = fields(dim)?.iter().find(|(f, _)| *f == 1).map(|(_, w)| int(w, "dimension size"));
                dims.push(size.transpose()?.unwrap_or(0) as i64);
            }
            (3, w) if int(&w, "unknown_rank")? != 0 => bail!("shape has unknown rank"),
            _ => {}
        }
    }
    Ok(dims)
}

fn entry(msg: &[u8]) -> Result<Entry> {
    let mut e = Entry { tf_dtype: 0, shape: Vec::new(), shard: 0, offset: 0, size: 0, crc32c: 0, sliced: false };
    for (f, w) in fields(msg)? {
        match (f, w) {
            (1, w) => e.tf_dtype = int(&w, "dtype")?,
            (2, Wire::Bytes(s)) => e.shape = shape(s)?,
            (3, w) => e.shard = u32::try_from(int(&w, "shard_id")?)?,
            (4, w) => e.offset = int(&w, "offset")?,
            (5, w) => e.size = int(&w, "size")?,
            (6, Wire::Fixed32(c)) => e.crc32c = c,
            (7, _) => e.sliced = true,
            _ => {}
        }
    }
    Ok(e)
}

/// Decodes a `.index` file (its table CRCs checked as blocks are read).
pub fn read_index(data: &[u8]) -> Result<Bundle> {
    let table = sstable::read(data)?;
    let mut it = table.into_iter();
    let (key, header) = it.next().ok_or_else(|| anyhow!("the index is empty"))?;
    if !key.is_empty() {
        bail!("the index does not start with the bundle header (key \"\")");
    }
    let mut bundle = Bundle { num_shards: 0, big_endian: false, entries: BTreeMap::new() };
    for (f, w) in fields(&header).context("in the bundle header")? {
        match f {
            1 => bundle.num_shards = u32::try_from(int(&w, "num_shards")?)?,
            2 => bundle.big_endian = int(&w, "endianness")? == 1,
            _ => {}
        }
    }
    if bundle.num_shards == 0 || bundle.num_shards > MAX_SHARDS {
        bail!("the bundle header names {} data shards (expected 1 to {MAX_SHARDS})", bundle.num_shards);
    }
    for (key, value) in it {
        if key.first() == Some(&0) {
            // The data of one slice of a partitioned variable (an OrderedCode key); the variable's own
            // entry lists its slices and is refused when read.
            continue;
        }
        let name = String::from_utf8(key).map_err(|_| anyhow!("a variable name in the index is not UTF-8"))?;
        let e = entry(&value).with_context(|| format!("in the index entry of {name}"))?;
        if e.shard >= bundle.num_shards {
            bail!("{name} is in shard {} but the bundle has {}", e.shard, bundle.num_shards);
        }
        bundle.entries.insert(name, e);
    }
    Ok(bundle)
}

/// `<prefix>.data-0000S-of-0000N` for shard `s`.
pub fn shard_name(prefix: &str, s: u32, n: u32) -> String {
    format!("{prefix}.data-{s:05}-of-{n:05}")
}

impl Bundle {
    /// The stored bytes of `name`, range and CRC checked.
    pub fn raw<'s>(&self, name: &str, shards: &[&'s [u8]]) -> Result<&'s [u8]> {
        let e = self.entries.get(name).ok_or_else(|| anyhow!("{name} is not in the checkpoint"))?;
        let shard = shards.get(e.shard as usize).ok_or_else(|| anyhow!("shard {} of {name} is not loaded", e.shard))?;
        let end = e.offset.checked_add(e.size).filter(|&end| end <= shard.len() as u64);
        let end = end.ok_or_else(|| {
            anyhow!(
                "{name} needs bytes {}..{} of data shard {} which has {} (truncated shard?)",
                e.offset,
                e.offset.saturating_add(e.size),
                e.shard,
                shard.len()
            )
        })?;
        let bytes = &shard[e.offset as usize..end as usize];
        let actual = crc32c::mask(::crc32c::crc32c(bytes));
        if actual != e.crc32c {
            bail!(
                "{name} fails its CRC-32C check (stored {:#010x}, computed {actual:#010x}): the data shard is corrupt",
                e.crc32c
            );
        }
        Ok(bytes)
    }

    /// Checks the range and CRC of every numeric entry (others cannot be read, so are not checked).
    pub fn check_all(&self, shards: &[&[u8]]) -> Result<()> {
        for (name, e) in &self.entries {
            if e.dtype().is_some() && !e.sliced {
                self.raw(name, shards)?;
            }
        }
        Ok(())
    }

    /// A floating-point variable as contiguous little-endian float32 bytes, with its shape.
    pub fn tensor_f32(&self, name: &str, shards: &[&[u8]]) -> Result<(Vec<usize>, Vec<u8>)> {
        let e = self.entries.get(name).ok_or_else(|| anyhow!("{name} is not in the checkpoint"))?;
        if e.sliced {
            bail!("{name} is stored as slices of a partitioned variable, which is not supported");
        }
        let dt = match e.dtype() {
            Some(d) if d.is_float() => d,
            _ => bail!("{name} is {}, not a floating-point type this converter supports", e.describe()),
        };
        let numel = e.numel()?;
        if numel.checked_mul(dt.size() as u64) != Some(e.size) {
            bail!("{name} is {} but stores {} bytes", e.describe(), e.size);
        }
        let bytes = self.raw(name, shards)?;
        let le: Vec<u8> = if self.big_endian {
            bytes.chunks_exact(dt.size()).flat_map(|c| c.iter().rev().copied()).collect()
        } else {
            bytes.to_vec()
        };
        Ok((e.shape_usize(), dtype::to_f32_bytes(dt, &le)?))
    }
}
