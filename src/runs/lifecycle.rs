//! The only writer of status.json. Each function is one step of a run's life and refuses a step that does
//! not follow from the state on disk:
//!
//! ```text
//! (none) --enqueue--> queued --launch--> running --(trainer) finish|stop|fail--> finished|stopped|failed
//! queued|running --stop|fail (agent)--> stopped|failed      running --requeue (trainer died)--> queued
//! stopped|failed --resume--> queued                           any but running --restart--> queued (from scratch)
//! ```
//!
//! The agent's steps also accept a status.json that cannot be read (it is replaced whole). The trainer keeps
//! its status in memory (`Training`): it starts "running" whatever the file said, and writes its progress.

use super::agent_record::AGENT_RECORD_FILE;
use super::record::{METRICS_FILE, RESULT_FILE, STATUS_FILE, State, Status, now_rfc3339};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Writes the status.json of a new run folder (the sweep, before the folder is renamed into place).
pub fn enqueue(dir: &Path) -> Result<()> {
    if dir.join(STATUS_FILE).exists() {
        bail!("{} already exists: a run is queued only once", dir.join(STATUS_FILE).display());
    }
    write(dir, &Status::new(State::Queued))
}

/// The agent hands a queued run to a trainer (a local process or a Slurm job).
pub fn launch(dir: &Path) -> Result<()> {
    step(dir, State::Running, None, &[Some(State::Queued)])
}

/// The agent ends a run that did not end by itself: stopped by the user, or before it started.
pub fn stop(dir: &Path, reason: &str) -> Result<()> {
    step(dir, State::Stopped, Some(reason.into()), &[Some(State::Queued), Some(State::Running), None])
}

/// The agent records a run that cannot run (no GPU, the launch failed, too many deaths).
pub fn fail(dir: &Path, reason: String) -> Result<()> {
    step(dir, State::Failed, Some(reason), &[Some(State::Queued), Some(State::Running), None])
}

/// The agent puts back in the queue a run whose trainer died without an end state; it resumes from last.ckpt.
pub fn requeue(dir: &Path, reason: String) -> Result<()> {
    step(dir, State::Queued, Some(reason), &[Some(State::Queued), Some(State::Running), None])
}

/// `runs resume`: a stopped or failed run goes back to the queue, keeping its checkpoints.
pub fn resume(dir: &Path) -> Result<()> {
    let id = run_id(dir);
    match Status::load(dir)?.state {
        State::Stopped | State::Failed => {}
        State::Finished => bail!("run {id} is finished; use `runs restart {id}` to train it again"),
        state @ (State::Queued | State::Running) => bail!("run {id} is already {state}"),
    }
    crate::atomic::remove_if_present(&dir.join(AGENT_RECORD_FILE))?;
    step(dir, State::Queued, Some("resumed by user".into()), &[Some(State::Stopped), Some(State::Failed)])
}

/// `runs restart`: any run that is not running goes back to the queue from scratch.
pub fn restart(dir: &Path) -> Result<()> {
    if Status::load(dir)?.state == State::Running {
        bail!("run {} is running; stop it first", run_id(dir));
    }
    for name in [METRICS_FILE, "last.ckpt", "best.safetensors", RESULT_FILE, AGENT_RECORD_FILE] {
        crate::atomic::remove_if_present(&dir.join(name))?;
    }
    let mut status = Status::new(State::Queued);
    status.reason = Some("restarted by user".into());
    write(dir, &status)
}

/// The trainer's status, kept in memory for the life of the process and written at each step.
#[derive(Debug)]
pub struct Training {
    dir: PathBuf,
    status: Status,
}

impl Training {
    /// A trainer (this process) takes the run: "running" with its pid, whatever the file said. Nothing is
    /// written until `start`.
    pub fn new(dir: &Path) -> Training {
        let mut status = Status::new(State::Running);
        status.pid = Some(std::process::id());
        Training { dir: dir.to_path_buf(), status }
    }

    pub fn start(&self) -> Result<()> {
        write(&self.dir, &self.status)
    }

    /// After each epoch (and once a resumed run has loaded its checkpoint).
    pub fn progress(&mut self, epoch: u32, best_epoch: Option<u32>, best_val_loss: Option<f64>) -> Result<()> {
        self.running("record progress")?;
        self.status.epoch = epoch;
        self.status.best_epoch = best_epoch;
        self.status.best_val_loss = best_val_loss;
        write(&self.dir, &self.status)
    }

