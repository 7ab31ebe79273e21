//! The scheduler's view of run folders: the on-disk queue, the agent's per-run record (agent.json),
//! and the state changes behind `runs stop|kill|resume|restart|rm`.

use crate::runs::record::{RESULT_FILE, RunSpec, STATUS_FILE, State, Status, validate_run_id};
use crate::sched::slots::Slot;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const AGENT_RECORD_FILE: &str = "agent.json";
/// A run whose trainer dies this many times without ending is marked failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// What the agent knows about the process of a run: enough to re-adopt it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub pid: u32,
    /// /proc/PID/stat field 22: tells a live run from a reused pid.
    pub start_time: u64,
    pub slot: Slot,
    /// Launches so far (1 = first).
    pub attempts: u32,
    pub launched: String,
}

impl AgentRecord {
    pub fn load(dir: &Path) -> Option<AgentRecord> {
        let text = std::fs::read_to_string(dir.join(AGENT_RECORD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(AGENT_RECORD_FILE);
        crate::atomic::write(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The folder of run `id`, checking that the id is a plain name and the run exists.
pub fn run_dir(runs: &Path, id: &str) -> Result<PathBuf> {
    validate_run_id(id)?;
    let dir = runs.join(id);
    if !dir.join(STATUS_FILE).is_file() {
        bail!("no run {id:?} in {}", runs.display());
    }
    Ok(dir)
}

/// Run ids (folder names, temporaries skipped) with their status, sorted by id.
pub fn scan(runs: &Path) -> Vec<(String, Status)> {
    let Ok(entries) = std::fs::read_dir(runs) else { return Vec::new() };
    let mut out: Vec<(String, Status)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .filter_map(|name| Status::load(&runs.join(&name)).ok().map(|s| (name, s)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Queued run ids in launch order.
pub fn queued(runs: &Path) -> Vec<String> {
    scan(runs).into_iter().filter(|(_, s)| s.state == State::Queued).map(|(id, _)| id).collect()
}

/// Whether a queued run wants a GPU (its device is not "cpu").
pub fn wants_gpu(dir: &Path) -> bool {
    RunSpec::load(dir).map(|s| s.device.device != "cpu").unwrap_or(false)
}

/// Whether a run goes to Slurm (its spec's executor).
pub fn on_slurm(dir: &Path) -> bool {
    RunSpec::load(dir).map(|s| s.executor == "slurm").unwrap_or(false)
}

/// Launches so far of a local run.
pub fn local_attempts(dir: &Path) -> u32 {
    AgentRecord::load(dir).map(|r| r.attempts).unwrap_or(0)
}

pub fn set_state(dir: &Path, state: State, reason: Option<String>) -> Result<()> {
    let mut status = Status::load(dir).unwrap_or_else(|_| Status::new(state));
    status.state = state;
    status.reason = reason;
    if state != State::Running {
        status.pid = None;
    }
    status.save(dir)
}

/// After a trainer exited without a terminal status: requeue it (it resumes from last.ckpt) or,
/// after MAX_ATTEMPTS, mark it failed. Returns the new state.
pub fn after_death(dir: &Path, how: &str, attempts: u32) -> Result<State> {
    let log = dir.join(crate::runs::record::LOG_FILE);
    if attempts >= MAX_ATTEMPTS {
        let why = format!("trainer {how} without a result {attempts} times; see {}", log.display());
        set_state(dir, State::Failed, Some(why))?;
        Ok(State::Failed)
    } else {
        set_state(dir, State::Queued, Some(format!("requeued: trainer {how}; resumes from last.ckpt")))?;
        Ok(State::Queued)
    }
}

/// `runs resume`: a stopped or failed run goes back to the queue, keeping its checkpoints.
pub fn requeue(runs: &Path, id: &str) -> Result<()> {
    let dir = run_dir(runs, id)?;
    let state = Status::load(&dir)?.state;
    match state {
        State::Stopped | State::Failed => {}
        State::Finished => bail!("run {id} is finished; use `runs restart {id}` to train it again"),
        State::Queued | State::Running => bail!("run {id} is already {}", state_name(state)),
    }
    remove_if_present(&dir.join(AGENT_RECORD_FILE))?;
    set_state(&dir, State::Queued, Some("resumed by user".into()))
}

/// `runs restart`: any run that is not running goes back to the queue from scratch.
pub fn restart(runs: &Path, id: &str) -> Result<()> {
    let dir = run_dir(runs, id)?;
    if Status::load(&dir)?.state == State::Running {
        bail!("run {id} is running; stop it first");
    }
    for name in ["metrics.jsonl", "last.ckpt", "best.safetensors", RESULT_FILE, AGENT_RECORD_FILE] {
        remove_if_present(&dir.join(name))?;
    }
    let mut status = Status::new(State::Queued);
    status.reason = Some("restarted by user".into());
    status.save(&dir)
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

pub fn state_name(state: State) -> &'static str {
    match state {
        State::Queued => "queued",
        State::Running => "running",
        State::Stopped => "stopped",
        State::Failed => "failed",
        State::Finished => "finished",
    }
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(runs: &Path, id: &str, state: State) -> PathBuf {
        let dir = runs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        Status::new(state).save(&dir).unwrap();
        dir
    }

    #[test]
    fn queue_is_queued_folders_in_id_order() {
        let t = tempfile::tempdir().unwrap();
        run(t.path(), "b", State::Queued);
        run(t.path(), "a", State::Queued);
        run(t.path(), "c", State::Finished);
        run(t.path(), ".tmp-d", State::Queued);
        assert_eq!(queued(t.path()), ["a", "b"]);
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
