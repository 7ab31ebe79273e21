//! Fault injection across the whole system with the real binary: a sweep of real-trainer runs while run
//! processes and the agent are SIGKILLed, metrics lines are torn as a crash mid-write would, and the TUI
//! gets SIGHUP; network faults during `zoo pull`; bad input; cheap security checks; a full disk.
//!
//! The short form runs under `cargo test`; MEDXFER_CHAOS_LONG=1 (`make chaos`) selects the long form.
//! MEDXFER_CHAOS_SEED=N replays the fault schedule of a failing run (the seed is printed).

mod zoo_server;

use medxfer::process;
use medxfer::runs::record::{MetricLine, RunResult, Status};
use medxfer::sched::control::{AgentRecord, MAX_ATTEMPTS};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn long_form() -> bool {
    std::env::var("MEDXFER_CHAOS_LONG").is_ok_and(|v| v == "1")
}

/// splitmix64: a seeded schedule that MEDXFER_CHAOS_SEED replays.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = match std::env::var("MEDXFER_CHAOS_SEED") {
            Ok(s) => s.trim().parse().expect("MEDXFER_CHAOS_SEED must be an unsigned integer"),
            Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        };
        eprintln!("{test}: chaos seed {seed} (replay with MEDXFER_CHAOS_SEED={seed})");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct TestHome {
    dir: tempfile::TempDir,
}

impl TestHome {
    fn new(cpu_slots: usize) -> TestHome {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), format!("[scheduler]\ncpu_slots = {cpu_slots}\n")).unwrap();
        TestHome { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, id: &str) -> PathBuf {
        self.path("runs").join(id)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
        c.args(args).env("MEDXFER_HOME", self.dir.path()).env_remove("MEDXFER_TRAIN_PROGRAM");
        c.env_remove("MEDXFER_ZOO_MIRROR").env_remove("MEDXFER_OFFLINE");
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.output(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    }

    fn run_ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.path("runs")) else { return Vec::new() };
        let mut ids: Vec<String> =
            entries.map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| !n.starts_with('.')).collect();
        ids.sort();
        ids
    }

    fn status(&self, id: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.run(id).join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn state(&self, id: &str) -> String {
        self.status(id).and_then(|s| s["state"].as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The agent's pid from its lock file, when that process is alive and is an agent.
    fn agent_pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.path("agent/agent.lock")).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        (args.get(1) == Some(&b"agent".as_slice()) && args.len() <= 3 && process::start_time(pid).is_some())
            .then_some(pid)
    }

    fn agent_status(&self) -> Value {
        serde_json::from_slice(&self.ok(&["agent", "status", "--json"]).stdout).unwrap()
    }

    /// A live trainer process of run `id` with its agent record.
    fn live_run(&self, id: &str) -> Option<AgentRecord> {
        let rec = AgentRecord::load(&self.run(id))?;
        process::is_same_live_process(rec.pid, rec.start_time).then_some(rec)
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        if let Some(pid) = self.agent_pid() {
            // SAFETY: kill(2) on the agent this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        for id in self.run_ids() {
            if let Some(rec) = self.live_run(&id) {
                let _ = process::signal_group(rec.pid, libc::SIGKILL);
            }
        }
    }
}

/// Counts of faults injected and checks made, printed as a table at the end of each test.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, u32>);