    pub fn finish(&mut self) -> Result<()> {
        self.end(State::Finished, None)
    }

    pub fn stop(&mut self, reason: &str) -> Result<()> {
        self.end(State::Stopped, Some(reason.into()))
    }

    pub fn fail(&mut self, reason: String) -> Result<()> {
        self.end(State::Failed, Some(reason))
    }

    fn end(&mut self, state: State, reason: Option<String>) -> Result<()> {
        self.running(&format!("become {state}"))?;
        self.status.state = state;
        self.status.reason = reason;
        write(&self.dir, &self.status)
    }

    fn running(&self, what: &str) -> Result<()> {
        if self.status.state != State::Running {
            bail!("run {} is {}: its trainer cannot {what}", run_id(&self.dir), self.status.state);
        }
        Ok(())
    }
}

/// Moves the run in `dir` to `to`, keeping its progress fields, if its state on disk is one of `from`
/// (None: status.json is missing or unreadable).
fn step(dir: &Path, to: State, reason: Option<String>, from: &[Option<State>]) -> Result<()> {
    let current = Status::load(dir).ok();
    let was = current.as_ref().map(|s| s.state);
    if !from.contains(&was) {
        let was = was.map_or("without a readable status", State::as_str);
        bail!("run {} is {was}: it cannot become {to}", run_id(dir));
    }
    let mut status = current.unwrap_or_else(|| Status::new(to));
    status.state = to;
    status.reason = reason;
    if to != State::Running {
        status.pid = None;
    }
    write(dir, &status)
}

