//! `medxfer agent`: one per home (flock on `<home>/agent/agent.lock`). Owns the queue on disk, launches
//! queued runs into free slots, follows them, re-adopts live runs after a restart and requeues dead ones.

use crate::config::Config;
use crate::gpu::Wanted;
use crate::home::Home;
use crate::process;
use crate::runs::lifecycle;
use crate::runs::record::{State, Status, now_rfc3339};
use crate::runs::store;
use crate::sched::control::{self, AgentRecord};
use crate::sched::proc;
use crate::sched::slots::{Slot, Slots};
use crate::sched::slurm::SlurmRuns;
use crate::sched::socket::{self, AgentStatus, Reply, Request, RunningRun, SlurmRun};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Overrides the program launched per run (`PROGRAM train --run DIR`); default: this executable.
pub const TRAIN_PROGRAM_ENV: &str = "MEDXFER_TRAIN_PROGRAM";
pub const PAUSED_FILE: &str = "paused";
const TICK: Duration = Duration::from_millis(200);
/// After SIGTERM, a run that has not exited by then gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// The longest a request waits for trainers that wrote their final state to exit.
const SETTLE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq)]
enum StopKind {
    Term,
    Kill,
}

struct Active {
    dir: PathBuf,
    pid: u32,
    start_time: u64,
    slot: Slot,
    /// Present for runs this agent launched; adopted runs are followed through /proc.
    child: Option<Child>,
    stop: Option<(StopKind, Instant)>,
}

pub struct Agent {
    home: Home,
    program: PathBuf,
    slots: Slots,
    threads_per_run: usize,
    active: BTreeMap<String, Active>,
    slurm: SlurmRuns,
}

/// Holds `<home>/agent/agent.lock` for the life of the agent.
pub fn lock(home: &Home) -> Result<File> {
    use std::os::fd::AsRawFd;
    let path = home.agent_dir.join(socket::LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!("an agent (pid {}) already runs for {} (lock {})", holder.trim(), home.root.display(), path.display());
    }
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Runs the agent in the foreground until a shutdown request.
pub fn run(home: Home, config: &Config) -> Result<()> {
    let _lock = lock(&home)?;
    let sock = socket::socket_path(&home);
    let listener = socket::bind(&sock)?;
    let program = match std::env::var_os(TRAIN_PROGRAM_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => std::env::current_exe().context("cannot find the medxfer executable to launch runs")?,
    };
    let gpu_count = crate::gpu::nvml_gpus().len() as u32;
    let s = &config.scheduler;
    let threads_per_run = match s.threads_per_run {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).div_ceil(s.cpu_slots.max(1)),
        n => n,
    };
    let mut agent = Agent {
        home,
        program,
        slots: Slots::new(s.cpu_slots.max(1), s.gpu_slots_per_device.max(1), s.min_free_gpu_mib, gpu_count),
        threads_per_run,
        active: BTreeMap::new(),
        slurm: SlurmRuns::new(config.slurm.clone()),
    };
    agent.adopt();
    tracing::info!(pid = std::process::id(), socket = %sock.display(), "agent listening");
    eprintln!("medxfer agent {} listening on {}", std::process::id(), sock.display());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || socket::serve(listener, tx));
    let mut next_tick = Instant::now();
    loop {
        match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok((req, mut stream)) => {
                let shutdown = req == Request::Shutdown;
                let reply = agent.handle(req);
                socket::send_reply(&mut stream, &reply);
                if shutdown {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the agent's socket listener stopped"),
        }
        if Instant::now() >= next_tick {
            agent.tick();
            next_tick = Instant::now() + TICK;
        }
    }
    let _ = std::fs::remove_file(&sock);
    tracing::info!("agent shut down; {} run(s) keep running and will be re-adopted", agent.active.len());
    Ok(())
}

impl Agent {
    fn paused_file(&self) -> PathBuf {
        self.home.agent_dir.join(PAUSED_FILE)
    }

    fn paused(&self) -> bool {
        self.paused_file().exists()
    }

    /// Takes over runs a previous agent left "running": live ones (same pid and start time) are followed,
    /// dead ones are requeued.
    fn adopt(&mut self) {
        for (id, status) in store::statuses(&self.home.runs) {
            if status.state != State::Running {
                continue;
            }
            let dir = self.home.runs.join(&id);
            if control::on_slurm(&dir) && self.slurm.adopt(&id, dir.clone()) {
                tracing::info!(run = %id, "following a Slurm job again");
                continue;
            }
            match AgentRecord::load(&dir) {
                Some(rec) if process::is_same_live_process(rec.pid, rec.start_time) => {
                    tracing::info!(run = %id, pid = rec.pid, "re-adopted a live run");
                    self.slots.take(rec.slot);
                    let active = Active {
                        dir,
                        pid: rec.pid,
                        start_time: rec.start_time,
                        slot: rec.slot,
                        child: None,
                        stop: None,
                    };
                    self.active.insert(id, active);
                }
                _ => self.log_result(
                    &id,
                    control::after_death(&dir, "died while no agent was watching", control::local_attempts(&dir)),
                ),
            }
        }
    }

