//! The leaderboard end to end: statistics against scipy/numpy, exports parsed back, and the real binary
//! on a home of hand-written run folders (ranking, convention groups, a malformed metrics line).

use medxfer::runs::leaderboard::{self, Options};
use medxfer::runs::record::{DataSpec, RunResult, RunSpec, State, Status, Task};
use medxfer::runs::stats::{self, StdKind};
use medxfer::runs::{export, store};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("MEDXFER_TEST_PYTHON").expect(
        "MEDXFER_TEST_PYTHON is not set: source scripts/torch-env (the Makefile does) to get the Python reference",
    )
}

fn run_python(script: &str, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn close(ours: Option<f64>, reference: &Value, tol: f64, what: &str) {
    match (ours, reference.as_f64()) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= tol * b.abs().max(1e-3), "{what}: ours {a} scipy {b}"),
        (None, None) => {}
        (a, _) => panic!("{what}: ours {a:?} scipy {reference}"),
    }
}

const SCIPY: &str = r#"
import json, sys, warnings, numpy as np, scipy.stats as st
warnings.simplefilter("ignore")
cases = json.load(sys.stdin)
def num(x):
    x = float(x)
    return None if np.isnan(x) else x
out = {"ppf": [num(st.t.ppf(p, df)) for p, df in cases["ppf"]], "samples": []}
for a, b in cases["pairs"]:
    n = len(a)
    ci = None
    if n >= 2:
        lo, hi = st.t.interval(0.95, n - 1, loc=np.mean(a), scale=st.sem(a))
        ci = [num(lo), num(hi)]
    out["samples"].append({
        "mean": num(np.mean(a)), "pop": num(np.std(a)), "sample": num(np.std(a, ddof=1)) if n > 1 else None,
        "ci": ci, "p": num(st.ttest_ind(a, b, equal_var=False).pvalue) if n > 1 and len(b) > 1 else None})
print(json.dumps(out))
"#;

#[test]
fn statistics_equal_scipy_and_numpy() {
    let ppf: Vec<(f64, f64)> = vec![
        (0.975, 1.0),
        (0.975, 2.0),
        (0.975, 4.0),
        (0.975, 9.0),
        (0.995, 3.0),
        (0.025, 7.0),
        (0.9, 2.5),
        (0.975, 30.0),
        (0.975, 1000.0),
        (0.6, 1.0),
    ];
    let pairs: Vec<(Vec<f64>, Vec<f64>)> = vec![
        (vec![0.8170, 0.8155, 0.8190], vec![0.8031, 0.8040, 0.8025]),
        (vec![0.95, 0.96, 0.94, 0.97, 0.955], vec![0.89, 0.87, 0.91, 0.90, 0.88]),
        // equal variances
        (vec![1.0, 2.0, 3.0], vec![2.0, 3.0, 4.0]),
        (vec![0.5, 0.7], vec![0.5, 0.7]),
        // one constant side
        (vec![1.0, 1.0, 1.0], vec![2.0, 3.0, 2.0]),
        // very different sizes and spreads
        (vec![0.6, 0.61, 0.59, 0.62, 0.58, 0.6, 0.63], vec![0.7, 0.5]),
        // n = 1
        (vec![0.9123], vec![0.9, 0.91]),
    ];
    let input = json!({"ppf": ppf, "pairs": pairs}).to_string();
    let reference: Value = serde_json::from_str(&run_python(SCIPY, &input)).unwrap();
    for (i, (p, df)) in ppf.iter().enumerate() {
        close(stats::t_quantile(*p, *df), &reference["ppf"][i], 1e-9, &format!("t.ppf({p}, {df})"));
    }
    for (i, (a, b)) in pairs.iter().enumerate() {
        let r = &reference["samples"][i];
        close(stats::mean(a), &r["mean"], 1e-12, &format!("mean {i}"));
        close(stats::std(a, 0), &r["pop"], 1e-10, &format!("np.std {i}"));
        close(stats::std(a, 1), &r["sample"], 1e-10, &format!("np.std ddof=1 {i}"));
        let ci = stats::confidence_interval(a, 0.95);
        if stats::std(a, 1) == Some(0.0) {
            // scipy gives NaN for a constant sample (scale 0); ours is the zero-width interval at the mean.
            assert_eq!(ci, Some((a[0], a[0])), "constant sample {i}");
        } else {
            close(ci.map(|c| c.0), &r["ci"][0], 1e-9, &format!("ci low {i}"));
            close(ci.map(|c| c.1), &r["ci"][1], 1e-9, &format!("ci high {i}"));
        }
        close(stats::welch_p_value(a, b), &r["p"], 1e-8, &format!("welch p {i}"));
        let s = stats::summarize(a, StdKind::Population).unwrap();
        close(s.std, &r["pop"], 1e-10, &format!("summary std {i}"));
    }
}