/// Replaces status.json atomically, stamped with the time of the change.
pub(super) fn write(dir: &Path, status: &Status) -> Result<()> {
    let mut status = status.clone();
    status.updated = now_rfc3339();
    let path = dir.join(STATUS_FILE);
    crate::atomic::write(&path, &serde_json::to_vec_pretty(&status)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn run_id(dir: &Path) -> String {
    dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(state: Option<State>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(state) = state {
            write(dir.path(), &Status::new(state)).unwrap();
        }
        dir
    }

    fn state_of(dir: &tempfile::TempDir) -> State {
        Status::load(dir.path()).unwrap().state
    }

    /// Every agent-side step from every state: allowed ones write the new state, refused ones leave the
    /// file as it was and name both states.
    #[test]
    fn each_step_is_allowed_only_from_its_states() {
        type Step = fn(&Path) -> Result<()>;
        let steps: [(&str, Step, State, &[State]); 5] = [
            ("launch", launch, State::Running, &[State::Queued]),
            ("stop", |d| stop(d, "stopped by user"), State::Stopped, &[State::Queued, State::Running]),
            ("fail", |d| fail(d, "no GPU".into()), State::Failed, &[State::Queued, State::Running]),
            ("requeue", |d| requeue(d, "died".into()), State::Queued, &[State::Queued, State::Running]),
            ("resume", resume, State::Queued, &[State::Stopped, State::Failed]),
        ];
        for (name, step, to, allowed) in steps {
            for from in State::ALL {
                let dir = run_in(Some(from));
                let before = std::fs::read(dir.path().join(STATUS_FILE)).unwrap();
                match step(dir.path()) {
                    Ok(()) => {
                        assert!(allowed.contains(&from), "{name} from {from} was allowed");
                        assert_eq!(state_of(&dir), to, "{name} from {from}");
                    }
                    Err(e) => {
                        assert!(!allowed.contains(&from), "{name} from {from} was refused: {e}");
                        assert!(e.to_string().contains(from.as_str()), "{name} from {from}: {e}");
                        assert_eq!(std::fs::read(dir.path().join(STATUS_FILE)).unwrap(), before, "{name} from {from}");
                    }
                }
            }
        }
    }

    #[test]
    fn enqueue_writes_a_new_run_once() {
        let dir = run_in(None);
        enqueue(dir.path()).unwrap();
        assert_eq!(state_of(&dir), State::Queued);
        assert!(enqueue(dir.path()).unwrap_err().to_string().contains("only once"));
    }

    #[test]
    fn the_agent_replaces_an_unreadable_status_but_the_user_steps_need_one() {
        let dir = run_in(None);
        std::fs::write(dir.path().join(STATUS_FILE), "{not json").unwrap();
        assert!(resume(dir.path()).is_err());
        assert!(restart(dir.path()).is_err());
        assert!(launch(dir.path()).unwrap_err().to_string().contains("without a readable status"));
        stop(dir.path(), "stopped by user").unwrap();
        assert_eq!(state_of(&dir), State::Stopped);
    }

    #[test]
    fn restart_refuses_a_running_run_and_starts_the_others_over() {
        let dir = run_in(Some(State::Running));
        assert!(restart(dir.path()).unwrap_err().to_string().contains("stop it first"));
        let mut status = Status::new(State::Finished);
        status.epoch = 7;
        write(dir.path(), &status).unwrap();
        std::fs::write(dir.path().join(RESULT_FILE), "{}").unwrap();
        restart(dir.path()).unwrap();
        let status = Status::load(dir.path()).unwrap();
        assert_eq!((status.state, status.epoch), (State::Queued, 0));
        assert!(!dir.path().join(RESULT_FILE).exists());
    }

    #[test]
    fn the_agent_keeps_progress_and_clears_the_pid() {
        let dir = run_in(None);
        let mut status = Status::new(State::Running);
        (status.epoch, status.pid) = (4, Some(42));
        write(dir.path(), &status).unwrap();
        requeue(dir.path(), "requeued: trainer died".into()).unwrap();
        let status = Status::load(dir.path()).unwrap();
        assert_eq!((status.state, status.epoch, status.pid), (State::Queued, 4, None));
        assert_eq!(status.reason.as_deref(), Some("requeued: trainer died"));
    }

    #[test]
    fn a_trainer_ends_once_and_records_progress_only_while_running() {
        let dir = run_in(Some(State::Stopped));
        let mut training = Training::new(dir.path());
        training.start().unwrap();
        let status = Status::load(dir.path()).unwrap();
        assert_eq!((status.state, status.pid), (State::Running, Some(std::process::id())));
        training.progress(2, Some(1), Some(0.5)).unwrap();
        assert_eq!(Status::load(dir.path()).unwrap().best_epoch, Some(1));
        training.finish().unwrap();
        assert_eq!(state_of(&dir), State::Finished);
        let err = training.fail("late".into()).unwrap_err().to_string();
        assert!(err.contains("is finished") && err.contains("become failed"), "{err}");
        assert!(training.progress(3, None, None).is_err());
        assert_eq!(state_of(&dir), State::Finished);
    }

    /// Source files (their code outside `#[cfg(test)]` modules) that write status.json other than here:
    /// a `.save(` of something named status, a new Status, or the file's name next to a write.
    fn status_writes(path: &str, text: &str) -> Vec<String> {
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or(text);
        code.lines()
            .enumerate()
            .filter(|(_, line)| {
                let lower = line.to_lowercase();
                (lower.contains(".save(") && lower.contains("status"))
                    || line.contains("Status::new(")
                    || ((line.contains("STATUS_FILE") || line.contains("\"status.json\"")) && lower.contains("write"))
            })
            .map(|(n, line)| format!("{path}:{}: {}", n + 1, line.trim()))
            .collect()
    }

    #[test]
    fn the_status_write_finder_sees_each_kind_of_write() {
        let code = "fn a() {\n    status.save(&dir)?;\n    Status::new(State::Queued);\n    \
                    atomic::write(&dir.join(STATUS_FILE), b\"x\");\n    rec.save(&dir)?;\n}\n\
                    #[cfg(test)]\nmod tests {\n    status.save(&dir)?;\n}\n";
        let found = status_writes("x.rs", code);
        assert_eq!(found.iter().map(|f| &f[..6]).collect::<Vec<_>>(), ["x.rs:2", "x.rs:3", "x.rs:4"], "{found:?}");
    }

    #[test]
    fn status_json_is_written_only_by_the_lifecycle() {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(path);
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        walk(&src, &mut files);
        assert!(files.len() > 50, "found {} source files under {}", files.len(), src.display());
        let mut found = Vec::new();
        let test_only =
            |f: &Path| f.ends_with("tests.rs") || f.strip_prefix(&src).unwrap().iter().any(|c| c == "tests");
        for file in files.iter().filter(|f| !f.ends_with("runs/lifecycle.rs") && !test_only(f)) {
            let text = std::fs::read_to_string(file).unwrap();
            found.extend(status_writes(&file.strip_prefix(&src).unwrap().display().to_string(), &text));
        }
        assert!(found.is_empty(), "status.json written outside runs::lifecycle:\n{}", found.join("\n"));
    }
}
