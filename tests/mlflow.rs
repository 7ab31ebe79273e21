//! `medxfer runs export --mlflow URL` against a real `mlflow server` (SQLite backend, 127.0.0.1, started
//! once by this test binary), read back with MLflow's own MlflowClient (one Python process for every read): experiment per dataset, run per
//! run, params, tags, metric histories; a second export updates the same runs and duplicates nothing.

use medxfer::runs::record::{DataSpec, RunResult, RunSpec, State, Status, Task};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("MEDXFER_TEST_PYTHON").expect(
        "MEDXFER_TEST_PYTHON is not set: source scripts/torch-env (the Makefile does) to get the Python reference",
    )
}

/// The server's process group, ended when the test ends (passing or not).
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let db = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
    let mut cmd = Command::new(python());
    cmd.args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--workers", "1", "--backend-store-uri", &db])
        .args(["--port", &port.to_string(), "--default-artifact-root"])
        .arg(dir.path().join("artifacts"))
        // The job runner (on by default in MLflow 3) starts seven more Python processes, each importing
        // mlflow, for server-side jobs that tracking never uses: most of this test's CPU under load.
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().unwrap();
    let mut server = Server { child, url: format!("http://127.0.0.1:{port}"), _dir: dir };
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if http.get(format!("{}/health", server.url)).send().is_ok_and(|r| r.status().is_success()) {
            return server;
        }
        let log = || std::fs::read_to_string(server._dir.path().join("server.log")).unwrap_or_default();
        if let Some(status) = server.child.try_wait().unwrap() {
            let log = log();
            if log.contains("No module named mlflow") {
                panic!(
                    "the Python package mlflow is missing in {} (scripts/setup-libtorch's test_refs pins it)",
                    python()
                );
            }
            panic!("mlflow server exited ({status}) before answering: {log}");
        }
        assert!(Instant::now() < deadline, "mlflow server did not answer /health within 120 s: {}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Answers each stdin line `[url, experiment, ...]` with one JSON line: experiment -> medxfer run id -> the
/// MLflow run's status, params, tags and metric histories.
const READ: &str = r#"
import json, sys
from mlflow.tracking import MlflowClient
for request in sys.stdin:
    url, *names = json.loads(request)
    c = MlflowClient(tracking_uri=url)
    out = {}
    for name in names:
        exp = c.get_experiment_by_name(name)
        runs = {}
        for r in c.search_runs([exp.experiment_id]) if exp else []:
            runs[r.data.tags["medxfer.run_id"]] = {
                "status": r.info.status,
                "params": r.data.params,
                "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.") or k == "mlflow.runName"},
                "metrics": {k: sorted([m.step, m.value, m.timestamp] for m in c.get_metric_history(r.info.run_id, k))
                            for k in r.data.metrics},
            }
        out[name] = runs
    print(json.dumps(out), flush=True)
"#;

/// One Python process with MlflowClient for every read-back (mlflow's import is the slow part), started
/// before the server so that the two imports overlap.
struct Reader {
    child: Child,
    answers: std::io::BufReader<std::process::ChildStdout>,
    stderr: tempfile::NamedTempFile,
}