fn result(run_id: &str, init: &str, trial: u32, anno: u32, mean: f64, tta: &str) -> RunResult {
    RunResult {
        run_id: run_id.into(),
        dataset: "demo-cls".into(),
        init: init.into(),
        trial,
        seed: u64::from(trial),
        anno_percent: anno,
        task: Task::Classification,
        metric: "auc".into(),
        mean,
        per_class: BTreeMap::from([("Effusion".to_string(), mean - 0.01), ("Mass, left".to_string(), mean + 0.01)]),
        extra: BTreeMap::new(),
        best_epoch: 3,
        epochs_run: 5,
        conventions: BTreeMap::from([
            ("tta".to_string(), json!(tta)),
            ("split_hash".to_string(), json!("abc")),
            ("uncertain_policy".to_string(), Value::Null),
        ]),
    }
}

/// Writes a complete run folder the way the trainer would, through the shared records.
fn write_run(runs: &Path, r: &RunResult) {
    let dir = runs.join(&r.run_id);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = RunSpec {
        trial: r.trial,
        seed: r.seed,
        data: DataSpec { anno_percent: r.anno_percent, ..DataSpec::default() },
        ..RunSpec::study(&r.run_id, &r.dataset, r.task, &r.init)
    };
    spec.save(&dir).unwrap();
    let mut status = Status::new(State::Finished);
    status.epoch = r.epochs_run;
    status.save(&dir).unwrap();
    r.save(&dir).unwrap();
}

fn sample_results() -> Vec<RunResult> {
    let mut rs = Vec::new();
    let inits = [("imagenet", [0.80, 0.81, 0.82]), ("swav", [0.85, 0.86, 0.87]), ("random", [0.70, 0.72, 0.71])];
    for (init, values) in inits {
        for (t, v) in values.iter().enumerate() {
            let t = t as u32 + 1;
            rs.push(result(&format!("20261126-080000-demo-cls-{init}-t{t}"), init, t, 100, *v, "tencrop"));
            rs.push(result(&format!("20261126-090000-demo-cls-{init}-p10-t{t}"), init, t, 10, v - 0.1, "tencrop"));
        }
    }
    // Same init, different convention: must form its own group.
    rs.push(result("20261126-100000-demo-cls-byol-t1", "byol", 1, 100, 0.99, "none"));
    rs.push(result("20261126-100000-demo-cls-byol-t2", "byol", 2, 100, 0.98, "none"));
    rs
}

#[test]
fn exports_parse_back() {
    let lb =
        leaderboard::build(&sample_results(), "demo-cls", &Options { published: false, ..Options::default() }).unwrap();
    let csv = export::csv(&lb);
    let parsed = run_python("import csv,sys,json; print(json.dumps(list(csv.DictReader(sys.stdin))))", &csv);
    let rows: Vec<BTreeMap<String, String>> = serde_json::from_str(&parsed).unwrap();
    assert_eq!(rows.len(), 3 + 3 + 1);
    assert_eq!(rows[0].keys().len(), export::CSV_HEADER.len());
    let swav = rows.iter().find(|r| r["init"] == "swav" && r["anno_percent"] == "100").unwrap();
    assert_eq!((swav["rank"].as_str(), swav["n"].as_str(), swav["mean_pct"].as_str()), ("1", "3", "86.0000"));
    let conventions: Value = serde_json::from_str(&swav["conventions"]).unwrap();
    assert_eq!(conventions["tta"], "tencrop");
    assert_eq!(swav["differs"], "tta=\"tencrop\"");

    let tex = export::latex(&lb);
    assert_eq!(tex.matches("\\begin{tabular}").count(), 3);
    assert_eq!(tex.matches("\\end{tabular}").count(), 3);
    for line in tex.lines().filter(|l| l.ends_with("\\\\")) {
        assert_eq!(line.matches(" & ").count(), 4, "{line}");
        assert_eq!(line.matches('$').count() % 2, 0, "{line}");
    }
    assert!(tex.contains("Mean $\\pm$ std (\\%)"));

    let md = export::markdown(&lb);
    let table_lines: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert!(table_lines.iter().all(|l| l.matches('|').count() == 7), "{md}");
}

