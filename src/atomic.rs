//! Crash-safe file writes: write a temporary sibling, fsync it, rename it over the target,
//! fsync the folder. A reader sees the old file or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary name used while `path` is being written (same folder, so rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Removes the temporaries (`.NAME.tmp.PID`) of `dir` left by writers that were killed mid-write,
/// i.e. whose process is gone. Returns the names removed.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp.")).map(|(_, pid)| pid) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        let written = entry.metadata().and_then(|m| m.modified()).ok();
        if pid != std::process::id() && writer_is_gone(pid, written) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// True when the process that wrote a temporary at `written` no longer runs: no such pid, a zombie
/// nobody has reaped yet, or a pid since reused by a process that started after the write.
fn writer_is_gone(pid: u32, written: Option<std::time::SystemTime>) -> bool {
    let Some(started) = crate::process::start_time(pid) else { return true };
    match (written, crate::process::boot_time(), crate::process::clock_ticks_per_second()) {
        (Some(written), Some(boot), Some(ticks)) => {
            let started = boot + std::time::Duration::from_secs_f64(started as f64 / ticks as f64);
            // /proc/stat's btime has one-second resolution.
            started > written + std::time::Duration::from_secs(2)
        }
        _ => false,
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// Writes `path` atomically with a closure that fills the temporary file.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        commit(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames a fully written `tmp` over `path` and makes the rename durable.
pub fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsyncs a folder so that a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    File::open(dir)?.sync_all()
}

/// Removes `path`; a file that is already gone is not an error.
pub fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporaries_of_dead_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mine = std::process::id();
        for name in [format!(".last.ckpt.tmp.{dead}"), format!(".status.json.tmp.{mine}"), "last.ckpt".into()] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()), vec![format!(".last.ckpt.tmp.{dead}")]);
        let mut left: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, vec![format!(".status.json.tmp.{mine}"), "last.ckpt".to_string()]);
    }

    #[test]
    fn a_zombie_writer_counts_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let zombie = child.id();
        // Not reaped yet: the child stays a zombie until wait() below.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read_to_string(format!("/proc/{zombie}/stat")).is_ok_and(|s| s.contains(") Z ")) {
            assert!(std::time::Instant::now() < deadline, "`true` did not exit");
            std::thread::yield_now();
        }
        fs::write(dir.path().join(format!(".last.ckpt.tmp.{zombie}")), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), vec![format!(".last.ckpt.tmp.{zombie}")]);
        child.wait().unwrap();
    }

    #[test]
    fn a_pid_reused_after_the_write_counts_as_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut live = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let name = format!(".metrics.jsonl.tmp.{}", live.id());
        let path = dir.path().join(&name);
        fs::write(&path, b"x").unwrap();
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options().write(true).open(&path).unwrap().set_modified(long_ago).unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()), vec![name]);
        fs::write(&path, b"x").unwrap();
        assert!(remove_stale_temporaries(dir.path()).is_empty(), "a live writer's temporary was removed");
        live.kill().unwrap();
        live.wait().unwrap();
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("status.json");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn failed_fill_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        write(&p, b"old").unwrap();
        let err = write_with(&p, |_| Err(io::Error::other("boom")));
        assert!(err.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
