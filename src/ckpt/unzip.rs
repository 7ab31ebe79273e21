//! Reading members of an ordinary zip archive (stored or deflated) in memory, for checkpoints
//! distributed as zips (SimCLR): nothing is written to disk, names are plain relative paths,
//! sizes are bounded and each member's CRC-32 is checked.

use super::zip::{central_records, end_record, to_usize};
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
    let end = end_record(data)?;
    if end.count > MAX_MEMBERS {
        bail!("zip lists {} members, more than {MAX_MEMBERS}", end.count);
    }
    let mut out: Vec<Member> = Vec::new();
    for r in central_records(data, &end)?.0 {
        let name = r.name;
        if name.ends_with('/') {
            continue;
        }
        if r.flags & 0x41 != 0 {
            bail!("zip member {name:?} is encrypted");
        }
        if r.method != 0 && r.method != 8 {
            bail!("zip member {name:?} uses compression method {} (only stored and deflated are supported)", r.method);
        }
        if r.size > MAX_MEMBER {
            bail!("zip member {name:?} declares {} bytes, more than the {MAX_MEMBER}-byte limit", r.size);
        }
        if r.method == 0 && r.compressed != r.size {
            bail!("zip member {name:?} is stored with compressed size {} but size {}", r.compressed, r.size);
        }
        if out.iter().any(|m| m.name == name) {
            bail!("zip member {name:?} appears twice");
        }
        out.push(Member {
            name: name.to_string(),
            method: r.method,
            compressed: r.compressed,
            size: r.size,
            crc32: r.crc32,
            start: r.start,
        });
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