fn medxfer(home: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env_clear()
        .env("MEDXFER_HOME", home)
        .current_dir("/")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn the_binary_ranks_groups_and_skips_what_is_broken() {
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    for r in sample_results() {
        write_run(&runs, &r);
    }
    std::fs::create_dir_all(runs.join("not-a-run")).unwrap();
    let first = runs.join("20261126-080000-demo-cls-swav-t1");
    let good = r#"{"kind":"epoch","epoch":5,"step":50,"train_loss":0.3,"val_loss":0.4,"lr":0.001,"images_per_s":9.0,"elapsed_s":60.0,"val":{"auc":0.86}}"#;
    std::fs::write(first.join("metrics.jsonl"), format!("{good}\n{{\"kind\":\"epo")).unwrap();

    let out = medxfer(home.path(), &["results", "--dataset", "demo-cls", "--format", "json", "--published"]);
    let lb: Value = serde_json::from_slice(&out.stdout).unwrap();
    let groups = lb["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "100% tencrop, 100% none, 10% tencrop");
    let main = groups.iter().find(|g| g["anno_percent"] == 100 && g["conventions"]["tta"] == "tencrop").unwrap();
    let order: Vec<&str> = main["rows"].as_array().unwrap().iter().map(|r| r["init"].as_str().unwrap()).collect();
    assert_eq!(order, ["swav", "imagenet", "random"]);
    assert!(!order.contains(&"byol"), "byol's different TTA keeps it out of this ranking");
    assert_eq!(main["differs"], json!(["tta=\"tencrop\""]));
    let swav = &main["rows"][0];
    assert_eq!(swav["trials"].as_array().unwrap().len(), 3);
    assert_eq!(swav["trials"][0]["value"], 0.85);
    assert!(swav["p_value"].as_f64().unwrap() < 0.05);
    assert_eq!(swav["significant"], true);
    assert_eq!(main["rows"][1]["p_value"], Value::Null);
    let byol = groups.iter().find(|g| g["conventions"]["tta"] == "none").unwrap();
    assert_eq!(byol["rows"][0]["rank"], 1);
    assert_eq!(byol["baseline_present"], false);
    assert_eq!(lb["label_efficiency"][0]["anno_percents"], json!([10, 100]));
    assert!(lb["published"].as_array().unwrap().is_empty(), "the study has no demo-cls numbers");
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(warn.contains("not-a-run"), "{warn}");

    let table = medxfer(home.path(), &["results", "--dataset", "chestxray14", "--published"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("81.70 ± 0.15") && text.contains("published"), "{text}");

    let out = medxfer(home.path(), &["runs", "ls", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), sample_results().len());
    assert_eq!(list[0]["state"], "finished");

    let out = medxfer(home.path(), &["runs", "show", "20261126-080000-demo-cls-swav-t1", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["skipped_metric_lines"], 0, "the incomplete last line waits, it is not skipped");
    assert_eq!(shown["last_epoch"]["val"]["auc"], 0.86);
    std::fs::write(first.join("metrics.jsonl"), format!("{good}\nnot json\n{good}\n")).unwrap();
    let out = medxfer(home.path(), &["runs", "show", "20261126-080000-demo-cls-swav-t1", "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["skipped_metric_lines"], 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped"));

    let (results, _) = store::load_results(&runs);
    assert_eq!(results.len(), sample_results().len());
}

#[test]
fn runs_logs_prints_the_log_and_follows_it_until_the_run_ends() {
    use std::io::{BufRead, BufReader, Write};
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let r = sample_results().remove(0);
    write_run(&runs, &r);
    let dir = runs.join(&r.run_id);
    Status::new(State::Running).save(&dir).unwrap();
    std::fs::write(dir.join("train.log"), "line 1\n").unwrap();
    let medxfer = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
        c.env("MEDXFER_HOME", home.path()).args(["runs", "logs", &r.run_id]);
        c
    };
    let once = medxfer().output().unwrap();
    assert!(once.status.success());
    assert_eq!(String::from_utf8_lossy(&once.stdout), "line 1\n");

    let mut follow = medxfer().arg("-f").stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "line 1");
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.join("train.log")).unwrap();
    log.write_all(b"line 2\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "line 2", "a following reader sees lines as they are added");
    log.write_all(b"finished\n").unwrap();
    Status::new(State::Finished).save(&dir).unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(rest, ["finished"], "-f prints the last lines and ends with the run");
    assert!(follow.wait().unwrap().success());
}

#[test]
fn one_trial_has_no_spread_and_says_so_in_every_export() {
    let one = [result("20261126-080000-demo-cls-imagenet-t1", "imagenet", 1, 100, 0.91, "tencrop")];
    let two = sample_results();
    let lb = |rs: &[RunResult]| leaderboard::build(rs, "demo-cls", &Options::default()).unwrap();
    for text in [export::markdown(&lb(&one)), export::latex(&lb(&one)), export::table(&lb(&one), false)] {
        assert!(text.contains("91.00 (1 trial)") && !text.contains("91.00 ±") && !text.contains("91.00 $"), "{text}");
    }
    let md = export::markdown(&lb(&two));
    assert!(md.contains("86.00 ± 0.82") && !md.contains("(1 trial)"), "{md}");
}