impl Tally {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }

    fn print(&self, title: &str) {
        eprintln!("{title}");
        eprintln!("  | {:<44} | {:>5} |", "fault / check", "count");
        eprintln!("  |{:-<46}|{:-<7}|", "", "");
        for (what, n) in &self.0 {
            eprintln!("  | {what:<44} | {n:>5} |");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// 1. The chaos sweep
// ---------------------------------------------------------------------------------------------------------

/// Small enough that a run takes seconds on a loaded 2-core machine, large enough for one step line per
/// epoch (45 training images at batch size 4 = 11 steps) so that torn lines hit step and epoch lines.
const SWEEP_SETTINGS: [&str; 7] =
    ["epochs=2", "image_size=32", "batch_size=4", "threads=1", "anno_percent=15", "tta=false", "workers=1"];

/// The short form gives every trial the same seed, so that one undisturbed run is the reference for all;
/// the long form keeps one seed per trial and runs as many references.
fn sweep_command(home: &TestHome, trials: u32) -> Command {
    let mut c = home.cmd(&["sweep", "--dataset", "demo-cls", "--models", "random", "--wait"]);
    c.args(["--trials", &trials.to_string()]);
    if !long_form() {
        c.args(["--set", "seed=7"]);
    }
    for s in SWEEP_SETTINGS {
        c.args(["--set", s]);
    }
    c
}

/// The epoch recorded in a checkpoint's safetensors metadata (0 without a checkpoint), read from the
/// header alone.
fn checkpoint_epoch(dir: &Path) -> u32 {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(dir.join("last.ckpt")) else { return 0 };
    let mut len = [0u8; 8];
    f.read_exact(&mut len).unwrap();
    let mut header = vec![0u8; u64::from_le_bytes(len) as usize];
    f.read_exact(&mut header).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["__metadata__"]["epoch"].as_str().unwrap().parse().unwrap()
}

/// Tears metrics.jsonl as a crash in the middle of a write would: the last line is cut mid-line when the
/// checkpoint does not cover it yet (it was being written when the process died), otherwise half of a next
/// line is appended. Returns what was done.
fn tear_metrics(dir: &Path, rng: &mut Rng) -> Option<&'static str> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).ok()?;
    let last = text.lines().last()?;
    let covered = checkpoint_epoch(dir);
    let last_epoch = serde_json::from_str::<MetricLine>(last).map(|m| m.epoch).unwrap_or(u32::MAX);
    let body_len = text.len() - last.len() - usize::from(text.ends_with('\n'));
    let cut = 1 + rng.below(last.len() as u64 - 1) as usize;
    if last_epoch > covered {
        std::fs::write(&path, &text[..body_len + cut]).unwrap();
        Some("metrics line cut mid-line")
    } else {
        let mut torn = text.clone();
        if !torn.ends_with('\n') {
            torn.push('\n');
        }
        torn.push_str(&last[..cut]);
        std::fs::write(&path, torn).unwrap();
        Some("half a metrics line appended")
    }
}

/// A TUI (`medxfer` with no arguments) in a tmux server of our own.
struct Tui {
    socket: String,
    pid_file: PathBuf,
    started: u32,
}

impl Tui {
    fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().unwrap()
    }

    fn start(&mut self, home: &TestHome) {
        let _ = std::fs::remove_file(&self.pid_file);
        let bin = env!("CARGO_BIN_EXE_medxfer");
        let script = format!("echo $$ > '{}'; exec '{bin}'", self.pid_file.display());
        let env = format!("MEDXFER_HOME={}", home.root().display());
        self.started += 1;
        let name = format!("tui{}", self.started);
        let out =
            self.tmux(&["new-session", "-d", "-s", &name, "-x", "100", "-y", "30", "-e", &env, "sh", "-c", &script]);
        assert!(out.status.success(), "tmux: {}", stderr(&out));
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn chaos_sweep_loses_no_run_no_epoch_and_no_result() {
    let started = Instant::now();
    let mut rng = Rng::from_env("chaos_sweep");
    let trials: u32 = if long_form() { 12 } else { 6 };
    let chaos_window = Duration::from_secs(if long_form() { 600 } else { 100 });
    let home = TestHome::new(2);
    let mut tally = Tally::default();

    let mut waiter =
        sweep_command(&home, trials).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("sweep --wait");
    wait_until("the sweep to write its runs", 60, || home.run_ids().len() == trials as usize);
    let ids = home.run_ids();
    let mut tui = Tui::available().then(|| Tui {
        socket: format!("medxfer-chaos-{}", std::process::id()),
        pid_file: home.path("tui.pid"),
        started: 0,
    });
    if tui.is_none() {
        eprintln!("chaos_sweep: tmux not found: the TUI SIGHUP fault is skipped");
    }

    let all_ended =
        |home: &TestHome| ids.iter().all(|id| matches!(home.state(id).as_str(), "finished" | "failed" | "stopped"));
    let chaos_until = Instant::now() + chaos_window;
    let mut exit = None;
    while Instant::now() < chaos_until && !all_ended(&home) {
        // A pseudo-random moment: wait, noticing the end of the sweep meanwhile.
        let pause_until = Instant::now() + rng.millis(300, 2500);
        while Instant::now() < pause_until && !all_ended(&home) {
            std::thread::sleep(Duration::from_millis(25));
        }
        let running: Vec<(String, AgentRecord)> =
            ids.iter().filter_map(|id| home.live_run(id).map(|r| (id.clone(), r))).collect();
        // Each run may die at most MAX_ATTEMPTS - 1 times: the agent marks a crash-looping run failed.
        let killable: Vec<&(String, AgentRecord)> = running.iter().filter(|(_, r)| r.attempts < MAX_ATTEMPTS).collect();
        match rng.below(10) {
            0..=2 if !killable.is_empty() => {
                // Mostly runs past their first checkpoint, so that kills test resuming; now and then a
                // run that is still starting.
                // Waits (polling, at most 20 s) for a live run that has written last.ckpt.
                let wait_until = Instant::now() + Duration::from_secs(if rng.below(4) == 0 { 0 } else { 20 });
                let mut from = loop {
                    let found: Vec<(String, AgentRecord)> = ids
                        .iter()
                        .filter_map(|id| home.live_run(id).map(|r| (id.clone(), r)))
                        .filter(|(id, r)| r.attempts < MAX_ATTEMPTS && home.run(id).join("last.ckpt").exists())
                        .collect();
                    if !found.is_empty() || Instant::now() >= wait_until || all_ended(&home) {
                        break found;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                if from.is_empty() {
                    from = killable.iter().map(|r| (*r).clone()).collect();
                }
                if let Some((id, rec)) = from.get(rng.below(from.len().max(1) as u64) as usize)
                    && process::signal_group(rec.pid, libc::SIGKILL).is_ok()
                {
                    eprintln!("chaos: SIGKILL run {id} (pid {}, attempt {})", rec.pid, rec.attempts);
                    tally.add("SIGKILL run process");
                }
            }
            3..=4 => {
                if let Some(pid) = home.agent_pid() {
                    // SAFETY: kill(2) on the agent of this test's home.
                    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
                    wait_until("the agent to die", 10, || process::start_time(pid).is_none());
                    eprintln!("chaos: SIGKILL agent {pid}");
                    tally.add("SIGKILL agent");
                    std::thread::sleep(rng.millis(0, 1500));
                    let out = home.output(&["agent", "start"]);
                    assert!(out.status.success(), "agent start after SIGKILL: {}", stderr(&out));
                    tally.add("agent restarted");
                }
            }
            5..=8 if killable.iter().any(|(id, _)| has_metrics(&home.run(id))) => {
                // A crash mid-write: the agent and the run die together; the queue is held (paused file)
                // while the metrics file is torn, so that no new trainer starts on it meanwhile. Runs that
                // have written metrics lines are preferred.
                let (id, rec) = pick(&mut rng, &killable, |id| has_metrics(&home.run(id)));
                let paused = home.path("agent/paused");
                std::fs::write(&paused, b"paused\n").unwrap();
                if let Some(pid) = home.agent_pid() {
                    // SAFETY: kill(2) on the agent of this test's home.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    wait_until("the agent to die", 10, || process::start_time(pid).is_none());
                    tally.add("SIGKILL agent");
                }
                if process::signal_group(rec.pid, libc::SIGKILL).is_ok() {
                    tally.add("SIGKILL run process");
                }
                wait_until("the run to die", 10, || !process::is_same_live_process(rec.pid, rec.start_time));
                if home.state(id) != "finished"
                    && let Some(how) = tear_metrics(&home.run(id), &mut rng)
                {
                    eprintln!("chaos: crash of run {id} mid-write: {how}");
                    tally.add(how);
                }
                std::fs::remove_file(&paused).unwrap();
                let out = home.output(&["agent", "start"]);
                assert!(out.status.success(), "agent start after a crash: {}", stderr(&out));
                tally.add("agent restarted");
            }
            _ => {
                if let Some(tui) = tui.as_mut() {
                    match tui.pid() {
                        Some(pid) if process::start_time(pid).is_some() => {
                            // SAFETY: kill(2) on the TUI this test started.
                            unsafe { libc::kill(pid as i32, libc::SIGHUP) };
                            wait_until("the TUI to exit on SIGHUP", 15, || process::start_time(pid).is_none());
                            eprintln!("chaos: SIGHUP TUI {pid}: it exited");
                            tally.add("SIGHUP TUI under tmux");
                        }
                        _ => tui.start(&home),
                    }
                }
            }
        }
        if let Ok(Some(status)) = waiter.try_wait() {
            exit = Some(status);
            break;
        }
    }
    eprintln!("chaos: faults stop after {:.0} s", started.elapsed().as_secs_f64());
    let deadline = Instant::now() + Duration::from_secs(if long_form() { 900 } else { 300 });
    let status = loop {
        if let Some(s) = exit.or_else(|| waiter.try_wait().unwrap()) {
            break s;
        }
        assert!(Instant::now() < deadline, "the sweep did not end; states {:?}", states(&home, &ids));
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut waiter_err = String::new();
    std::io::Read::read_to_string(waiter.stderr.as_mut().unwrap(), &mut waiter_err).unwrap();
    assert!(status.success(), "sweep --wait: {waiter_err}\nstates {:?}", states(&home, &ids));
    let chaos_s = started.elapsed().as_secs_f64();

    // Every run finished, every epoch once, no torn line left, no temporary left behind.
    let mut results = BTreeMap::new();
    for id in &ids {
        let dir = home.run(id);
        assert_eq!(home.state(id), "finished", "{id}: {:?}", home.status(id));
        let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
        let lines: Vec<MetricLine> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{id}: a torn line survived: {l:?} ({e})")))
            .collect();
        let epochs: Vec<u32> = lines.iter().filter(|m| m.kind == "epoch").map(|m| m.epoch).collect();
        assert_eq!(epochs, [1, 2], "{id}: epoch lines in metrics.jsonl");
        let leftovers: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{id}: temporaries left by killed writers: {leftovers:?}");
        let result = RunResult::load(&dir).unwrap();
        results.insert(result.trial, (id.clone(), result));
    }
    for id in &ids {
        let log = std::fs::read_to_string(home.run(id).join("train.log")).unwrap_or_default();
        for (needle, what) in [
            ("resuming after epoch", "resumes from last.ckpt"),
            ("metrics.jsonl lines past epoch", "resumes that dropped torn/extra metrics lines"),
        ] {
            let n = log.matches(needle).count() as u32;
            *tally.0.entry(what).or_default() += n;
        }
    }
    let attempts: u32 = ids.iter().filter_map(|id| AgentRecord::load(&home.run(id))).map(|r| r.attempts).sum();

    // The queue holds nothing stale and nothing is left running.
    let agent = home.agent_status();
    assert_eq!(agent["running"], true, "{agent}");
    assert_eq!(agent["agent"]["running"].as_array().unwrap().len(), 0, "{agent}");
    assert_eq!(agent["agent"]["queued"].as_array().unwrap().len(), 0, "{agent}");
    // A trainer that wrote its final state may still be tearing libtorch down; one still alive 30 s later
    // has outlived its run.
    let settled = Instant::now() + Duration::from_secs(30);
    while ids.iter().any(|id| home.live_run(id).is_some()) && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(100));
    }
    let outliving: Vec<&String> = ids.iter().filter(|id| home.live_run(id).is_some()).collect();
    assert!(outliving.is_empty(), "trainers outlived their runs by 30 s: {outliving:?}");
    home.ok(&["agent", "stop"]);

    // The same sweep undisturbed, in another home: results must be identical (CPU determinism).
    let reference_started = Instant::now();
    let clean = TestHome::new(2);
    let out = sweep_command(&clean, if long_form() { trials } else { 1 }).output().unwrap();
    assert!(out.status.success(), "undisturbed sweep: {}", stderr(&out));
    let reference_s = reference_started.elapsed().as_secs_f64();
    let (mut lost, mut compared) = (0, 0);
    for id in clean.run_ids() {
        let want = RunResult::load(&clean.run(&id)).unwrap();
        for (got_id, got) in results.values().filter(|(_, r)| r.seed == want.seed) {
            let same = (got.mean, &got.per_class, got.epochs_run, got.best_epoch)
                == (want.mean, &want.per_class, want.epochs_run, want.best_epoch);
            compared += 1;
            if !same {
                lost += 1;
                eprintln!(
                    "MISMATCH trial {}: chaos run {got_id}: mean {} {:?} epochs {} best {}\n  train.log:\n{}\n\
                 undisturbed {id}: mean {} {:?} epochs {} best {}",
                    want.trial,
                    got.mean,
                    got.per_class,
                    got.epochs_run,
                    got.best_epoch,
                    std::fs::read_to_string(home.run(got_id).join("train.log")).unwrap_or_default(),
                    want.mean,
                    want.per_class,
                    want.epochs_run,
                    want.best_epoch
                );
            }
        }
    }
    assert_eq!(compared, ids.len(), "every chaos run was compared with an undisturbed one");
    clean.ok(&["agent", "stop"]);
    tally.0.insert("runs completed", ids.len() as u32);
    tally.0.insert("trainer launches (all runs)", attempts);
    tally.0.insert("results differing from the undisturbed run", lost);
    tally.print(&format!(
        "chaos sweep: {} runs, chaos phase {chaos_s:.0} s, undisturbed reference {reference_s:.0} s",
        ids.len()
    ));
    assert_eq!(lost, 0, "results differ from the undisturbed runs with the same seeds (see MISMATCH above)");
}

fn has_metrics(dir: &Path) -> bool {
    std::fs::metadata(dir.join("metrics.jsonl")).is_ok_and(|m| m.len() > 0)
}

/// One of `runs`, from those that satisfy `prefer` when there are any.
fn pick<'a>(
    rng: &mut Rng,
    runs: &[&'a (String, AgentRecord)],
    prefer: impl Fn(&str) -> bool,
) -> &'a (String, AgentRecord) {
    let preferred: Vec<&(String, AgentRecord)> = runs.iter().copied().filter(|(id, _)| prefer(id)).collect();
    let from = if preferred.is_empty() { runs } else { &preferred[..] };
    from[rng.below(from.len() as u64) as usize]
}

/// Each run's state, with the reason and the end of train.log for runs that did not finish.
fn states(home: &TestHome, ids: &[String]) -> Vec<(String, String)> {
    ids.iter()
        .map(|id| {
            let state = home.state(id);
            if state == "finished" {
                return (id.clone(), state);
            }
            let dir = home.run(id);
            let reason = Status::load(&dir).ok().and_then(|s| s.reason).unwrap_or_default();
            let log = std::fs::read_to_string(dir.join("train.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            (id.clone(), format!("{state}: {reason}; log tail (newest first): {tail:?}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// 2. Network faults while pulling several checkpoints
// ---------------------------------------------------------------------------------------------------------

fn zoo_entry(id: &str, sha256: String) -> medxfer::zoo::Entry {
    medxfer::zoo::Entry {
        id: id.into(),
        name: id.into(),
        category: "in-domain".into(),
        dataset: "d".into(),
        objective: "o".into(),
        paper: "p".into(),
        paper_url: "https://arxiv.org/abs/1".into(),
        urls: vec![format!("https://example.org/{id}.pth")],
        file: format!("{id}.pth"),
        recipe: "none".into(),
        credit: "c".into(),
        sha256: Some(sha256),
        manual: false,
        steps: vec![],
    }
}

#[tokio::test]
async fn network_faults_during_pulls_are_retried_resumed_or_refused_never_installed_wrong() {
    use sha2::Digest;
    use zoo_server::{Fault, Server};
    let started = Instant::now();
    let mut rng = Rng::from_env("network_faults");
    let mut tally = Tally::default();
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let home = medxfer::home::Home::under(dir.path()).unwrap();
    home.ensure().unwrap();
    let count = if long_form() { 12 } else { 6 };
    let mut want = BTreeMap::new();
    let entries: Vec<medxfer::zoo::Entry> = (0..count)
        .map(|i| {
            let data = zoo_server::bytes(150_000 + 37_000 * i, 100 + i as u64);
            let id = format!("net{i}");
            server.put(&format!("/{id}/{id}.pth"), data.clone());
            let e = zoo_entry(&id, hex::encode(sha2::Sha256::digest(&data)));
            want.insert(id, data);
            e
        })
        .collect();
    for _ in 0..count * 2 {
        let fault = match rng.below(4) {
            0 => Fault::Cut(1 + rng.below(140_000)),
            1 => Fault::Stall(rng.below(140_000)),
            2 => Fault::Wrong,
            _ => Fault::Status([500, 502, 503][rng.below(3) as usize]),
        };
        tally.add(match fault {
            Fault::Cut(_) => "connection cut mid-file",
            Fault::Stall(_) => "stall (server silent)",
            Fault::Wrong => "wrong bytes",
            Fault::Status(_) => "HTTP 5xx",
        });
        server.fault(fault);
    }
    let mut opts = medxfer::zoo::PullOptions::from_env(&medxfer::config::Config::default()).unwrap();
    opts.mirror = Some(server.base.parse().unwrap());
    opts.offline = false;
    opts.fetch.https_only = false;
    opts.fetch.stall = Duration::from_millis(300);
    opts.fetch.retries = 2;
    opts.fetch.backoff = Duration::from_millis(10);
    opts.concurrency = 2;

    let mut rounds = 0;
    loop {
        rounds += 1;
        let results = medxfer::zoo::pull_many(&home, &entries, &opts, None).await;
        let mut failed = 0;
        for (e, (id, result)) in entries.iter().zip(&results) {
            assert_eq!(&e.id, id);
            let paths = medxfer::zoo::ModelPaths::new(&home, e);
            match result {
                Ok(_) => {
                    let got = std::fs::read(&paths.file).unwrap();
                    assert!(got == want[id], "{id}: an installed file differs from the served one");
                }
                Err(err) => {
                    failed += 1;
                    let err = format!("{err:#}");
                    eprintln!("network_faults: round {rounds}: {id}: {err}");
                    if err.contains("sha256") {
                        tally.add("wrong file refused (sha256)");
                        assert!(!paths.file.exists(), "{id}: a wrong file was installed");
                    } else {
                        tally.add("pull gave up after retries (resumable)");
                    }
                    if paths.file.exists() {
                        assert!(std::fs::read(&paths.file).unwrap() == want[id], "{id}: wrong file installed");
                    }
                }
            }
        }
        if failed == 0 {
            break;
        }
        assert!(rounds < 10, "pulls still failing after {rounds} rounds with every fault used up");
    }
    let served = server.served();
    tally.0.insert("requests served", served.len() as u32);
    tally.0.insert("resumed with Range", served.iter().filter(|s| s.status == 206).count() as u32);
    tally.0.insert("pull rounds until all installed", rounds);
    tally.0.insert("checkpoints installed, all byte-identical", entries.len() as u32);
    assert!(server.state.faults.lock().unwrap().is_empty(), "every fault was met");
    tally.print(&format!("network faults: {} pulls in {:.1} s", entries.len(), started.elapsed().as_secs_f64()));
}

// ---------------------------------------------------------------------------------------------------------
// 3. Bad input: one clear error naming the file, line or value, and no damage
// ---------------------------------------------------------------------------------------------------------

/// A finished run written by hand (no training), with `metrics` as its metrics.jsonl.
fn finished_run(home: &TestHome, id: &str, metrics: &str) -> PathBuf {
    use medxfer::runs::record::{Hyper, RunSpec, State, Status, Task};
    let dir = home.run(id);
    std::fs::create_dir_all(&dir).unwrap();
    RunSpec {
        hyper: Hyper { epochs: 2, ..Hyper::study_defaults(Task::Classification) },
        ..RunSpec::study(id, "demo-cls", Task::Classification, "random")
    }
    .save(&dir)
    .unwrap();
    let mut status = Status::new(State::Finished);
    status.epoch = 2;
    status.save(&dir).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    RunResult {
        run_id: id.into(),
        dataset: "demo-cls".into(),
        init: "random".into(),
        trial: 1,
        seed: 1,
        anno_percent: 100,
        task: Task::Classification,
        metric: "auc".into(),
        mean: 0.75,
        per_class: BTreeMap::from([("Mass".to_string(), 0.75)]),
        extra: BTreeMap::new(),
        best_epoch: 2,
        epochs_run: 2,
        conventions: BTreeMap::from([("tta".to_string(), serde_json::json!("centercrop"))]),
    }
    .save(&dir)
    .unwrap();
    dir
}

/// Every file under `dir` with its bytes: "no damage" means this does not change.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if !p.starts_with(dir.join("logs")) && !p.starts_with(dir.join("agent")) {
                out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

#[test]
fn bad_input_gets_one_clear_error_and_does_no_damage() {
    let started = Instant::now();
    let home = TestHome::new(1);
    let epoch = |e: u32| {
        format!(
            "{{\"kind\":\"epoch\",\"epoch\":{e},\"step\":{e},\"train_loss\":0.5,\"val_loss\":0.6,\"lr\":0.0002,\
             \"images_per_s\":50,\"elapsed_s\":{e},\"val\":{{\"auc_mean\":0.7}}}}\n"
        )
    };
    let good = "20261126-000000-demo-cls-random-t1";
    let metrics = format!("{}this is not json\n{}{{\"kind\":\"ep", epoch(1), epoch(2));
    finished_run(&home, good, &metrics);
    let victim = home.path("victim.txt");
    std::fs::write(&victim, b"must survive\n").unwrap();
    let tried = std::cell::Cell::new(0);
    let expect_error = |what: &str, args: &[&str], needles: &[&str]| {
        tried.set(tried.get() + 1);
        let before = snapshot(home.root());
        let out = home.output(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {args:?} should fail with status 1; stderr: {err}");
        for n in needles {
            assert!(err.contains(n), "{what}: {args:?}: the error should name {n:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(snapshot(home.root()).keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "{what}");
        assert!(snapshot(home.root()) == before, "{what}: files changed");
        eprintln!("bad input refused: {what}: {}", err.trim());
    };

    // Run ids with `..`, absolute paths and control characters, for every command taking one.
    for (what, id) in [
        ("run id ..", ".."),
        ("run id ../victim.txt", "../victim.txt"),
        ("absolute run id", "/etc/passwd"),
        ("absolute run id to a file of ours", victim.to_str().unwrap()),
        ("run id with a newline", "a\nb"),
        ("run id with an escape", "run\u{1b}[2J"),
    ] {
        for cmd in [&["runs", "show"][..], &["runs", "rm", "--force"], &["runs", "stop"], &["runs", "resume"]] {
            let mut args = cmd.to_vec();
            args.push(id);
            expect_error(what, &args, &[]);
        }
    }
    // Dataset names with `..`, absolute paths and control characters.
    for (what, dataset) in [
        ("dataset ..", "../../etc"),
        ("absolute dataset", "/etc/passwd"),
        ("dataset with a newline", "demo\ncls"),
        ("dataset with a NUL-like escape", "demo\u{7}cls"),
    ] {
        expect_error(what, &["sweep", "--dataset", dataset, "--models", "random"], &["--dataset"]);
        expect_error(what, &["data", "check", dataset, "--root", "/tmp"], &[]);
    }
    assert!(home.run_ids() == [good], "no run folder was created: {:?}", home.run_ids());

    // A malformed spec.toml: file and line; the trainer records the failure and touches nothing else.
    // The run commands above started an agent: the queue is paused so that it does not launch the queued run
    // beside the trainer this test runs itself.
    let paused = home.output(&["queue", "pause"]);
    assert!(paused.status.success(), "queue pause: {}", stderr(&paused));
    let queued = "20261126-000001-demo-cls-random-t2";
    let dir = finished_run(&home, queued, "");
    std::fs::remove_file(dir.join("result.json")).unwrap();
    medxfer::runs::record::Status::new(medxfer::runs::record::State::Queued).save(&dir).unwrap();
    let spec = dir.join("spec.toml");
    let broken = std::fs::read_to_string(&spec).unwrap().replacen("trial = 2", "trial = = 2", 1);
    let broken = if broken.contains("= = 2") { broken } else { broken.replacen("trial = 1", "trial = = 1", 1) };
    let line = broken.lines().position(|l| l.contains("= = ")).unwrap() + 1;
    std::fs::write(&spec, &broken).unwrap();
    tried.set(tried.get() + 1);
    let out = home.output(&["train", "--run", dir.to_str().unwrap()]);
    let want = format!("{}:{line}", spec.display());
    assert_eq!(out.status.code(), Some(1), "malformed spec.toml: {}", stderr(&out));
    assert!(stderr(&out).contains(&want), "the error names {want}: {}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), broken, "spec.toml is left as it was");
    let status = home.status(queued).unwrap();
    assert_eq!(status["state"], "failed", "{status}");
    assert!(status["reason"].as_str().unwrap().contains(&want), "{status}");
    assert!(!dir.join("metrics.jsonl").exists() || std::fs::read(dir.join("metrics.jsonl")).unwrap().is_empty());
    eprintln!("bad input refused: malformed spec.toml: {}", stderr(&out).trim());
    std::fs::remove_dir_all(&dir).unwrap();

    // A malformed dataset spec file: file and line.
    let dataset_spec = home.path("mine.toml");
    std::fs::write(&dataset_spec, "task = \"classification\"\nlabels = [\"a\", \"b\"\n").unwrap();
    expect_error(
        "malformed dataset spec file",
        &["data", "check", dataset_spec.to_str().unwrap(), "--root", "/tmp"],
        &[&format!("{}:", dataset_spec.display())],
    );

    // A malformed config.toml: file and line, for any command that reads it.
    let config = home.path("config.toml");
    let config_text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "[scheduler]\ncpu_slots = 2\ngpu_slots_per_device = \"many\"\n").unwrap();
    expect_error("config.toml with a wrong type", &["runs", "ls"], &[&format!("{}:3", config.display())]);
    std::fs::write(&config, "[scheduler\ncpu_slots = 2\n").unwrap();
    expect_error("config.toml with a broken table", &["agent", "status"], &[&format!("{}:1", config.display())]);
    std::fs::write(&config, &config_text).unwrap();

    // A metrics line that is not JSON (and a torn last line): skipped with a warning, never a crash.
    for args in [
        &["runs", "show", good][..],
        &["runs", "ls"],
        &["results", "--dataset", "demo-cls", "--format", "json"],
        &["results", "--dataset", "demo-cls"],
    ] {
        tried.set(tried.get() + 1);
        let out = home.output(args);
        let err = stderr(&out);
        assert!(out.status.success(), "{args:?} with a bad metrics line: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        if args[1] == "show" {
            assert!(err.contains("warning") && err.contains("metrics.jsonl"), "{args:?}: a visible warning: {err}");
        }
        eprintln!("bad metrics lines skipped by {args:?}: {}", err.trim());
    }
    let epochs: Vec<u32> =
        medxfer::train::files::read_epoch_lines(&home.run(good)).unwrap().iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1, 2]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "must survive\n");
    eprintln!(
        "bad input: {} inputs tried and refused or skipped in {:.0} s",
        tried.get(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------------------
// 4. Security checks that are cheap
// ---------------------------------------------------------------------------------------------------------

/// Socket inodes of the TCP listeners in /proc/net/tcp and tcp6.
fn tcp_listener_inodes() -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"0A") {
                out.push(f[9].to_string());
            }
        }
    }
    out
}

fn socket_inodes(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_str().and_then(|s| s.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string)))
        .collect()
}

#[test]
fn agent_socket_is_private_no_tcp_listener_and_plain_http_needs_a_mirror() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let home = TestHome::new(1);
    home.ok(&["agent", "start"]);
    let sock = home.path("agent/agent.sock");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "agent.sock mode");
    // SAFETY: getuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::getuid() }, "agent.sock owner");
    let agent = home.agent_pid().expect("the agent's pid");
    let listeners = tcp_listener_inodes();
    let sockets = socket_inodes(agent);
    assert!(!sockets.is_empty(), "the agent holds its unix socket");
    let tcp: Vec<&String> = sockets.iter().filter(|s| listeners.contains(s)).collect();
    assert!(tcp.is_empty(), "the agent listens on TCP: inodes {tcp:?}");
    home.ok(&["agent", "stop"]);

    // Run folders and the home are not readable by other users with the default umask.
    for name in ["runs", "agent", "cache"] {
        let mode = std::fs::metadata(home.path(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{name}/ is mode {mode:o}: other users could read it");
    }

    // Plain http is refused unless a mirror is configured: the default options are https-only.
    let server = zoo_server::Server::start();
    server.put("/m/m.pth", vec![1; 10]);
    let opts = medxfer::zoo::PullOptions::from_env(&medxfer::config::Config::default()).unwrap();
    assert!(opts.mirror.is_none() || std::env::var_os("MEDXFER_ZOO_MIRROR").is_some());
    if opts.mirror.is_none() {
        assert!(opts.fetch.https_only, "without a mirror downloads are https-only");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("m.part");
        let err = rt.block_on(async {
            let client = opts.client().unwrap();
            let url = format!("{}/m/m.pth", server.base).parse().unwrap();
            let mut progress = medxfer::zoo::progress::Progress::new("m", None);
            medxfer::zoo::download::fetch(&client, &url, &part, &opts.fetch, &mut progress, &mut |_| {}).await
        });
        let err = format!("{:#}", err.unwrap_err());
        assert!(err.contains("plain http is allowed only for an explicitly configured mirror"), "{err}");
        assert_eq!(server.connections(), 0, "no connection was opened");
    }
}

/// A throwaway local user, deleted on drop.
struct OtherUser {
    name: String,
}

impl OtherUser {
    fn create() -> Option<OtherUser> {
        let name = format!("mxprobe{}", std::process::id());
        let made = Command::new("useradd").args(["--no-create-home", "--shell", "/bin/sh", &name]).status();
        made.is_ok_and(|s| s.success()).then_some(OtherUser { name })
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("runuser").args(["-u", &self.name, "--"]).args(args).current_dir("/").output().unwrap()
    }
}

impl Drop for OtherUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

#[test]
fn a_second_local_user_can_neither_use_the_agent_nor_read_run_folders() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    let other = if unsafe { libc::geteuid() } == 0 { OtherUser::create() } else { None };
    let Some(other) = other else {
        eprintln!("SKIPPED a_second_local_user_...: needs root and useradd to create a second user");
        return;
    };
    let home = TestHome::new(1);
    home.ok(&["agent", "start"]);
    // Open the test's own folder, so that only the modes medxfer chose stand between the two users.
    std::fs::set_permissions(home.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let root = home.root().to_str().unwrap();
    assert!(other.run(&["ls", root]).status.success(), "the probe user must reach the home itself");
    for name in ["runs", "agent", "cache"] {
        let listing = other.run(&["ls", home.path(name).to_str().unwrap()]);
        assert!(!listing.status.success(), "another user can list {name}/");
    }
    let sock = home.path("agent/agent.sock");
    let connect = other.run(&[
        "python3",
        "-c",
        "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
        sock.to_str().unwrap(),
    ]);
    assert!(!connect.status.success(), "another user connected to the agent");
    assert!(String::from_utf8_lossy(&connect.stderr).contains("Permission denied"), "{}", stderr(&connect));
    home.ok(&["agent", "stop"]);
}

// ---------------------------------------------------------------------------------------------------------
// 5. Disk full (root only: a small tmpfs mounted by the test)
// ---------------------------------------------------------------------------------------------------------

/// A tmpfs mounted on a temporary folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "medxfer-chaos"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", stderr(&out).trim()));
        }
        Ok(Tmpfs { dir })
    }

    fn resize(&self, size: &str) {
        let out =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.dir.path()).output().unwrap();
        assert!(out.status.success(), "remount: {}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).output();
    }
}

#[test]
fn a_full_disk_fails_the_run_clearly_without_a_corrupt_file_and_it_resumes_once_space_is_freed() {
    let started = Instant::now();
    // Room for the demo data and best.safetensors (94 MB) but not for last.ckpt (282 MB).
    let fs = match Tmpfs::mount("200m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED disk-full test: {why} (it needs root to mount a small tmpfs)");
            return;
        }
    };
    let root = fs.dir.path().join("home");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("config.toml"), "[scheduler]\ncpu_slots = 1\n").unwrap();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
        c.args(args).env("MEDXFER_HOME", &root).env_remove("MEDXFER_TRAIN_PROGRAM");
        c
    };
    let out = cmd(&["sweep", "--dataset", "demo-cls", "--models", "random", "--trials", "1", "--wait"])
        .args(SWEEP_SETTINGS.iter().flat_map(|s| ["--set", s]))
        .args(["--set", "epochs=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the sweep reports the failed run: {}", stderr(&out));
    let id = std::fs::read_dir(root.join("runs")).unwrap().next().unwrap().unwrap().file_name();
    let id = id.to_str().unwrap().to_string();
    let dir = root.join("runs").join(&id);
    let status: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("status.json")).unwrap()).unwrap();
    assert_eq!(status["state"], "failed", "{status}");
    let reason = status["reason"].as_str().unwrap().to_lowercase();
    assert!(reason.contains("no space left"), "the reason says the disk is full: {reason}");
    assert!(reason.contains("last.ckpt"), "the reason names the file: {reason}");
    eprintln!("disk full: run {id} failed with: {}", status["reason"].as_str().unwrap());
    assert!(!dir.join("result.json").exists(), "no result from a failed run");
    assert!(!dir.join("last.ckpt").exists(), "no partial checkpoint");
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left on the full disk: {leftovers:?}");
    if dir.join("best.safetensors").exists() {
        let bytes = std::fs::read(dir.join("best.safetensors")).unwrap();
        safetensors::SafeTensors::deserialize(&bytes).expect("best.safetensors is whole");
    }

    // Space is freed: the run resumes and finishes with one line per epoch.
    fs.resize("700m");
    let out = cmd(&["runs", "resume", &id]).output().unwrap();
    assert!(out.status.success(), "runs resume: {}", stderr(&out));
    let state = || {
        let text = std::fs::read_to_string(dir.join("status.json")).unwrap_or_default();
        serde_json::from_str::<Value>(&text).map(|v| v["state"].as_str().unwrap_or("").to_string()).unwrap_or_default()
    };
    wait_until("the resumed run to end", 240, || matches!(state().as_str(), "finished" | "failed"));
    assert_eq!(state(), "finished", "{}", std::fs::read_to_string(dir.join("train.log")).unwrap_or_default());
    let result = RunResult::load(&dir).unwrap();
    assert!(result.mean.is_finite() && result.epochs_run == 1, "{result:?}");
    let epochs: Vec<u32> = medxfer::train::files::read_epoch_lines(&dir).unwrap().iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, [1], "the epoch redone after the failure appears once");
    let _ = cmd(&["agent", "stop"]).output();
    eprintln!("disk full: failed clearly, resumed and finished in {:.0} s", started.elapsed().as_secs_f64());
}
