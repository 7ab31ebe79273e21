//! End to end: the real binary in tmux against a temporary home holding hand-made run folders;
//! keys go in with send-keys, the screen comes back with capture-pane.

mod zoo_server;

use medxfer::runs::record::{Hyper, RunResult, RunSpec, State, Status, Task};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

fn write_run(runs: &Path, id: &str, init: &str, mean: f64) -> PathBuf {
    let dir = runs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = RunSpec {
        hyper: Hyper { epochs: 3, ..Hyper::study_defaults(Task::Classification) },
        ..RunSpec::study(id, "demo-cls", Task::Classification, init)
    };
    spec.save(&dir).unwrap();
    let mut status = Status::new(State::Finished);
    status.epoch = 3;
    status.best_epoch = Some(2);
    status.save(&dir).unwrap();
    let metrics: String = (1..=3)
        .map(|e| {
            format!(
                "{{\"kind\":\"epoch\",\"epoch\":{e},\"step\":{},\"train_loss\":{},\"val_loss\":{},\"lr\":0.0002,\"images_per_s\":50,\"elapsed_s\":{e},\"val\":{{\"auc\":0.8}}}}\n",
                e * 10,
                1.0 / f64::from(e),
                1.1 / f64::from(e)
            )
        })
        .collect();
    std::fs::write(dir.join("metrics.jsonl"), metrics).unwrap();
    let conventions = BTreeMap::from([("tta".to_string(), serde_json::json!("tencrop"))]);
    RunResult {
        run_id: id.into(),
        dataset: "demo-cls".into(),
        init: init.into(),
        trial: 1,
        seed: 1,
        anno_percent: 100,
        task: Task::Classification,
        metric: "auc".into(),
        mean,
        per_class: BTreeMap::new(),
        extra: BTreeMap::new(),
        best_epoch: 2,
        epochs_run: 3,
        conventions,
    }
    .save(&dir)
    .unwrap();
    dir
}

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts the TUI in session `name`; the pane stays after the process ends so its screen can be read.
    fn start(&self, name: &str, home: &Path, pid_file: &Path) {
        self.start_with(name, home, pid_file, &[]);
    }

    /// `start` with more environment variables (`NAME=value`).
    fn start_with(&self, name: &str, home: &Path, pid_file: &Path, env: &[String]) {
        self.start_sized(name, home, pid_file, env, (100, 30));
    }

    /// `start_with` in a terminal of (columns, rows).
    fn start_sized(&self, name: &str, home: &Path, pid_file: &Path, env: &[String], size: (u16, u16)) {
        let bin = env!("CARGO_BIN_EXE_medxfer");
        let script = format!("echo before-tui; echo $$ > '{}'; exec '{bin}'", pid_file.display());
        let home = format!("MEDXFER_HOME={}", home.display());
        let (columns, rows) = (size.0.to_string(), size.1.to_string());
        let mut args =
            vec!["new-session", "-d", "-s", name, "-x", &columns, "-y", &rows, "-e", &home, "-e", "NO_COLOR=1"];
        for e in env {
            args.extend(["-e", e.as_str()]);
        }
        args.extend(["sh", "-c", &script]);
        self.cmd(&args);
        self.cmd(&["set-option", "-t", name, "remain-on-exit", "on"]);
    }

    fn keys(&self, name: &str, keys: &str) {
        self.cmd(&["send-keys", "-t", name, keys]);
    }

    /// Polls the screen until `done` holds, for up to `secs`; `bad` names a screen that can only get worse.
    fn wait_until(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        done: impl Fn(&str) -> bool,
        bad: impl Fn(&str) -> Option<String>,
    ) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if done(&screen) {
                return screen;
            }
            if let Some(why) = bad(&screen) {
                panic!("while waiting for {what}: {why}; screen:\n{screen}");
            }
            assert!(start.elapsed() < Duration::from_secs(secs), "waited {secs} s for {what}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn screen(&self, name: &str) -> String {
        self.cmd(&["capture-pane", "-p", "-t", name])
    }

    /// Polls the screen until it contains every needle, or fails with the last screen.
    fn wait_for(&self, name: &str, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(name);
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(start.elapsed() < DEADLINE, "waited for {needles:?}; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls until the pane's process has ended; returns its exit status ("signal N" when a signal killed it).
    ///
    /// tmux marks a pane dead when its pty closes and records the exit status when SIGCHLD arrives. This
    /// tmux is linked with libutempter, whose utempter_remove_record (run as the pty closes) briefly puts
    /// in its own SIGCHLD handler: a child that exits inside that window stays an unreaped zombie and the
    /// pane shows no status (tmux/tmux#311; about one exit in four here, since medxfer's exit takes a while
    /// between closing its files and its last breath). A SIGCHLD sent to the server makes it reap the
    /// zombie and record the real status.
    fn wait_exit(&self, name: &str) -> String {
        let start = Instant::now();
        let mut nudged_at: Option<Instant> = None;
        loop {
            let dead = self.cmd(&[
                "display-message",
                "-p",
                "-t",
                name,
                "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}",
            ]);
            let fields: Vec<&str> = dead.trim_end_matches('\n').split('|').collect();
            match fields[..] {
                ["1", status, _] if !status.is_empty() => return status.to_string(),
                ["1", "", signal] if !signal.is_empty() => return format!("signal {signal}"),
                ["1", "", ""] if nudged_at.is_none_or(|t| t.elapsed() > Duration::from_millis(500)) => {
                    let server = self.cmd(&["display-message", "-p", "#{pid}"]);
                    eprintln!("pane {name} dead without a status: SIGCHLD to the tmux server {}", server.trim());
                    Command::new("kill").args(["-CHLD", server.trim()]).status().unwrap();
                    nudged_at = Some(Instant::now());
                }
                _ => {}
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the TUI did not exit cleanly ({dead:?}); screen:\n{}",
                self.screen(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The TUI left the alternate screen and the shell's earlier output is back (a dead pane always hides
/// the cursor, so its visibility cannot be checked here).
fn assert_restored(tmux: &Tmux, name: &str) {
    let flags = tmux.cmd(&["display-message", "-p", "-t", name, "#{alternate_on}"]);
    let history = tmux.cmd(&["capture-pane", "-p", "-S", "-", "-t", name]);
    assert_eq!(flags.trim(), "0", "alternate screen left:\n{history}");
    assert!(history.contains("before-tui") && !history.contains("Leaderboard"), "{history}");
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

#[test]
fn tui_shows_runs_and_leaderboard_follows_new_runs_and_quits_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    write_run(&runs, "20261126-081200-demo-cls-imagenet-t1", "imagenet", 0.91);
    write_run(&runs, "20261126-081201-demo-cls-random-t1", "random", 0.62);
    let tmux = Tmux { socket: format!("medxfer-tui-{}", std::process::id()) };
    let pid_file = home.path().join("tui.pid");

    tmux.start("q", home.path(), &pid_file);
    tmux.wait_for("q", &["4 Runs", "imagenet", "random", "0.910", "0.620"]);
    tmux.cmd(&["send-keys", "-t", "q", "6"]);
    let board = tmux.wait_for("q", &["auc 0.9100 (1 trial)", "auc 0.6200 (1 trial)"]);
    let first = board.lines().position(|l| l.contains("imagenet")).unwrap();
    let second = board.lines().position(|l| l.contains("random")).unwrap();
    assert!(first < second, "imagenet ranks above random:\n{board}");

    write_run(&runs, "20261126-081202-demo-cls-swav-t1", "swav", 0.95);
    tmux.wait_for("q", &["auc 0.9500 (1 trial)", "swav"]);
    tmux.keys("q", "e");
    let csv = home.path().join("exports/leaderboard-demo-cls.csv");
    tmux.wait_for("q", &[format!("exported {}", csv.display()).as_str()]);
    let exported = std::fs::read_to_string(&csv).unwrap();
    assert!(exported.contains("medxfer,demo-cls,100,auc") && exported.contains("swav"), "{exported}");
    assert!(home.path().join("exports/leaderboard-demo-cls.md").is_file());
    tmux.keys("q", "r");
    tmux.wait_for("q", &["chestxray14", "paper"]);
    tmux.keys("q", "r");
    tmux.keys("q", "4");
    tmux.keys("q", "K");
    tmux.wait_for("q", &["kill 20261126-081200-demo-cls-imagenet-t1? y to confirm"]);
    tmux.keys("q", "n");
    tmux.wait_for("q", &["kill 20261126-081200-demo-cls-imagenet-t1: cancelled"]);
    tmux.keys("q", "6");
    tmux.cmd(&["send-keys", "-t", "q", "?"]);
    tmux.wait_for("q", &["keys: Leaderboard", "quit (runs keep going)"]);
    tmux.cmd(&["send-keys", "-t", "q", "Escape"]);
    tmux.cmd(&["send-keys", "-t", "q", "q"]);
    assert_eq!(tmux.wait_exit("q"), "0");
    assert_restored(&tmux, "q");

    tmux.start("term", home.path(), &pid_file);
    tmux.wait_for("term", &["4 Runs", "swav"]);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    Command::new("kill").args(["-TERM", pid.trim()]).status().unwrap();
    assert_eq!(tmux.wait_exit("term"), "0", "SIGTERM restores the terminal and exits 0");
    assert_restored(&tmux, "term");
}

/// Stops the home's agent and any run it left, whatever the test's outcome.
struct AgentGuard<'a>(&'a Path);

impl Drop for AgentGuard<'_> {
    fn drop(&mut self) {
        let _ =
            Command::new(env!("CARGO_BIN_EXE_medxfer")).args(["agent", "stop"]).env("MEDXFER_HOME", self.0).output();
        for run in std::fs::read_dir(self.0.join("runs")).into_iter().flatten().flatten() {
            if let Some(rec) = medxfer::sched::control::AgentRecord::load(&run.path())
                && medxfer::process::is_same_live_process(rec.pid, rec.start_time)
            {
                let _ = medxfer::process::signal_group(rec.pid, libc::SIGKILL);
            }
        }
    }
}

/// A real torch.save checkpoint in Barlow Twins' layout (a full random ResNet50, ~94 MB), written by
/// tests/fixtures/make_ckpt_fixtures.py with the reference Python.
fn barlowtwins_fixture(dir: &Path) -> Vec<u8> {
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make_ckpt_fixtures.py");
    let out = Command::new(py).arg(script).arg(dir).args(["--resnet", "--only", "barlowtwins.pth"]).output().unwrap();
    assert!(out.status.success(), "fixture script failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(dir.join("barlowtwins.pth")).unwrap()
}

/// The Runs table's row of `init` (the state column comes first).
fn run_row<'a>(screen: &'a str, init: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.split_whitespace().nth(1) == Some(init) || l.split_whitespace().nth(2) == Some(init))
}

fn zoo_row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.starts_with(&format!(" {id} ")))
}

#[test]
fn zoo_pull_then_demo_sweep_trains_random_and_the_pulled_model_to_the_leaderboard() {
    let home = tempfile::tempdir().unwrap();
    let _agent = AgentGuard(home.path());
    let fixtures = tempfile::tempdir().unwrap();
    let server = zoo_server::Server::start();
    server.put("/barlowtwins/resnet50.pth", barlowtwins_fixture(fixtures.path()));
    let tmux = Tmux { socket: format!("medxfer-tui-zoo-{}", std::process::id()) };
    let pid_file = home.path().join("tui.pid");
    let mirror = [format!("MEDXFER_ZOO_MIRROR={}", server.base)];
    // Two CPU slots: the demo's four runs train two at a time.
    std::fs::write(home.path().join("config.toml"), "[scheduler]\ncpu_slots = 2\n").unwrap();

    tmux.start_with("z", home.path(), &pid_file, &mirror);
    tmux.wait_for("z", &["4 Runs", "no runs yet"]);
    tmux.keys("z", "1");
    let zoo = tmux.wait_until(
        "z",
        30,
        "the zoo's states",
        |s| {
            s.contains("Zoo: 22 models, 0 converted")
                && zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("missing"))
        },
        |_| None,
    );
    assert!(zoo_row(&zoo, "random").is_none_or(|r| r.contains("builtin")), "{zoo}");
    tmux.keys("z", "j");
    tmux.wait_for("z", &["Barlow Twins (barlowtwins): missing  [enter details]"]);
    tmux.keys("z", "Enter");
    tmux.wait_for("z", &["Barlow Twins (barlowtwins)", "sha256     none in the catalog"]);
    tmux.keys("z", "p");
    let converted = tmux.wait_until(
        "z",
        180,
        "barlowtwins to be pulled and converted",
        |s| zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("converted")),
        |s| zoo_row(s, "barlowtwins").filter(|r| r.contains("failed")).map(str::to_string),
    );
    assert!(converted.contains("Zoo: 22 models, 1 converted"), "{converted}");
    assert!(converted.contains("pinned     "), "the trust-on-first-use pin is shown:\n{converted}");
    let cache = home.path().join("cache/zoo/barlowtwins");
    assert!(cache.join("resnet50.safetensors").is_file() && cache.join("resnet50.pth").is_file());
    let pin = std::fs::read_to_string(home.path().join("zoo.lock")).unwrap();
    assert!(pin.contains("[models.barlowtwins]"), "{pin}");

    tmux.keys("z", "d");
    tmux.wait_until(
        "z",
        60,
        "the demo sweep to be queued",
        |s| {
            s.contains(
                "sweep queued: 4 new runs of random, barlowtwins on demo-cls, 2 trials each (epochs=3 image_size=32",
            )
        },
        |s| s.lines().last().filter(|l| l.contains("failed")).map(str::to_string),
    );
    tmux.keys("z", "4");
    let rows = |s: &str, state: &str| s.lines().filter(|l| l.trim_start().starts_with(state)).count();
    let both_finished = |s: &str| s.contains("Runs 4") && rows(s, "finished") == 4;
    let most_running = std::cell::Cell::new(0);
    let runs = tmux.wait_until("z", 900, "the four demo runs to finish on the CPU", both_finished, |s| {
        most_running.set(most_running.get().max(rows(s, "running")));
        ["random", "barlowtwins"]
            .iter()
            .find_map(|m| run_row(s, m).filter(|r| r.contains("failed") || r.contains("stopped")))
            .map(|r| format!("a run ended badly: {r}"))
    });
    assert!(runs.contains("Runs 4"), "{runs}");
    assert_eq!(most_running.get(), 2, "two slots: two runs at once, never more\n{runs}");
    tmux.keys("z", "6");
    let board = tmux.wait_until(
        "z",
        30,
        "both models on the leaderboard",
        |s| {
            s.contains("demo-cls")
                && s.matches("auc ").count() >= 2
                && s.contains("barlowtwins")
                && s.contains("random")
        },
        |_| None,
    );
    for init in ["random", "barlowtwins"] {
        let row = board.lines().find(|l| l.contains(init)).unwrap();
        assert!(
            row.contains(" 2 ") && row.contains("auc 0.") && row.contains('±') && !row.contains("trial)"),
            "{row}\n{board}"
        );
    }
    tmux.keys("z", "q");
    assert_eq!(tmux.wait_exit("z"), "0");
    assert_restored(&tmux, "z");

    tmux.start_with("again", home.path(), &pid_file, &mirror);
    tmux.wait_until("again", 30, "the same runs after a restart", both_finished, |_| None);
    tmux.keys("again", "1");
    tmux.wait_until(
        "again",
        30,
        "the converted model after a restart",
        |s| zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("converted") && r.contains(" 2 ")),
        |_| None,
    );
    tmux.keys("again", "6");
    tmux.wait_for("again", &["barlowtwins", "random", "auc 0."]);
    // The demo dataset the runs used passes `medxfer data check` (demo-seg is the last spec, demo-cls before it).
    tmux.keys("again", "2");
    tmux.keys("again", "G");
    tmux.keys("again", "k");
    tmux.wait_for("again", &[" demo-cls ", "press c to run `medxfer data check demo-cls`"]);
    tmux.keys("again", "c");
    tmux.wait_until(
        "again",
        60,
        "the data check of demo-cls",
        |s| {
            s.contains("images: 500 of 500 listed found (train 300, val 100, test 100)")
                && s.contains("no problems found")
        },
        |s| s.contains("check failed").then(|| "data check failed".to_string()),
    );
    tmux.keys("again", "q");
    assert_eq!(tmux.wait_exit("again"), "0");
}

