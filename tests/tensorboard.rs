//! TensorBoard event files: the trainer's metrics writer (`RunFiles`) writes them beside metrics.jsonl, and
//! the real tensorboard package (its EventMultiplexer, what `tensorboard --logdir <home>/runs` uses) reads
//! every scalar back equal to the metrics lines and the result, also after a torn record at the file's end.

use medxfer::runs::record::{MetricLine, RunResult, Task};
use medxfer::runs::tensorboard;
use medxfer::train::files::RunFiles;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("MEDXFER_TEST_PYTHON").expect(
        "MEDXFER_TEST_PYTHON is not set: source scripts/torch-env (the Makefile does) to get the Python reference",
    )
}

const READ: &str = r#"
import json, sys
try:
    from tensorboard.backend.event_processing import event_multiplexer
except ImportError as e:
    sys.exit(f"the Python package tensorboard is missing ({e}): run scripts/setup-libtorch (test_refs pins it)")
m = event_multiplexer.EventMultiplexer()
m.AddRunsFromDirectory(sys.argv[1])
m.Reload()
out = {}
for run, tags in m.Runs().items():
    out[run] = {t: [[e.step, e.value] for e in m.Scalars(run, t)] for t in tags["scalars"]}
print(json.dumps(out))
"#;

/// run name -> tag -> [(step, value)], as TensorBoard reads `logdir`.
fn tensorboard_scalars(logdir: &Path) -> Value {
    let out = Command::new(python()).args(["-c", READ]).arg(logdir).output().unwrap();
    assert!(out.status.success(), "tensorboard's reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_scalars(read: &Value, tag: &str, want: &[(u64, f64)]) {
    let got = read[tag].as_array().unwrap_or_else(|| panic!("no tag {tag} in {read}"));
    assert_eq!(got.len(), want.len(), "{tag}: {got:?} vs {want:?}");
    for (g, (step, v)) in got.iter().zip(want) {
        assert_eq!(g[0].as_u64(), Some(*step), "{tag}");
        let value = g[1].as_f64().unwrap();
        assert!((value - v).abs() <= 1e-6 * v.abs().max(1.0), "{tag} at {step}: tensorboard {value}, ours {v}");
    }
}

/// The metrics lines a trainer writes for `epochs` (two step lines and an epoch line each); `redo` changes
/// every value, as a redone epoch does.
fn metric_lines(epochs: std::ops::RangeInclusive<u32>, redo: f64) -> Vec<MetricLine> {
    let mut lines = Vec::new();
    for epoch in epochs {
        let e = f64::from(epoch);
        for k in 1..=2u64 {
            let step = u64::from(epoch - 1) * 20 + k * 10;
            lines.push(MetricLine {
                kind: "step".into(),
                epoch,
                step,
                train_loss: Some(1.0 / step as f64 + redo),
                val_loss: None,
                lr: 0.01 / e,
                images_per_s: 40.0 + step as f64,
                elapsed_s: step as f64,
                val: BTreeMap::new(),
                epoch_batches: Some(2),
            });
        }
        lines.push(MetricLine {
            kind: "epoch".into(),
            epoch,
            step: u64::from(epoch) * 20,
            train_loss: Some(0.9 / e + redo),
            val_loss: Some(1.1 / e + redo),
            lr: 0.01 / e,
            images_per_s: 45.0,
            elapsed_s: e * 20.0,
            val: BTreeMap::from([
                ("auc".to_string(), 0.6 + e / 10.0 - redo),
                ("auc_Mass, left".to_string(), 0.5 + e / 20.0 - redo),
            ]),
            epoch_batches: None,
        });
    }
    lines
}

fn result_after(epochs_run: u32) -> RunResult {
    RunResult {
        run_id: "r".into(),
        dataset: "demo-cls".into(),
        init: "random".into(),
        trial: 1,
        seed: 1,
        anno_percent: 100,
        task: Task::Classification,
        metric: "auc".into(),
        mean: 0.81,
        per_class: BTreeMap::from([("Effusion".to_string(), 0.8), ("Mass".to_string(), 0.82)]),
        extra: BTreeMap::new(),
        best_epoch: 2,
        epochs_run,
        conventions: BTreeMap::new(),
    }
}

/// The trainer's writes, through the same `RunFiles` calls: step and epoch lines, then the test result.
fn write_like_the_trainer(dir: &Path) -> (Vec<MetricLine>, RunResult) {
    let files = RunFiles::open(dir).unwrap();
    let lines = metric_lines(1..=2, 0.0);
    for m in &lines {
        files.append_metric(m).unwrap();
    }
    let result = result_after(2);
    files.append_result(&result).unwrap();
    (lines, result)
}

fn event_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(tensorboard::FILE_PREFIX))
        .collect()
}

