//! Processes the agent launches: in a new session (`crate::process::new_session`) with output appended to
//! the run's log.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What to launch for one run.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub run_dir: &'a Path,
    pub log: &'a Path,
    /// CUDA_VISIBLE_DEVICES: a GPU index, or "" for a CPU slot.
    pub cuda_visible_devices: String,
    /// OMP_NUM_THREADS for the run (0 = leave unset).
    pub threads: usize,
}

/// Starts `PROGRAM train --run DIR` in its own session, stdin from /dev/null, stdout/stderr appended to the log.
pub fn spawn_train(l: &Launch) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(l.log)
        .with_context(|| format!("cannot open run log {}", l.log.display()))?;
    let err = log.try_clone()?;
    let mut cmd = Command::new(l.program);
    cmd.arg("train")
        .arg("--run")
        .arg(l.run_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .env("CUDA_VISIBLE_DEVICES", &l.cuda_visible_devices)
        // CUDA's own order (fastest first) can differ from NVML's, whose numbers the agent chose the GPU by.
        .env("CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    if l.threads > 0 {
        cmd.env("OMP_NUM_THREADS", l.threads.to_string());
    }
    crate::process::new_session(&mut cmd);
    cmd.spawn().with_context(|| format!("cannot start {} train --run {}", l.program.display(), l.run_dir.display()))
}