/// The screen's text without spaces and line breaks, and of a boxed line only what is inside the box, so
/// that a sentence wrapped in a pop-up can be found.
fn flat(screen: &str) -> String {
    let inside = |l: &str| match (l.find('│'), l.rfind('│')) {
        (Some(a), Some(b)) if a < b => l[a + '│'.len_utf8()..b].to_string(),
        _ => l.to_string(),
    };
    screen.lines().map(inside).collect::<String>().chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn a_newcomer_without_network_reads_why_the_pull_failed_and_imports_the_file_by_path() {
    let home = tempfile::tempdir().unwrap();
    let _agent = AgentGuard(home.path());
    let fixtures = tempfile::tempdir().unwrap();
    barlowtwins_fixture(fixtures.path());
    // A mirror nobody listens on, tried once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    std::fs::write(home.path().join("config.toml"), "[zoo]\nretries = 0\n").unwrap();
    let tmux = Tmux { socket: format!("medxfer-tui-offline-{}", std::process::id()) };
    let pid_file = home.path().join("tui.pid");
    tmux.start_with("o", home.path(), &pid_file, &[format!("MEDXFER_ZOO_MIRROR=http://{closed}")]);
    tmux.wait_for("o", &["4 Runs"]);
    tmux.keys("o", "1");
    tmux.wait_until(
        "o",
        30,
        "the zoo's states",
        |s| zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("missing")),
        |_| None,
    );
    tmux.keys("o", "j");
    tmux.wait_for("o", &["Barlow Twins (barlowtwins): missing"]);
    tmux.keys("o", "p");
    let failed = tmux.wait_until(
        "o",
        30,
        "the pull from a closed port to fail",
        |s| zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("failed")),
        |s| zoo_row(s, "barlowtwins").filter(|r| r.contains("converted")).map(str::to_string),
    );
    assert!(!zoo_row(&failed, "barlowtwins").unwrap().contains("interrupted"), "{failed}");
    tmux.keys("o", "M");
    let popup = tmux.wait_until("o", 20, "the whole message", |s| s.contains(" message ("), |_| None);
    for advice in ["cannotdownloadbarlowtwins", "MEDXFER_ZOO_MIRROR", "medxferzooimportbarlowtwins"] {
        assert!(flat(&popup).contains(advice), "{advice} in the pop-up:\n{popup}");
    }
    tmux.keys("o", "Escape");
    tmux.keys("o", "i");
    tmux.wait_for("o", &["import a downloaded file for barlowtwins", "Tab completes"]);
    let typed = format!("{}/barl", fixtures.path().display());
    tmux.cmd(&["send-keys", "-t", "o", "-l", &typed]);
    tmux.keys("o", "Tab");
    let file = fixtures.path().join("barlowtwins.pth");
    tmux.wait_for("o", &[format!("> {}_", file.display()).as_str()]);
    tmux.keys("o", "Enter");
    let converted = tmux.wait_until(
        "o",
        120,
        "barlowtwins to be imported and converted",
        |s| zoo_row(s, "barlowtwins").is_some_and(|r| r.contains("converted")),
        |_| None,
    );
    assert!(converted.contains("Zoo: 22 models, 1 converted"), "{converted}");
    assert!(home.path().join("cache/zoo/barlowtwins/resnet50.safetensors").is_file());
    tmux.keys("o", "q");
    assert_eq!(tmux.wait_exit("o"), "0");
}