    fn tick(&mut self) {
        self.follow();
        self.slurm.follow();
        if !self.paused() {
            self.launch_queued();
        }
    }

    /// Notices runs that ended, and escalates stops that take too long.
    fn follow(&mut self) {
        let mut ended = Vec::new();
        for (id, a) in self.active.iter_mut() {
            let exit = match a.child.as_mut() {
                Some(child) => match child.try_wait() {
                    Ok(Some(status)) => Some(describe_exit(status)),
                    Ok(None) => None,
                    Err(e) => Some(format!("could not be followed ({e})")),
                },
                None => (!process::is_same_live_process(a.pid, a.start_time)).then(|| "exited".to_string()),
            };
            match exit {
                Some(how) => ended.push((id.clone(), how)),
                None => {
                    if let Some((StopKind::Term, since)) = a.stop
                        && since.elapsed() > STOP_GRACE
                    {
                        let _ = process::signal_group(a.pid, libc::SIGKILL);
                        a.stop = Some((StopKind::Kill, Instant::now()));
                    }
                }
            }
        }
        for (id, how) in ended {
            if let Some(a) = self.active.remove(&id) {
                self.slots.release(a.slot);
                self.on_exit(&id, &a, &how);
            }
        }
    }

    fn on_exit(&self, id: &str, a: &Active, how: &str) {
        let state = Status::load(&a.dir).map(|s| s.state);
        let outcome = match (state, a.stop) {
            (Ok(s), _) if s.is_terminal() || s == State::Stopped => Ok(s),
            (_, Some((kind, _))) => {
                let why = if kind == StopKind::Kill { "killed by user" } else { "stopped by user" };
                lifecycle::stop(&a.dir, why).map(|_| State::Stopped)
            }
            _ => control::after_death(&a.dir, how, control::local_attempts(&a.dir)),
        };
        tracing::info!(run = %id, how, "run ended");
        self.log_result(id, outcome);
    }

    fn log_result(&self, id: &str, outcome: Result<State>) {
        match outcome {
            Ok(state) => tracing::info!(run = %id, state = state.as_str(), "run state"),
            Err(e) => tracing::error!(run = %id, "{}", crate::error::one_sentence(&e)),
        }
    }

    fn launch_queued(&mut self) {
        let mut gpus: Option<Vec<crate::gpu::Gpu>> = None;
        let mut to_slurm = Vec::new();
        for id in store::queued(&self.home.runs) {
            if self.active.contains_key(&id) || self.slurm.contains(&id) {
                continue;
            }
            let dir = self.home.runs.join(&id);
            if control::on_slurm(&dir) {
                to_slurm.push((id, dir));
                continue;
            }
            let wanted = control::wanted_device(&dir)
                .and_then(|wanted| wanted.refusal(self.slots.gpu_count).map_or(Ok(wanted), Err));
            let slot = match wanted {
                Err(why) => {
                    self.log_result(&id, lifecycle::fail(&dir, why).map(|_| State::Failed));
                    continue;
                }
                Ok(Wanted::Cpu) => self.slots.free_cpu(),
                Ok(Wanted::AnyGpu) => self.slots.free_gpu(gpus.get_or_insert_with(crate::gpu::nvml_gpus), None),
                Ok(Wanted::Gpu(n)) => self.slots.free_gpu(gpus.get_or_insert_with(crate::gpu::nvml_gpus), Some(n)),
            };
            if let Some(slot) = slot {
                let outcome = self.launch(&id, dir, slot);
                self.log_result(&id, outcome);
                if let Some(g) = gpus.as_mut().and_then(|g| g.iter_mut().find(|g| Slot::Gpu(g.index) == slot)) {
                    g.memory_free_mib = 0; // memory use of the new run is unknown until it allocates: one admission per tick
                }
            }
        }
        if let Err(e) = self.slurm.submit_queued(&to_slurm, &self.home.agent_dir, &self.program) {
            tracing::error!("{}", crate::error::one_sentence(&e));
        }
    }

