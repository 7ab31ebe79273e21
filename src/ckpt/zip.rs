//! A minimal reader for torch.save's zip container: central directory (ZIP64 too), stored entries only,
//! one root folder, no path tricks. Entries are slices of the file's bytes.

use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;

/// The entries of an archive by name (without the root folder), with the root folder's name.
pub struct Archive<'a> {
    pub root: String,
    pub entries: BTreeMap<String, &'a [u8]>,
}

pub(super) fn le16(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at.saturating_add(2))
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| anyhow!("zip structure ends early"))
}
pub(super) fn le32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at.saturating_add(4))
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| anyhow!("zip structure ends early"))
}
pub(super) fn le64(b: &[u8], at: usize) -> Result<u64> {
    let s = b.get(at..at.saturating_add(8)).ok_or_else(|| anyhow!("zip structure ends early"))?;
    Ok(u64::from_le_bytes(s.try_into()?))
}
pub(super) fn to_usize(v: u64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| anyhow!("zip {what} {v} is too large"))
}

/// The end-of-central-directory record and, when present, the ZIP64 record before it.
pub(super) struct EndRecord {
    pub(super) count: u64,
    cd_offset: u64,
    cd_size: u64,
    /// Byte offset of the end-of-central-directory record.
    eocd: usize,
    comment_len: usize,
    /// Byte offset of the ZIP64 end-of-central-directory record, when there is one.
    zip64: Option<usize>,
}

pub(super) fn end_record(data: &[u8]) -> Result<EndRecord> {
    const EOCD: u32 = 0x0605_4b50;
    let lowest = data.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=data.len().saturating_sub(22))
        .rev()
        .find(|&i| le32(data, i).ok() == Some(EOCD))
        .ok_or_else(|| anyhow!("no zip end-of-central-directory record (truncated file?)"))?;
    let (mut count, mut size, mut offset) =
        (le16(data, eocd + 10)? as u64, le32(data, eocd + 12)? as u64, le32(data, eocd + 16)? as u64);
    let comment_len = le16(data, eocd + 20)? as usize;
    let mut zip64 = None;
    if eocd >= 20 && le32(data, eocd - 20)? == 0x0706_4b50 {
        let rec = to_usize(le64(data, eocd - 20 + 8)?, "ZIP64 record offset")?;
        if le32(data, rec)? != 0x0606_4b50 {
            bail!("ZIP64 end-of-central-directory record missing at byte {rec}");
        }
        count = le64(data, rec + 32)?;
        size = le64(data, rec + 40)?;
        offset = le64(data, rec + 48)?;
        zip64 = Some(rec);
    }
    Ok(EndRecord { count, cd_offset: offset, cd_size: size, eocd, comment_len, zip64 })
}

/// The length of the data descriptor at `at` (torch.save writes one after each entry): an optional
/// signature, the CRC, then both sizes in 32 or 64 bits, which must repeat the central directory's.
fn descriptor_len(data: &[u8], at: usize, crc: u32, size: u64, name: &str) -> Result<usize> {
    let fields = if le32(data, at)? == 0x0807_4b50 { at + 4 } else { at };
    if le32(data, fields)? == crc {
        if le32(data, fields + 4)? as u64 == size && le32(data, fields + 8)? as u64 == size {
            return Ok(fields + 12 - at);
        }
        if le64(data, fields + 4)? == size && le64(data, fields + 12)? == size {
            return Ok(fields + 20 - at);
        }
    }
    bail!("zip entry {name:?} has a data descriptor at byte {at} that does not repeat its CRC and size")
}