/// The runs of the newcomer's sweeps: one short run (1 epoch at 50% of the labels) that finishes, and three
/// long trials (30 epochs) that are still training when they are stopped.
struct NewcomerRuns {
    home: PathBuf,
    short: String,
    long: [String; 3],
}

impl NewcomerRuns {
    fn dir(&self, id: &str) -> PathBuf {
        self.home.join("runs").join(id)
    }
}

/// A Runs table row at 80 columns as its fields (state, model, t, a%, epoch, val, metric, img/s, GPU, ETA),
/// the selection mark dropped; found by trial and anno %.
fn runs_row(screen: &str, trial: u32, anno: u32) -> Option<Vec<String>> {
    screen.lines().find_map(|line| {
        let mut fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if fields.first().is_some_and(|f| f == "+") {
            fields.remove(0);
        }
        let matches = fields.len() >= 10
            && fields[1] == "random"
            && fields[2] == trial.to_string()
            && fields[3] == anno.to_string();
        matches.then_some(fields)
    })
}

/// Whether the row of (trial, anno) is selected (its first column shows `+`).
fn row_selected(screen: &str, trial: u32, anno: u32) -> bool {
    screen.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.len() > 4
            && fields[0] == "+"
            && fields[2] == "random"
            && fields[3] == trial.to_string()
            && fields[4] == anno.to_string()
    })
}

