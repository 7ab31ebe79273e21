//! Checking a file's sha256 against the catalog, the torchvision name prefix, or the zoo.lock pin;
//! installing a verified `.part`; `zoo verify` and `zoo import`.

use super::cache::{ModelPaths, Recorded};
use super::catalog::Entry;
use super::download::Fetched;
use super::pins::{Pin, Pins};
use crate::home::Home;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

/// What a digest check concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Matched the catalog digest, the name prefix or an earlier pin.
    Verified,
    /// Nothing to compare with: pin it now (trust on first use).
    FirstUse,
}

/// Compares `sha256` with what is known about `entry`; a mismatch is an error naming both digests.
pub fn check_digest(entry: &Entry, pin: Option<&Pin>, sha256: &str) -> Result<Verdict> {
    if let Some(prefix) = entry.name_digest_prefix()
        && !sha256.starts_with(&prefix)
    {
        bail!("sha256 mismatch for {}: expected {prefix}… (from the file name {}), got {sha256}", entry.id, entry.file);
    }
    if let Some(expected) = &entry.sha256 {
        if expected != sha256 {
            bail!("sha256 mismatch for {}: expected {expected} (catalog), got {sha256}", entry.id);
        }
        return Ok(Verdict::Verified);
    }
    if let Some(pin) = pin {
        if pin.sha256 != sha256 {
            bail!("sha256 mismatch for {}: expected {} (pinned in zoo.lock), got {sha256}", entry.id, pin.sha256);
        }
        return Ok(Verdict::Verified);
    }
    Ok(Verdict::FirstUse)
}

/// Checks a complete `.part`, then installs it (atomic rename) and records the digest. On a mismatch the
/// `.part` is removed, the failure recorded, and nothing is installed.
pub fn install(home: &Home, entry: &Entry, paths: &ModelPaths, fetched: &Fetched, source: &str) -> Result<Verdict> {
    let pins = Pins::new(&home.root.join("zoo.lock"));
    let pin = pins.get(&entry.id)?;
    let verdict = match check_digest(entry, pin.as_ref(), &fetched.sha256) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&paths.part);
            let reason = format!("{e:#}");
            Recorded { state: "failed".into(), reason: Some(reason), ..Recorded::default() }.save(paths)?;
            return Err(e.context(format!("{} was not installed and the partial download was removed", entry.file)));
        }
    };
    crate::atomic::commit(&paths.part, &paths.file)
        .with_context(|| format!("cannot move {} into place", paths.part.display()))?;
    let pinned_by_name = entry.name_digest_prefix().is_some();
    if verdict == Verdict::FirstUse {
        let pin =
            Pin { file: entry.file.clone(), sha256: fetched.sha256.clone(), size: fetched.size, source: source.into() };
        pins.set(&entry.id, pin)?;
    }
    let state = if verdict == Verdict::Verified || pinned_by_name { "verified" } else { "downloaded" };
    Recorded {
        state: state.into(),
        sha256: Some(fetched.sha256.clone()),
        total: Some(fetched.size),
        reason: None,
        conversion_error: None,
    }
    .save(paths)?;
    Ok(verdict)
}

/// Copies a hand-downloaded file into the `.part` while hashing it (for `zoo import`).
pub fn copy_to_part(src: &Path, part: &Path) -> Result<Fetched> {
    let mut out = std::fs::File::create(part).with_context(|| format!("cannot create {}", part.display()))?;
    let fetched =
        hash_stream(src, |chunk| out.write_all(chunk).with_context(|| format!("cannot write {}", part.display())))?;
    out.sync_all()?;
    Ok(fetched)
}

/// sha256 of a whole file.
pub fn hash_file(path: &Path) -> Result<Fetched> {
    hash_stream(path, |_| Ok(()))
}

/// Reads `path` once in 1 MiB chunks, hashing each chunk and handing it to `sink`.
fn hash_stream(path: &Path, mut sink: impl FnMut(&[u8]) -> Result<()>) -> Result<Fetched> {
    let mut input = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        sink(&buf[..n])?;
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Fetched { sha256: hex::encode(hasher.finalize()), size })
}

/// Re-hashes an installed file: verified against catalog/pin (pinning it when nothing is known yet).
/// A mismatch moves the file aside to `<file>.corrupt` and records the failure.
pub fn verify_installed(home: &Home, entry: &Entry, paths: &ModelPaths) -> Result<Verdict> {
    let pins = Pins::new(&home.root.join("zoo.lock"));
    let fetched = hash_file(&paths.file)?;
    let verdict = match check_digest(entry, pins.get(&entry.id)?.as_ref(), &fetched.sha256) {
        Ok(v) => v,
        Err(e) => {
            let aside = paths.dir.join(format!("{}.corrupt", entry.file));
            std::fs::rename(&paths.file, &aside)?;
            let reason = format!("{e:#}");
            Recorded { state: "failed".into(), reason: Some(reason), ..Recorded::default() }.save(paths)?;
            return Err(e.context(format!("moved the file aside to {}", aside.display())));
        }
    };
    if verdict == Verdict::FirstUse {
        let pin = Pin {
            file: entry.file.clone(),
            sha256: fetched.sha256.clone(),
            size: fetched.size,
            source: "verify".into(),
        };
        pins.set(&entry.id, pin)?;
    }
    let state =
        if verdict == Verdict::Verified || entry.name_digest_prefix().is_some() { "verified" } else { "downloaded" };
    Recorded {
        state: state.into(),
        sha256: Some(fetched.sha256),
        total: Some(fetched.size),
        reason: None,
        conversion_error: None,
    }
    .save(paths)?;
    Ok(verdict)
}