/// Checks the entries, the central directory and the end records tile the file exactly: bytes
/// anywhere else (a second archive or a pickle in front, between or behind, or in the comment)
/// would let the file parse more than one way.
fn check_every_byte_is_read(data: &[u8], mut spans: Vec<(usize, usize, String)>, end: &EndRecord) -> Result<()> {
    spans.sort();
    let mut at = 0;
    for (start, stop, name) in spans {
        if start < at {
            bail!("zip entry {name:?} at byte {start} overlaps the entry before it (ends at byte {at})");
        }
        if start > at {
            bail!("zip has {} bytes at byte {at} that belong to no entry (before {name:?})", start - at);
        }
        at = stop;
    }
    let cd_start = to_usize(end.cd_offset, "central directory offset")?;
    if cd_start != at {
        bail!("zip has {} bytes at byte {at} between its last entry and its central directory", cd_start.abs_diff(at));
    }
    let cd_end = cd_start + to_usize(end.cd_size, "central directory size")?;
    let records_at = match end.zip64 {
        Some(rec) => {
            let rec_end = to_usize(le64(data, rec + 4)?, "ZIP64 record size")?.checked_add(rec + 12);
            if rec_end != Some(end.eocd - 20) {
                bail!(
                    "zip has bytes between its ZIP64 end record at byte {rec} and its locator at byte {}",
                    end.eocd - 20
                );
            }
            rec
        }
        None => end.eocd,
    };
    if records_at != cd_end {
        bail!(
            "zip has {} bytes at byte {cd_end} between its central directory and its end record",
            records_at.abs_diff(cd_end)
        );
    }
    if end.comment_len > 0 {
        bail!("zip has a comment of {} bytes at byte {} (torch.save writes none)", end.comment_len, end.eocd + 22);
    }
    if end.eocd + 22 != data.len() {
        bail!("zip has {} bytes after its end record at byte {}", data.len() - end.eocd - 22, end.eocd + 22);
    }
    Ok(())
}

pub(super) fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.contains(':')
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        bail!("zip entry name {name:?} is not a plain relative path");
    }
    Ok(())
}

/// Replaces the 32-bit sizes and offset saturated at 0xFFFFFFFF with their values from the zip64 extra
/// field (id 1), which lists only the saturated ones, in the order size, compressed size, local offset.
pub(super) fn apply_zip64(extra: &[u8], mut fields: [&mut u64; 3]) -> Result<()> {
    let mut x = 0;
    while x + 4 <= extra.len() {
        let (id, len) = (le16(extra, x)?, le16(extra, x + 2)? as usize);
        if id == 1 {
            let mut f = x + 4;
            for field in fields.iter_mut() {
                if **field == 0xFFFF_FFFF {
                    **field = le64(extra, f)?;
                    f += 8;
                }
            }
        }
        x += 4 + len;
    }
    Ok(())
}

/// One central-directory record, its sizes and offset after ZIP64, its local header found with the same name.
pub(super) struct Record<'a> {
    pub(super) name: &'a str,
    pub(super) flags: u16,
    pub(super) method: u16,
    pub(super) crc32: u32,
    pub(super) compressed: u64,
    pub(super) size: u64,
    /// Byte offset of the local header.
    pub(super) local: usize,
    /// Byte offset of the (compressed) data, which lies inside the file.
    pub(super) start: usize,
}