fn state_of(screen: &str, trial: u32, anno: u32) -> Option<String> {
    runs_row(screen, trial, anno).map(|f| f[0].clone())
}

/// `?` in Runs at 80x24: every key of the view whole, the first column's longest and the last binding too.
fn newcomer_reads_the_runs_keys(tmux: &Tmux, name: &str) {
    tmux.keys(name, "?");
    tmux.wait_for(
        name,
        &["keys: Runs", "backtab h left previous view", "R restart anew (asks)", "e evaluate the best checkpoint"],
    );
    tmux.keys(name, "Escape");
    tmux.wait_until(name, 20, "the help closed", |s| !s.contains("keys: Runs"), |_| None);
}

/// Launch, in the TUI: a sweep with a model that is not converted is refused (Enter queues nothing), the
/// fixed one is checked by `sweep --dry-run` and then queued: the short run, one epoch on 50 % of the labels.
fn newcomer_launches_in_the_tui(tmux: &Tmux, name: &str, home: &Path) -> String {
    tmux.keys(name, "3");
    tmux.wait_for(name, &["Launch: build a sweep", "dataset    demo-cls", "executor   local"]);
    let type_into = |row_from_top: usize, text: &str| {
        tmux.keys(name, "g");
        for _ in 0..row_from_top {
            tmux.keys(name, "j");
        }
        tmux.keys(name, "e");
        for _ in 0..8 {
            tmux.keys(name, "BSpace");
        }
        tmux.keys(name, text);
        tmux.keys(name, "Enter");
    };
    type_into(7, "50");
    type_into(8, "epochs=1 image_size=32 batch_size=4 threads=1");
    tmux.wait_for(name, &["anno %     50", "overrides  epochs=1 image_size=32"]);
    // The first model row: imagenet, which this home has not pulled.
    tmux.keys(name, "g");
    for _ in 0..9 {
        tmux.keys(name, "j");
    }
    tmux.keys(name, "Space");
    tmux.wait_for(name, &["[x] imagenet", "1 runs, blocked:", "not converted: imagenet"]);
    tmux.keys(name, "Enter");
    tmux.wait_for(name, &["nothing enqueued: not converted: imagenet"]);
    assert!(!home.join("runs").exists() || std::fs::read_dir(home.join("runs")).unwrap().next().is_none());

    tmux.keys(name, "Space");
    tmux.keys(name, "G");
    tmux.keys(name, "Space");
    let screen = tmux.wait_for(name, &["[x] random", "1 runs, 1 new: enter to enqueue", "time: up to"]);
    assert!(!screen.contains("[x] imagenet"), "{screen}");
    let plan: String =
        screen.lines().filter_map(|l| l.split('│').nth(1)).collect::<String>().split_whitespace().collect();
    assert!(plan.contains("time:upto") && plan.contains("calibration"), "{screen}");
    tmux.keys(name, "Enter");
    tmux.wait_for(name, &["sweep queued: 1 new runs of random on demo-cls at 50% labels"]);
    let ids: Vec<String> = std::fs::read_dir(home.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].ends_with("-demo-cls-random-t1-a50"), "{ids:?}");
    tmux.keys(name, "4");
    ids[0].clone()
}

