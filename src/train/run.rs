//! `medxfer train --run DIR` around the epoch loop: the status file's life cycle (never left
//! "running" by an error or a panic), SIGTERM/SIGINT turned into a clean stop, and failure reasons.

use super::files::RunFiles;
use super::trainer::{self, Outcome};
use crate::home::Home;
use crate::runs::record::{RESULT_FILE, RunSpec, State, Status};
use anyhow::{Result, anyhow};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn ask_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() {
    let handler = ask_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// Runs (or resumes) the run in `dir`; Ok(0) when finished or stopped on request.
pub fn run(dir: &Path, home: &Home) -> Result<i32> {
    if !dir.is_dir() {
        return Err(anyhow!("run folder {} does not exist", dir.display()));
    }
    install_stop_handlers();
    let _lock = super::lock::acquire(dir, &STOP, |msg| eprintln!("medxfer: {msg}"))?;
    if let Ok(status) = Status::load(dir)
        && status.state == State::Finished
        && dir.join(RESULT_FILE).exists()
    {
        eprintln!("medxfer: run {} has already finished", dir.display());
        return Ok(0);
    }
    let mut files = RunFiles::open(dir)?;
    files.status.start()?;
    for name in crate::atomic::remove_stale_temporaries(dir) {
        files.log(&format!("removed {name}, left by a writer killed mid-write"));
    }
    let spec = match RunSpec::load(dir) {
        Ok(spec) => spec,
        Err(e) => return Err(fail(&mut files, e)),
    };
    files.log(&format!("start pid {} run {} on {}", std::process::id(), spec.id, spec.device.device));
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| trainer::train(&spec, home, &mut files, &STOP)));
    match outcome {
        Ok(Ok(Outcome::Finished)) => {
            files.status.finish()?;
            files.log("finished");
            Ok(0)
        }
        Ok(Ok(Outcome::Stopped)) => {
            files.status.stop("stopped on request; run it again to resume")?;
            files.log("stopped");
            Ok(0)
        }
        Ok(Err(e)) => Err(fail(&mut files, e)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(fail(&mut files, anyhow!(explain_panic(&message, spec.hyper.batch_size))))
        }
    }
}

/// Records a failure in status.json and train.log; returns the error for the exit message.
fn fail(files: &mut RunFiles, e: anyhow::Error) -> anyhow::Error {
    let reason = crate::error::one_sentence(&e);
    files.log(&format!("failed: {reason}"));
    if let Err(write) = files.status.fail(reason) {
        return e.context(format!("also failed to record the failure: {write}"));
    }
    e
}

/// A libtorch panic as one sentence; out-of-memory gets the batch size and what to try.
fn explain_panic(message: &str, batch_size: usize) -> String {
    let first = message.lines().next().unwrap_or(message);
    if message.contains("out of memory") {
        format!(
            "out of GPU memory at batch size {batch_size}: try --set batch_size={} (or a smaller image_size)",
            (batch_size / 2).max(1)
        )
    } else {
        format!("libtorch error: {first}")
    }
}