/// A crash mid-write leaves the first half of a record at the end of the file.
fn tear_the_tail(event_file: &Path) {
    let torn = tensorboard::record(b"\x09\0\0\0\0\0\0\xf0\x3f\x10\x63");
    let mut bytes = std::fs::read(event_file).unwrap();
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    std::fs::write(event_file, &bytes).unwrap();
}

/// Checks every tag of `lines` as TensorBoard reads it for run `id`: each step once, with the line's value.
fn assert_lines(read: &Value, lines: &[MetricLine]) {
    let epochs: Vec<&MetricLine> = lines.iter().filter(|m| m.kind == "epoch").collect();
    let steps: Vec<&MetricLine> = lines.iter().filter(|m| m.kind == "step").collect();
    assert!(!epochs.is_empty() && !epochs[0].val.is_empty());
    let at_epoch = |f: &dyn Fn(&MetricLine) -> f64| -> Vec<(u64, f64)> {
        epochs.iter().map(|m| (u64::from(m.epoch), f(m))).collect()
    };
    assert_scalars(read, "epoch/train_loss", &at_epoch(&|m| m.train_loss.unwrap()));
    assert_scalars(read, "epoch/val_loss", &at_epoch(&|m| m.val_loss.unwrap()));
    assert_scalars(read, "epoch/lr", &at_epoch(&|m| m.lr));
    for name in epochs[0].val.keys() {
        assert_scalars(read, &format!("val/{name}"), &at_epoch(&|m| m.val[name]));
    }
    let step_losses: Vec<(u64, f64)> = steps.iter().map(|m| (m.step, m.train_loss.unwrap())).collect();
    assert_scalars(read, "train/loss_step", &step_losses);
}

fn assert_result(read: &Value, result: &RunResult) {
    let last = u64::from(result.epochs_run);
    assert_scalars(read, &format!("test/{}", result.metric), &[(last, result.mean)]);
    for (class, v) in &result.per_class {
        assert_scalars(read, &format!("test/{}/{class}", result.metric), &[(last, *v)]);
    }
}

#[test]
fn run_scalars_read_back_in_tensorboard_also_with_a_torn_tail() {
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let id = "20261126-080000-demo-cls-random-t1";
    let dir = runs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let (lines, result) = write_like_the_trainer(&dir);
    let jsonl = medxfer::train::files::read_epoch_lines(&dir).unwrap();
    assert_eq!(jsonl.len(), 2, "metrics.jsonl is written as before");
    let check = |read: &Value| {
        assert_lines(&read[id], &lines);
        assert_result(&read[id], &result);
    };
    check(&tensorboard_scalars(&runs));

    let events = event_files(&dir);
    assert_eq!(events.len(), 1, "one event file per trainer process: {events:?}");
    tear_the_tail(&events[0]);
    check(&tensorboard_scalars(&runs));
}

#[test]
fn a_resumed_run_shows_each_redone_epoch_once_in_tensorboard() {
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let id = "20261126-090000-demo-cls-random-t1";
    let dir = runs.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    // The first trainer wrote epochs 1 to 3, then crashed mid-write before epoch 3's checkpoint.
    let first = RunFiles::open(&dir).unwrap();
    for m in metric_lines(1..=3, 0.0) {
        first.append_metric(&m).unwrap();
    }
    tear_the_tail(&event_files(&dir)[0]);

    // The resumed trainer starts from the checkpoint after epoch 2 and redoes epoch 3 with other values.
    let resumed = RunFiles::open(&dir).unwrap();
    let (lines_dropped, events_dropped) = resumed.truncate_to_epoch(2).unwrap();
    let redone = metric_lines(3..=4, 0.25);
    for m in &redone {
        resumed.append_metric(m).unwrap();
    }
    let result = result_after(4);
    resumed.append_result(&result).unwrap();

    let mut want = metric_lines(1..=2, 0.0);
    want.extend(redone);
    let epochs: Vec<u32> = medxfer::train::files::read_epoch_lines(&dir).unwrap().iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, vec![1, 2, 3, 4], "metrics.jsonl");
    let read = tensorboard_scalars(&runs);
    assert_lines(&read[id], &want);
    assert_result(&read[id], &result);
    assert_eq!((lines_dropped, events_dropped), (3, 3), "epoch 3's two step lines and its epoch line");
}