/// Launch: the long trials, through the CLI (the short run came from the Launch view).
fn newcomer_launch(home: &Path, short: String) -> NewcomerRuns {
    let sweep = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
            .args(["sweep", "--dataset", "demo-cls", "--models", "random", "--json"])
            .args(args)
            .args(["--set", "image_size=32", "--set", "batch_size=4", "--set", "threads=1"])
            .env("MEDXFER_HOME", home)
            .output()
            .unwrap();
        assert!(out.status.success(), "sweep {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let plan: medxfer::sched::sweep::PlanSummary = serde_json::from_slice(&out.stdout).unwrap();
        plan.runs.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    // The short run came first: with two CPU slots it trains beside the first long one.
    let long = sweep(&["--trials", "3", "--set", "epochs=30"]);
    assert_eq!(long.len(), 3, "{long:?}");
    NewcomerRuns { home: home.to_path_buf(), short, long: [long[0].clone(), long[1].clone(), long[2].clone()] }
}

/// Moves the Runs cursor onto `id` (rows are in id order) and waits until the title names it.
fn cursor_to(tmux: &Tmux, name: &str, runs: &NewcomerRuns, id: &str) {
    let mut ids: Vec<&String> = runs.long.iter().chain([&runs.short]).collect();
    ids.sort();
    let row = ids.iter().position(|i| *i == id).unwrap();
    tmux.keys(name, "g");
    for _ in 0..row {
        tmux.keys(name, "j");
    }
    tmux.wait_for(name, &[format!("· {id} ").as_str()]);
}

/// In-epoch progress: a long run's row shows img/s and an ETA, and its detail the step in the epoch.
fn newcomer_watches_progress(tmux: &Tmux, name: &str, runs: &NewcomerRuns) {
    let training = |s: &str| {
        (1..=3).find(|&t| {
            runs_row(s, t, 100)
                .is_some_and(|f| f[0] == "running" && f[7].parse::<f64>().is_ok_and(|r| r > 0.0) && f[9] != "-")
        })
    };
    let screen = tmux.wait_until(
        name,
        120,
        "a long run to show img/s and an ETA",
        |s| training(s).is_some(),
        |s| (1..=3).find_map(|t| state_of(s, t, 100).filter(|st| st == "failed")).map(|_| "a run failed".into()),
    );
    let trial = training(&screen).unwrap();
    let id = runs.long[trial as usize - 1].clone();
    cursor_to(tmux, name, runs, &id);
    tmux.keys(name, "Enter");
    let detail = tmux.wait_until(
        name,
        60,
        "the step inside the epoch in the run's detail",
        |s| s.contains(&format!("{id}  [running]  ")) && s.lines().any(|l| l.contains("/30 (step ")),
        |_| None,
    );
    let head = detail.lines().find(|l| l.contains("/30 (step ")).unwrap();
    let (done, of) = head.split("(step ").nth(1).and_then(|r| r.split(')').next()?.split_once('/')).unwrap();
    assert!(done.parse::<u32>().unwrap() <= of.parse::<u32>().unwrap(), "{head}");
    let pace = detail.lines().find(|l| l.contains(&format!("{id}  [running]  "))).unwrap();
    assert!(pace.contains(" img/s  ETA ") && !pace.ends_with("ETA -"), "images/s and ETA in the detail: {pace}");
    tmux.keys(name, "Escape");
    tmux.wait_for(name, &[" Runs 4 "]);
}

/// Space on two long runs, the cursor on the third, `x`: exactly the two selected end stopped.
fn newcomer_stops_two_selected_runs(tmux: &Tmux, name: &str, runs: &NewcomerRuns) {
    for id in [&runs.long[0], &runs.long[2]] {
        cursor_to(tmux, name, runs, id);
        tmux.keys(name, "Space");
    }
    tmux.wait_until(
        name,
        20,
        "trials 1 and 3 selected",
        |s| row_selected(s, 1, 100) && row_selected(s, 3, 100) && s.contains("2 selected"),
        |_| None,
    );
    cursor_to(tmux, name, runs, &runs.long[1]);
    let before = tmux.screen(name);
    assert!(!row_selected(&before, 2, 100), "{before}");
    tmux.keys(name, "x");
    tmux.wait_until(
        name,
        60,
        "the two selected runs to be stopped",
        |s| state_of(s, 1, 100).as_deref() == Some("stopped") && state_of(s, 3, 100).as_deref() == Some("stopped"),
        |s| state_of(s, 2, 100).filter(|st| st != "running" && st != "queued").map(|st| format!("trial 2 is {st}")),
    );
    // The run under the cursor was not told to stop: it trains (in the slot the first one left, if it waited).
    tmux.wait_until(
        name,
        60,
        "the run under the cursor to keep training",
        |s| state_of(s, 2, 100).as_deref() == Some("running"),
        |s| state_of(s, 2, 100).filter(|st| st != "running" && st != "queued").map(|st| format!("trial 2 is {st}")),
    );
    let status = std::fs::read_to_string(runs.dir(&runs.long[1]).join("status.json")).unwrap();
    assert!(status.contains("\"running\""), "{status}");
}

/// The log lines on screen: train.log's lines start with their RFC 3339 time (wrapped rest lines do not).
fn log_lines(screen: &str) -> Vec<&str> {
    screen.lines().map(str::trim).filter(|l| l.starts_with("20") && l.get(10..11) == Some("T")).collect()
}

/// `L` on a stopped run that had started: its whole log over the screen, from the trainer's start to its
/// stop; up scrolls it.
fn newcomer_reads_the_full_log(tmux: &Tmux, name: &str, runs: &NewcomerRuns) {
    tmux.keys(name, "Escape");
    tmux.wait_until(name, 20, "the selection cleared", |s| !s.contains("2 selected"), |_| None);
    let started =
        |id: &&String| std::fs::read_to_string(runs.dir(id).join("train.log")).is_ok_and(|l| l.contains("start pid"));
    let id = [&runs.long[0], &runs.long[2]].into_iter().find(started).expect("one of the stopped runs had started");
    cursor_to(tmux, name, runs, id);
    tmux.keys(name, "Enter");
    tmux.keys(name, "L");
    let ends_stopped = |s: &str| log_lines(s).last().is_some_and(|l| l.ends_with(" stopped"));
    let full = tmux.wait_until(
        name,
        20,
        "the stopped run's whole log",
        |s| ends_stopped(s) && log_lines(s).first().is_some_and(|l| l.contains(" start pid ")),
        |_| None,
    );
    assert!(flat(&full).contains(&format!("run{id}oncpu")), "{full}");
    assert!(!full.contains("loss: "), "the log has the whole view, no chart:\n{full}");
    tmux.keys(name, "k");
    let scrolled = tmux.wait_until(name, 20, "the log scrolled up", |s| s.contains("(1 lines up;"), |_| None);
    assert!(!ends_stopped(&scrolled), "one line up hides the last:\n{scrolled}");
    tmux.keys(name, "Escape");
    tmux.wait_for(name, &[" Runs 4 "]);
}

/// The short run's result alone in its group: `(1 trial)` and no spread.
fn newcomer_sees_an_honest_leaderboard(tmux: &Tmux, name: &str) {
    tmux.wait_until(
        name,
        180,
        "the short run to finish",
        |s| state_of(s, 1, 50).as_deref() == Some("finished"),
        |s| {
            state_of(s, 1, 50).filter(|st| st != "running" && st != "queued").map(|st| format!("the short run is {st}"))
        },
    );
    tmux.keys(name, "6");
    let board = tmux.wait_until(name, 20, "the leaderboard", |s| s.contains("(1 trial)"), |_| None);
    let row = board.lines().find(|l| l.contains("50%") && l.contains("random")).unwrap_or_else(|| panic!("{board}"));
    assert!(row.contains(" 1 ") && row.contains("auc 0.") && row.contains("(1 trial)") && !row.contains('±'), "{row}");
    assert!(!board.contains("± 0.0000"), "{board}");
    tmux.keys(name, "4");
}

/// `e` on the finished run: `medxfer eval` of its best checkpoint, the test AUC on the status line.
fn newcomer_evaluates_the_finished_run(tmux: &Tmux, name: &str, runs: &NewcomerRuns) {
    cursor_to(tmux, name, runs, &runs.short);
    tmux.keys(name, "e");
    tmux.wait_until(
        name,
        120,
        "the eval's result",
        |s| s.contains(&format!("eval {}: test auc 0.", runs.short)),
        |s| s.lines().last().filter(|l| l.contains("failed")).map(str::to_string),
    );
    assert!(runs.dir(&runs.short).join("eval-demo-cls.json").is_file());
}

/// Issue 20's newcomer after the zoo steps (pull fails offline, import: the test above), at 80x24, one step
/// per function on one home and its sweeps: the keys of Runs, launch, watch in-epoch progress, stop two
/// selected runs, read a whole log, see one trial on the leaderboard without a spread, evaluate the finished run.
#[test]
fn a_newcomer_watches_progress_stops_two_selected_runs_reads_the_log_and_sees_one_trial_honestly() {
    let home = tempfile::tempdir().unwrap();
    let _agent = AgentGuard(home.path());
    std::fs::write(home.path().join("config.toml"), "[scheduler]\ncpu_slots = 2\n").unwrap();
    let tmux = Tmux { socket: format!("medxfer-tui-newcomer-{}", std::process::id()) };
    let pid_file = home.path().join("tui.pid");
    tmux.start_sized("n", home.path(), &pid_file, &[], (80, 24));
    tmux.wait_for("n", &["4 Runs", "no runs yet"]);
    newcomer_reads_the_runs_keys(&tmux, "n");

    let short = newcomer_launches_in_the_tui(&tmux, "n", home.path());
    let runs = newcomer_launch(home.path(), short);
    tmux.wait_until("n", 30, "the four runs", |s| s.contains(" Runs 4 "), |_| None);
    newcomer_watches_progress(&tmux, "n", &runs);
    newcomer_stops_two_selected_runs(&tmux, "n", &runs);
    newcomer_reads_the_full_log(&tmux, "n", &runs);
    newcomer_sees_an_honest_leaderboard(&tmux, "n");
    newcomer_evaluates_the_finished_run(&tmux, "n", &runs);

    tmux.keys("n", "q");
    assert_eq!(tmux.wait_exit("n"), "0");
}
