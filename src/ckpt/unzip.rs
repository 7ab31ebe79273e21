//! Reading members of an ordinary zip archive (stored or deflated) in memory, for checkpoints
//! distributed as zips (SimCLR): nothing is written to disk, names are plain relative paths,
//! sizes are bounded and each member's CRC-32 is checked.

use super::zip::{apply_zip64, central_directory, check_name, le16, le32, to_usize};
use anyhow::{Result, anyhow, bail};

/// Members an archive may list.
const MAX_MEMBERS: u64 = 100_000;
/// Largest member we inflate (a ResNet50 bundle shard with optimizer slots is under 1 GiB).
pub const MAX_MEMBER: u64 = 4 << 30;

/// One member as listed in the central directory.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    method: u16,
    compressed: u64,
    pub size: u64,
    crc32: u32,
    /// Where the member's (compressed) data starts.
    start: usize,
}

/// Lists the members, every name checked and every data range inside the file.
pub fn list(data: &[u8]) -> Result<Vec<Member>> {
    let (count, cd_offset, cd_size) = central_directory(data)?;
    if count > MAX_MEMBERS {
        bail!("zip lists {count} members, more than {MAX_MEMBERS}");
    }
    let cd_start = to_usize(cd_offset, "central directory offset")?;
    let cd_end = cd_start.checked_add(to_usize(cd_size, "central directory size")?).filter(|&e| e <= data.len());
    let cd_end = cd_end.ok_or_else(|| anyhow!("zip central directory reaches past the end of the file"))?;
    let mut at = cd_start;
    let mut out: Vec<Member> = Vec::new();
    for i in 0..count {
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
        let extra =
            data.get(at + 46 + n..at + 46 + n + e).ok_or_else(|| anyhow!("zip entry {name:?} extra ends early"))?;
        apply_zip64(extra, [&mut size, &mut compressed, &mut local])?;
        at += 46 + n + e + c;
        if name.ends_with('/') {
            check_name(name.trim_end_matches('/'))?;
            continue;
        }
        check_name(name)?;
        if flags & 0x41 != 0 {
            bail!("zip member {name:?} is encrypted");
        }
        if method != 0 && method != 8 {
            bail!("zip member {name:?} uses compression method {method} (only stored and deflated are supported)");
        }
        if size > MAX_MEMBER {
            bail!("zip member {name:?} declares {size} bytes, more than the {MAX_MEMBER}-byte limit");
        }
        if method == 0 && compressed != size {
            bail!("zip member {name:?} is stored with compressed size {compressed} but size {size}");
        }
        let local = to_usize(local, "local header offset")?;
        if le32(data, local)? != 0x0403_4b50 {
            bail!("zip member {name:?} has no local header at byte {local}");
        }
        let (ln, le) = (le16(data, local + 26)? as usize, le16(data, local + 28)? as usize);
        if data.get(local + 30..local + 30 + ln) != Some(name_bytes) {
            bail!("zip member {name:?} has a different name in its local header");
        }
        let start = local + 30 + ln + le;
        let end = start.checked_add(to_usize(compressed, "member size")?).filter(|&e| e <= data.len());
        if end.is_none() {
            bail!("zip member {name:?} reaches past the end of the file (truncated?)");
        }
        if out.iter().any(|m| m.name == name) {
            bail!("zip member {name:?} appears twice");
        }
        out.push(Member { name: name.to_string(), method, compressed, size, crc32, start });
    }
    Ok(out)
}