/// Walks the `end.count` records of the central directory, checking each name (UTF-8, a plain relative path;
/// a folder ends with '/'), its local header and that its data lies inside the file. Returns the records and
/// the byte offset where the last record ends.
pub(super) fn central_records<'a>(data: &'a [u8], end: &EndRecord) -> Result<(Vec<Record<'a>>, usize)> {
    let cd_start = to_usize(end.cd_offset, "central directory offset")?;
    let cd_end = cd_start.checked_add(to_usize(end.cd_size, "central directory size")?).filter(|&e| e <= data.len());
    let cd_end = cd_end.ok_or_else(|| anyhow!("zip central directory reaches past the end of the file"))?;
    let mut at = cd_start;
    let mut records = Vec::new();
    for i in 0..end.count {
        if at >= cd_end || le32(data, at)? != 0x0201_4b50 {
            bail!("zip central directory entry {i} is malformed");
        }
        let flags = le16(data, at + 8)?;
        let method = le16(data, at + 10)?;
        let crc32 = le32(data, at + 16)?;
        let mut compressed = le32(data, at + 20)? as u64;
        let mut size = le32(data, at + 24)? as u64;
        let (n, e, c) = (le16(data, at + 28)? as usize, le16(data, at + 30)? as usize, le16(data, at + 32)? as usize);
        let mut local = le32(data, at + 42)? as u64;
        let name_bytes = data.get(at + 46..at + 46 + n).ok_or_else(|| anyhow!("zip entry {i} name ends early"))?;
        let name = std::str::from_utf8(name_bytes).map_err(|_| anyhow!("zip entry {i} name is not UTF-8"))?;
        check_name(name.strip_suffix('/').unwrap_or(name))?;
        let extra =
            data.get(at + 46 + n..at + 46 + n + e).ok_or_else(|| anyhow!("zip entry {name:?} extra ends early"))?;
        apply_zip64(extra, [&mut size, &mut compressed, &mut local])?;
        let local = to_usize(local, "local header offset")?;
        if le32(data, local)? != 0x0403_4b50 {
            bail!("zip entry {name:?} has no local header at byte {local}");
        }
        let (ln, le) = (le16(data, local + 26)? as usize, le16(data, local + 28)? as usize);
        if data.get(local + 30..local + 30 + ln) != Some(name_bytes) {
            bail!("zip entry {name:?} has a different name in its local header");
        }
        let start = local + 30 + ln + le;
        if start.checked_add(to_usize(compressed, "entry size")?).is_none_or(|e| e > data.len()) {
            bail!("zip entry {name:?} reaches past the end of the file (truncated?)");
        }
        records.push(Record { name, flags, method, crc32, compressed, size, local, start });
        at += 46 + n + e + c;
    }
    Ok((records, at))
}

/// Reads the archive's directory and checks every entry.
pub fn read(data: &[u8]) -> Result<Archive<'_>> {
    let end_rec = end_record(data)?;
    let (records, cd_stop) = central_records(data, &end_rec)?;
    let mut root: Option<String> = None;
    let mut entries = BTreeMap::new();
    let mut spans = Vec::new();
    for r in records {
        let name = r.name;
        if name.ends_with('/') {
            bail!("zip entry {name:?} is a folder; torch.save writes none");
        }
        if r.flags & 0x41 != 0 {
            bail!("zip entry {name:?} is encrypted");
        }
        if r.method != 0 {
            bail!("zip entry {name:?} is compressed (method {}); torch.save writes stored entries", r.method);
        }
        if r.compressed != r.size {
            bail!("zip entry {name:?} has compressed size {} but size {}", r.compressed, r.size);
        }
        let end = r.start + r.size as usize;
        let (first, rest) =
            name.split_once('/').ok_or_else(|| anyhow!("zip entry {name:?} is outside a root folder"))?;
        match &root {
            None => root = Some(first.to_string()),
            Some(root) if root != first => bail!("zip has more than one root folder ({root:?} and {first:?})"),
            _ => {}
        }
        if entries.insert(rest.to_string(), &data[r.start..end]).is_some() {
            bail!("zip entry {name:?} appears twice");
        }
        let end = if r.flags & 0x08 != 0 { end + descriptor_len(data, end, r.crc32, r.size, name)? } else { end };
        spans.push((r.local, end, name.to_string()));
    }
    let root = root.ok_or_else(|| anyhow!("zip archive is empty"))?;
    let cd_end = to_usize(end_rec.cd_offset + end_rec.cd_size, "central directory end")?;
    if cd_stop != cd_end {
        bail!("zip central directory has {} bytes after its last entry at byte {cd_stop}", cd_end.abs_diff(cd_stop));
    }
    check_every_byte_is_read(data, spans, &end_rec)?;
    Ok(Archive { root, entries })
}
