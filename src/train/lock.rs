//! One trainer per run folder: `train.lock` is held (flock) for the trainer's whole life, so a second
//! `medxfer train --run DIR` (an agent that lost track of a live trainer) waits instead of writing beside it.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub const LOCK_FILE: &str = "train.lock";
const POLL: Duration = Duration::from_millis(200);

/// Held while alive; the kernel releases it when the process dies, however it dies.
pub struct RunLock {
    _file: File,
}

/// Takes the run's lock, waiting while an earlier trainer holds it. A stop asked for while waiting is
/// passed on to that trainer (SIGTERM); the wait still lasts until it has exited.
pub fn acquire(dir: &Path, stop: &AtomicBool, mut say: impl FnMut(&str)) -> Result<RunLock> {
    let path = dir.join(LOCK_FILE);
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut waited = false;
    let mut forwarded = false;
    while !try_lock(&file).with_context(|| format!("cannot lock {}", path.display()))? {
        let holder = holder_pid(&mut file);
        if !waited {
            say(&format!(
                "waiting for {}, an earlier trainer of this run that is still running",
                holder.map_or("another process".to_string(), |p| format!("pid {p}"))
            ));
            waited = true;
        }
        if stop.load(Ordering::SeqCst) && !forwarded {
            if let Some(pid) = holder {
                if crate::process::signal_group(pid, libc::SIGTERM).is_err() {
                    // SAFETY: kill(2) on the pid the lock holder wrote; no memory is involved.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
                say(&format!("stop passed on to pid {pid}"));
            }
            forwarded = true;
        }
        std::thread::sleep(POLL);
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(RunLock { _file: file })
}

fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this function borrows.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(false) } else { Err(e) }
}

fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_second_trainer_waits_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let never = AtomicBool::new(false);
        let first = acquire(dir.path(), &never, |_| {}).unwrap();
        let (tx, rx) = mpsc::channel();
        let path = dir.path().to_path_buf();
        let second = std::thread::spawn(move || {
            let never = AtomicBool::new(false);
            let lock = acquire(&path, &never, |msg| tx.send(msg.to_string()).unwrap()).unwrap();
            drop(lock);
        });
        let said = rx.recv().unwrap();
        assert_eq!(
            said,
            format!("waiting for pid {}, an earlier trainer of this run that is still running", std::process::id())
        );
        assert!(!second.is_finished());
        drop(first);
        second.join().unwrap();
    }

    #[test]
    fn a_stop_while_waiting_is_passed_on_to_the_holder() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let never = AtomicBool::new(false);
        let held = acquire(dir.path(), &never, |_| {}).unwrap();
        let mut holder = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), format!("{}\n", holder.id())).unwrap();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let stop = AtomicBool::new(true);
            acquire(&path, &stop, |_| {}).map(drop)
        });
        let status = holder.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        drop(held);
        waiter.join().unwrap().unwrap();
    }
}