/// A member's bytes, inflated if needed (never past its declared size) and CRC-32 checked.
pub fn extract(data: &[u8], m: &Member) -> Result<Vec<u8>> {
    let raw = &data[m.start..m.start + m.compressed as usize];
    let bytes = if m.method == 0 {
        raw.to_vec()
    } else {
        let limit = to_usize(m.size, "member size")?;
        let out = miniz_oxide::inflate::decompress_to_vec_with_limit(raw, limit).map_err(|e| {
            anyhow!("zip member {:?} does not inflate within its declared {} bytes: {e}", m.name, m.size)
        })?;
        if out.len() as u64 != m.size {
            bail!("zip member {:?} inflates to {} bytes, not its declared {}", m.name, out.len(), m.size);
        }
        out
    };
    if crc32fast::hash(&bytes) != m.crc32 {
        bail!("zip member {:?} fails its CRC-32 check", m.name);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip of (name, data, deflate?, declared size override).
    fn zip_of(members: &[(&str, &[u8], bool, Option<u32>)]) -> Vec<u8> {
        let (mut out, mut cd) = (Vec::new(), Vec::new());
        for (name, data, deflate, declared) in members {
            let body = if *deflate { miniz_oxide::deflate::compress_to_vec(data, 6) } else { data.to_vec() };
            let (method, crc, size) =
                (if *deflate { 8u16 } else { 0 }, crc32fast::hash(data), declared.unwrap_or(data.len() as u32));
            let offset = out.len() as u32;
            let header = |sig: u32, central: bool| {
                let mut h = sig.to_le_bytes().to_vec();
                if central {
                    h.extend(20u16.to_le_bytes());
                }
                for v in [20u16, 0, method, 0, 0] {
                    h.extend(v.to_le_bytes());
                }
                for v in [crc, body.len() as u32, size] {
                    h.extend(v.to_le_bytes());
                }
                h.extend((name.len() as u16).to_le_bytes());
                h.extend(0u16.to_le_bytes());
                if central {
                    h.extend([0u8; 10]); // comment length, disk, internal and external attributes
                    h.extend(offset.to_le_bytes());
                }
                h.extend(name.as_bytes());
                h
            };
            out.extend(header(0x0403_4b50, false));
            out.extend(&body);
            cd.extend(header(0x0201_4b50, true));
        }
        let cd_offset = out.len() as u32;
        out.extend(&cd);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((cd.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn err(data: &[u8]) -> String {
        match list(data) {
            Err(e) => format!("{e:#}"),
            Ok(ms) => {
                ms.iter().map(|m| extract(data, m)).find_map(|r| r.err()).map(|e| format!("{e:#}")).unwrap_or_default()
            }
        }
    }

    #[test]
    fn reads_stored_and_deflated_members() {
        let big = vec![7u8; 100_000];
        let z = zip_of(&[("a/x.index", b"hello", false, None), ("a/y.data", &big, true, None)]);
        let ms = list(&z).unwrap();
        assert_eq!(ms.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["a/x.index", "a/y.data"]);
        assert_eq!(extract(&z, &ms[0]).unwrap(), b"hello");
        assert_eq!(extract(&z, &ms[1]).unwrap(), big);
    }

    #[test]
    fn refuses_path_escapes_bad_crcs_and_members_larger_than_declared() {
        for name in ["../x.index", "a/../../x.index", "/etc/x.index", "a\\..\\x", "c:/x.index", "a//x"] {
            assert!(err(&zip_of(&[(name, b"x", false, None)])).contains("not a plain relative path"), "{name}");
        }
        let mut z = zip_of(&[("a/x", b"hello", false, None)]);
        z[30 + 3] ^= 1; // the first data byte, after the local header and the name

        assert!(err(&z).contains("fails its CRC-32 check"), "{}", err(&z));
        // a deflated member that inflates past its declared size stops at that size (no bombs)
        let bomb = vec![0u8; 1 << 20];
        assert!(
            err(&zip_of(&[("a/b", &bomb, true, Some(1000))]))
                .contains("does not inflate within its declared 1000 bytes")
        );
        let twice = zip_of(&[("a/x", b"1", false, None), ("a/x", b"2", false, None)]);
        assert!(err(&twice).contains("appears twice"));
        assert!(err(&zip_of(&[("a/x", b"1", false, None)])[..40]).contains("end-of-central-directory"));
    }
}
