//! A reader for the LevelDB-format table TensorFlow writes as a checkpoint's `.index`: footer with
//! magic, index block of block handles, data blocks of prefix-compressed keys, and a 5-byte trailer
//! (compression type + masked CRC-32C) checked on every block read. Uncompressed blocks only.

use super::crc32c;
use super::protobuf::varint;
use anyhow::{Result, anyhow, bail};

pub const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
const FOOTER: usize = 48;
const TRAILER: usize = 5;
/// At most this many entries in one table (a ResNet50 bundle has under 2,000).
const MAX_ENTRIES: usize = 1 << 20;

fn handle(b: &[u8], at: &mut usize) -> Result<(usize, usize)> {
    let offset = usize::try_from(varint(b, at)?)?;
    let size = usize::try_from(varint(b, at)?)?;
    Ok((offset, size))
}

/// The contents of the block at `(offset, size)`, its trailer's CRC checked.
fn block<'a>(data: &'a [u8], (offset, size): (usize, usize), what: &str) -> Result<&'a [u8]> {
    let end = offset.checked_add(size).and_then(|e| e.checked_add(TRAILER)).filter(|&e| e <= data.len());
    let end = end.ok_or_else(|| anyhow!("{what} block at byte {offset} reaches past the end of the table"))?;
    let contents = &data[offset..offset + size];
    let kind = data[offset + size];
    let stored = u32::from_le_bytes(data[offset + size + 1..end].try_into()?);
    let actual = crc32c::mask(::crc32c::crc32c_append(::crc32c::crc32c(contents), &[kind]));
    if stored != actual {
        bail!("{what} block at byte {offset} fails its CRC-32C check (stored {stored:#010x}, computed {actual:#010x})");
    }
    match kind {
        0 => Ok(contents),
        1 => bail!("{what} block at byte {offset} is Snappy-compressed, which is not supported"),
        k => bail!("{what} block at byte {offset} has unknown compression type {k}"),
    }
}

/// The (key, value) entries of one block, keys rebuilt from their shared prefixes.
fn entries(block: &[u8], what: &str, out: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
    if block.len() < 4 {
        bail!("{what} block is shorter than its restart count");
    }
    let restarts = u32::from_le_bytes(block[block.len() - 4..].try_into()?) as usize;
    let limit = restarts
        .checked_mul(4)
        .and_then(|r| r.checked_add(4))
        .and_then(|r| block.len().checked_sub(r))
        .ok_or_else(|| anyhow!("{what} block claims {restarts} restart points, more than it holds"))?;
    let mut at = 0;
    let mut key: Vec<u8> = Vec::new();
    while at < limit {
        let shared = usize::try_from(varint(&block[..limit], &mut at)?)?;
        let own = usize::try_from(varint(&block[..limit], &mut at)?)?;
        let vlen = usize::try_from(varint(&block[..limit], &mut at)?)?;
        if shared > key.len() {
            bail!("{what} block entry shares {shared} bytes with a {}-byte key", key.len());
        }
        let end = at.checked_add(own).and_then(|e| e.checked_add(vlen)).filter(|&e| e <= limit);
        let end = end.ok_or_else(|| anyhow!("{what} block entry reaches past the block"))?;
        key.truncate(shared);
        key.extend_from_slice(&block[at..at + own]);
        let value = block[at + own..end].to_vec();
        at = end;
        if let Some((prev, _)) = out.last()
            && prev.as_slice() >= key.as_slice()
        {
            bail!("{what} keys are not in strictly increasing order");
        }
        if out.len() >= MAX_ENTRIES {
            bail!("table has more than {MAX_ENTRIES} entries");
        }
        out.push((key.clone(), value));
    }
    Ok(())
}

/// Every (key, value) of the table in `data`, in key order.
pub fn read(data: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if data.len() < FOOTER {
        bail!("the file is {} bytes, too short for a table footer (truncated?)", data.len());
    }
    let footer = &data[data.len() - FOOTER..];
    let magic = u64::from_le_bytes(footer[FOOTER - 8..].try_into()?);
    if magic != MAGIC {
        bail!("the file does not end with the table magic number {MAGIC:#018x} (truncated or not a TensorFlow index?)");
    }
    let mut at = 0;
    let _metaindex = handle(&footer[..FOOTER - 8], &mut at)?;
    let index = handle(&footer[..FOOTER - 8], &mut at)?;
    let mut handles = Vec::new();
    entries(block(data, index, "index")?, "index", &mut handles)?;
    let mut out = Vec::new();
    for (_, h) in handles {
        let mut at = 0;
        let h = handle(&h, &mut at)?;
        entries(block(data, h, "data")?, "data", &mut out)?;
    }
    Ok(out)
}
