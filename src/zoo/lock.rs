//! Per-model lock files (flock): two processes working on one model never touch its files at once.
//! The kernel drops the lock when the holder dies, so a killed download never leaves a stale lock.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// An exclusive flock on a file, released on drop.
#[derive(Debug)]
pub struct IdLock {
    file: File,
}

impl IdLock {
    /// Takes the lock without waiting; `Ok(None)` when another process holds it.
    pub fn try_acquire(path: &Path) -> Result<Option<IdLock>> {
        let file = open(path)?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB)? { Ok(Some(IdLock { file })) } else { Ok(None) }
    }

    /// Takes the lock, waiting for the holder (call from a blocking thread).
    pub fn acquire(path: &Path) -> Result<IdLock> {
        let file = open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(IdLock { file })
    }

    /// Whether some process holds the lock now.
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).open(path) else { return false };
        match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
            Ok(true) => {
                let _ = flock(&file, libc::LOCK_UN);
                false
            }
            _ => true,
        }
    }
}

impl Drop for IdLock {
    fn drop(&mut self) {
        let _ = flock(&self.file, libc::LOCK_UN);
    }
}

fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        crate::home::create_private_dir(dir)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

/// flock(2); `Ok(false)` when a non-blocking request would block.
fn flock(file: &File, op: libc::c_int) -> Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err).context("flock failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m/.lock");
        let first = IdLock::try_acquire(&p).unwrap().unwrap();
        assert!(IdLock::is_held(&p));
        assert!(IdLock::try_acquire(&p).unwrap().is_none());
        drop(first);
        assert!(!IdLock::is_held(&p));
        assert!(IdLock::try_acquire(&p).unwrap().is_some());
    }
}