impl Reader {
    fn start() -> Reader {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(python())
            .args(["-c", READ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .unwrap();
        let answers = std::io::BufReader::new(child.stdout.take().unwrap());
        Reader { child, answers, stderr }
    }

    fn read_back(&mut self, url: &str, experiments: &[&str]) -> Value {
        use std::io::{BufRead, Write};
        let request = json!(std::iter::once(url).chain(experiments.iter().copied()).collect::<Vec<_>>());
        let stdin = self.child.stdin.as_mut().unwrap();
        let sent = writeln!(stdin, "{request}").and_then(|()| stdin.flush());
        let mut line = String::new();
        let read = self.answers.read_line(&mut line);
        if sent.is_err() || !matches!(read, Ok(n) if n > 0) {
            let _ = self.child.wait();
            panic!("MlflowClient failed: {}", std::fs::read_to_string(self.stderr.path()).unwrap_or_default());
        }
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_run(runs: &Path, id: &str, dataset: &str, init: &str, sweep: Option<&str>, epochs: u32) -> RunSpec {
    let dir = runs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let task = Task::Classification;
    let spec = RunSpec {
        trial: 2,
        seed: 2,
        sweep: sweep.map(str::to_string),
        data: DataSpec { anno_percent: 50, ..DataSpec::default() },
        ..RunSpec::study(id, dataset, task, init)
    };
    spec.save(&dir).unwrap();
    Status::new(State::Running).save(&dir).unwrap();
    for epoch in 1..=epochs {
        epoch_line(&dir, epoch);
    }
    spec
}

fn epoch_line(dir: &Path, epoch: u32) {
    use std::io::Write;
    let e = f64::from(epoch);
    let line = json!({"kind": "step", "epoch": epoch, "step": epoch * 10 - 5, "train_loss": 2.0 / e, "lr": 0.01,
                      "images_per_s": 50.0, "elapsed_s": e * 10.0 - 5.0});
    let end = json!({"kind": "epoch", "epoch": epoch, "step": epoch * 10, "train_loss": 1.0 / e, "val_loss": 1.5 / e,
                     "lr": 0.01, "images_per_s": 50.0, "elapsed_s": e * 10.0, "val": {"auc": 0.5 + e / 10.0}});
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("metrics.jsonl")).unwrap();
    writeln!(f, "{line}\n{end}").unwrap();
}

fn finish(runs: &Path, spec: &RunSpec, mean: f64) {
    let dir = runs.join(&spec.id);
    let result = RunResult {
        run_id: spec.id.clone(),
        dataset: spec.dataset.clone(),
        init: spec.init.clone(),
        trial: spec.trial,
        seed: spec.seed,
        anno_percent: spec.data.anno_percent,
        task: spec.task,
        metric: "auc".into(),
        mean,
        per_class: BTreeMap::from([("Mass, left".to_string(), mean + 0.01)]),
        extra: BTreeMap::new(),
        best_epoch: 3,
        epochs_run: 3,
        conventions: BTreeMap::new(),
    };
    result.save(&dir).unwrap();
    Status::new(State::Finished).save(&dir).unwrap();
}

fn export(home: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env_clear()
        .env("MEDXFER_HOME", home)
        .args(["runs", "export"])
        .args(args)
        .output()
        .unwrap()
}

fn history(run: &Value, key: &str) -> Vec<(u64, f64)> {
    run["metrics"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no metric {key}: {run}"))
        .iter()
        .map(|m| (m[0].as_u64().unwrap(), m[1].as_f64().unwrap()))
        .collect()
}

#[test]
fn runs_export_to_a_real_mlflow_server_and_reexport_updates_them() {
    let mut reader = Reader::start();
    let server = start_server();
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let a = write_run(&runs, "20261126-081200-demo-cls-imagenet-t2", "demo-cls", "imagenet", Some("s1"), 2);
    let b = write_run(&runs, "20261126-081200-demo-cls-random-t2", "demo-cls", "random", Some("s1"), 2);
    let c = write_run(&runs, "20261126-091200-demo-seg-random-t2", "demo-seg", "random", None, 1);
    finish(&runs, &b, 0.61);

    let out = export(home.path(), &["--mlflow", &server.url, "--sweep", "s1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done.as_array().unwrap().len(), 2);
    assert!(done.as_array().unwrap().iter().all(|e| e["created"] == true));

    let read = reader.read_back(&server.url, &["demo-cls", "demo-seg"]);
    assert_eq!(read["demo-seg"], json!({}), "only the sweep's runs are exported");
    let ra = &read["demo-cls"][&a.id];
    assert_eq!(ra["status"], "RUNNING");
    assert_eq!(ra["tags"]["init"], "imagenet");
    assert_eq!(ra["tags"]["dataset"], "demo-cls");
    assert_eq!(ra["tags"]["trial"], "2");
    assert_eq!(ra["tags"]["anno_percent"], "50");
    assert_eq!(ra["tags"]["mlflow.runName"], a.id.as_str());
    assert_eq!(ra["params"]["hyper.lr"], a.hyper.lr.to_string().as_str());
    assert_eq!(ra["params"]["data.anno_percent"], "50");
    assert_eq!(ra["params"]["init"], "imagenet");
    assert_eq!(history(ra, "val_loss"), [(1, 1.5), (2, 0.75)]);
    assert_eq!(history(ra, "val_auc"), [(1, 0.6), (2, 0.7)]);
    assert_eq!(history(ra, "train_loss_step"), [(5, 2.0), (15, 1.0)]);
    let rb = &read["demo-cls"][&b.id];
    assert_eq!(rb["status"], "FINISHED");
    assert_eq!(history(rb, "test_auc"), [(3, 0.61)]);
    assert_eq!(history(rb, "test_auc_Mass_ left"), [(3, 0.62)]);

    // One more epoch and the end of run a, then everything again: same MLflow runs, nothing twice.
    epoch_line(&runs.join(&a.id), 3);
    finish(&runs, &a, 0.7);
    let out = export(home.path(), &["--mlflow", &server.url, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created: BTreeMap<String, bool> = done
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["run_id"].as_str().unwrap().to_string(), e["created"].as_bool().unwrap()))
        .collect();
    assert_eq!(created, BTreeMap::from([(a.id.clone(), false), (b.id.clone(), false), (c.id.clone(), true)]));
    let again = reader.read_back(&server.url, &["demo-cls", "demo-seg"]);
    assert_eq!(again["demo-cls"].as_object().unwrap().len(), 2);
    assert_eq!(again["demo-seg"].as_object().unwrap().len(), 1);
    let ra = &again["demo-cls"][&a.id];
    assert_eq!(ra["status"], "FINISHED");
    assert_eq!(history(ra, "val_loss"), [(1, 1.5), (2, 0.75), (3, 0.5)]);
    assert_eq!(history(ra, "test_auc"), [(3, 0.7)]);
    assert_eq!(again["demo-cls"][&b.id]["metrics"], read["demo-cls"][&b.id]["metrics"]);

    let out = export(home.path(), &["--mlflow", "ftp://127.0.0.1/x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"ftp://127.0.0.1/x\" is not an http:// or https:// URL"));
}
