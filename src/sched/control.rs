//! The scheduler's decisions about one run folder: where it runs, what a trainer's death means, and
//! `runs resume|restart|rm` (state changes go through `runs::lifecycle`, the queue is `runs::store::queued`).

pub use crate::runs::agent_record::{AGENT_RECORD_FILE, AgentRecord};
use crate::runs::lifecycle;
use crate::runs::record::{RESULT_FILE, RunSpec, STATUS_FILE, State, Status, validate_run_id};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// A run whose trainer dies this many times without ending is marked failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// The folder of run `id`, checking that the id is a plain name and the run exists.
pub fn run_dir(runs: &Path, id: &str) -> Result<PathBuf> {
    validate_run_id(id)?;
    let dir = runs.join(id);
    if !dir.join(STATUS_FILE).is_file() {
        bail!("no run {id:?} in {}", runs.display());
    }
    Ok(dir)
}

/// Whether a queued run wants a GPU (its device is not "cpu").
pub fn wanted_device(dir: &Path) -> Result<crate::gpu::Wanted, String> {
    let spec = RunSpec::load(dir).map_err(|e| crate::error::one_sentence(&e))?;
    crate::gpu::Wanted::parse(&spec.device.device)
}

/// Whether a run goes to Slurm (its spec's executor).
pub fn on_slurm(dir: &Path) -> bool {
    RunSpec::load(dir).map(|s| s.executor == "slurm").unwrap_or(false)
}

/// Launches so far of a local run.
pub fn local_attempts(dir: &Path) -> u32 {
    AgentRecord::load(dir).map(|r| r.attempts).unwrap_or(0)
}

/// After a trainer exited without a terminal status: requeue it (it resumes from last.ckpt) or,
/// after MAX_ATTEMPTS, mark it failed. Returns the new state.
pub fn after_death(dir: &Path, how: &str, attempts: u32) -> Result<State> {
    let log = dir.join(crate::runs::record::LOG_FILE);
    if attempts >= MAX_ATTEMPTS {
        let why = format!("trainer {how} without a result {attempts} times; see {}", log.display());
        lifecycle::fail(dir, why)?;
        Ok(State::Failed)
    } else {
        lifecycle::requeue(dir, format!("requeued: trainer {how}; resumes from last.ckpt"))?;
        Ok(State::Queued)
    }
}

/// `runs resume`: a stopped or failed run goes back to the queue, keeping its checkpoints.
pub fn requeue(runs: &Path, id: &str) -> Result<()> {
    lifecycle::resume(&run_dir(runs, id)?)
}

/// `runs restart`: any run that is not running goes back to the queue from scratch.
pub fn restart(runs: &Path, id: &str) -> Result<()> {
    lifecycle::restart(&run_dir(runs, id)?)
}

/// `runs rm`: deletes a run folder; never a running run, a finished result only with `force`.
pub fn remove(runs: &Path, id: &str, force: bool) -> Result<()> {
    let dir = run_dir(runs, id)?;
    let state = Status::load(&dir)?.state;
    if state == State::Running {
        bail!("run {id} is running; stop it before removing it");
    }
    if (state == State::Finished || dir.join(RESULT_FILE).exists()) && !force {
        bail!("run {id} has a finished result; add --force to delete it");
    }
    // Rename first so readers never see a half-deleted run.
    let doomed = runs.join(format!(".rm-{id}-{}", std::process::id()));
    std::fs::rename(&dir, &doomed).with_context(|| format!("cannot remove {}", dir.display()))?;
    std::fs::remove_dir_all(&doomed).with_context(|| format!("cannot remove {}", doomed.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::agent_record::Slot;

    fn run(runs: &Path, id: &str, state: State) -> PathBuf {
        let dir = runs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        Status::new(state).save(&dir).unwrap();
        dir
    }

    #[test]
    fn rm_keeps_finished_results_unless_forced() {
        let t = tempfile::tempdir().unwrap();
        run(t.path(), "done", State::Finished);
        run(t.path(), "live", State::Running);
        let err = remove(t.path(), "done", false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert!(remove(t.path(), "live", true).is_err());
        remove(t.path(), "done", true).unwrap();
        assert!(!t.path().join("done").exists());
        assert!(remove(t.path(), "../etc", true).is_err());
    }

    #[test]
    fn deaths_requeue_until_the_attempt_limit() {
        let t = tempfile::tempdir().unwrap();
        let dir = run(t.path(), "r", State::Running);
        let mut rec = AgentRecord { pid: 1, start_time: 1, slot: Slot::Cpu(0), attempts: 1, launched: String::new() };
        rec.save(&dir).unwrap();
        assert_eq!(after_death(&dir, "was killed", rec.attempts).unwrap(), State::Queued);
        rec.attempts = MAX_ATTEMPTS;
        rec.save(&dir).unwrap();
        assert_eq!(after_death(&dir, "was killed", rec.attempts).unwrap(), State::Failed);
        assert!(Status::load(&dir).unwrap().reason.unwrap().contains("train.log"));
    }

    #[test]
    fn resume_and_restart_check_the_state() {
        let t = tempfile::tempdir().unwrap();
        let dir = run(t.path(), "s", State::Stopped);
        std::fs::write(dir.join("last.ckpt"), b"x").unwrap();
        requeue(t.path(), "s").unwrap();
        assert_eq!(Status::load(&dir).unwrap().state, State::Queued);
        assert!(dir.join("last.ckpt").exists(), "resume keeps the checkpoint");
        assert!(requeue(t.path(), "s").is_err());
        restart(t.path(), "s").unwrap();
        assert!(!dir.join("last.ckpt").exists(), "restart starts over");
    }
}