    fn launch(&mut self, id: &str, dir: PathBuf, slot: Slot) -> Result<State> {
        let attempts = AgentRecord::load(&dir).map(|r| r.attempts).unwrap_or(0) + 1;
        lifecycle::launch(&dir)?;
        let launch = proc::Launch {
            program: &self.program,
            run_dir: &dir,
            log: &dir.join(crate::runs::record::LOG_FILE),
            cuda_visible_devices: slot.cuda_visible_devices(),
            threads: self.threads_per_run,
        };
        let child = match proc::spawn_train(&launch) {
            Ok(c) => c,
            Err(e) => {
                lifecycle::fail(&dir, crate::error::one_sentence(&e))?;
                return Err(e);
            }
        };
        let pid = child.id();
        let start_time = process::start_time(pid).unwrap_or(0);
        AgentRecord { pid, start_time, slot, attempts, launched: now_rfc3339() }.save(&dir)?;
        self.slots.take(slot);
        tracing::info!(run = %id, pid, ?slot, attempts, "launched");
        self.active.insert(id.to_string(), Active { dir, pid, start_time, slot, child: Some(child), stop: None });
        Ok(State::Running)
    }

    fn handle(&mut self, req: Request) -> Reply {
        tracing::info!(?req, "request");
        self.settle_exiting();
        let runs = self.home.runs.clone();
        let done = match req {
            Request::Status => return Reply { ok: true, error: None, status: Some(self.status()) },
            Request::EnqueueNotify | Request::Shutdown => Ok(()),
            Request::Stop { run } => self.stop(&run, StopKind::Term),
            Request::Kill { run } => self.stop(&run, StopKind::Kill),
            Request::Requeue { run } => self.not_active(&run).and_then(|_| control::requeue(&runs, &run)),
            Request::Restart { run } => self.not_active(&run).and_then(|_| control::restart(&runs, &run)),
            Request::Rm { run, force } => self.not_active(&run).and_then(|_| control::remove(&runs, &run, force)),
            Request::Pause => crate::atomic::write(&self.paused_file(), b"paused\n").context("cannot pause the queue"),
            Request::Resume => crate::atomic::remove_if_present(&self.paused_file()),
        };
        match done {
            Ok(()) => {
                self.tick();
                Reply::ok()
            }
            Err(e) => Reply::error(crate::error::one_sentence(&e)),
        }
    }

    /// A trainer that wrote its final state is exiting: wait for it (up to SETTLE), so that a request made
    /// right after a run ended (`runs resume` of a failed run, a status check) sees the run as ended.
    fn settle_exiting(&mut self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            self.follow();
            let exiting = self
                .active
                .values()
                .any(|a| Status::load(&a.dir).is_ok_and(|s| s.state.is_terminal() || s.state == State::Stopped));
            if !exiting || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn not_active(&self, run: &str) -> Result<()> {
        if self.active.contains_key(run) || self.slurm.contains(run) {
            bail!("run {run} is running; stop it first");
        }
        Ok(())
    }

    fn stop(&mut self, run: &str, kind: StopKind) -> Result<()> {
        if let Some(a) = self.active.get_mut(run) {
            let signal = if kind == StopKind::Kill { libc::SIGKILL } else { libc::SIGTERM };
            process::signal_group(a.pid, signal).with_context(|| format!("cannot signal run {run} (pid {})", a.pid))?;
            a.stop = Some((kind, Instant::now()));
            return Ok(());
        }
        if self.slurm.stop(run)? {
            return Ok(());
        }
        let dir = control::run_dir(&self.home.runs, run)?;
        match Status::load(&dir)?.state {
            State::Queued => lifecycle::stop(&dir, "stopped before it started"),
            other => bail!("run {run} is {other}, not queued or running"),
        }
    }

    fn status(&self) -> AgentStatus {
        AgentStatus {
            pid: std::process::id(),
            paused: self.paused(),
            cpu_slots: self.slots.cpu_slots,
            gpus: self.slots.gpu_count,
            gpu_slots_per_device: self.slots.per_gpu,
            running: self
                .active
                .iter()
                .map(|(id, a)| RunningRun { id: id.clone(), pid: a.pid, slot: a.slot, adopted: a.child.is_none() })
                .collect(),
            queued: store::queued(&self.home.runs)
                .into_iter()
                .filter(|id| !self.active.contains_key(id) && !self.slurm.contains(id))
                .collect(),
            slurm: self.slurm.jobs().into_iter().map(|(id, job_id)| SlurmRun { id, job_id }).collect(),
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "exited".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::under(dir.path()).unwrap();
        home.ensure().unwrap();
        let held = lock(&home).unwrap();
        let err = lock(&home).unwrap_err().to_string();
        assert!(err.contains("already runs") && err.contains(&std::process::id().to_string()), "{err}");
        drop(held);
        lock(&home).unwrap();
    }
}
