//! `medxfer train --run DIR` end to end with the real binary on the demo datasets at small resolution
//! on CPU: learning, segmentation, stop/kill/resume, a corrupt image, NaN loss, reproducibility.

use medxfer::runs::record::{DataSpec, DeviceSpec, Hyper, MetricLine, RunResult, RunSpec, State, Status, Task};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn spec(dataset: &str, task: Task, epochs: u32, batch_size: usize, anno_percent: u32) -> RunSpec {
    let mut hyper = Hyper::study_defaults(task);
    (hyper.epochs, hyper.batch_size, hyper.test_batch_size) = (epochs, batch_size, batch_size);
    RunSpec {
        seed: 3,
        data: DataSpec { image_size: 32, workers: 2, anno_percent, ..DataSpec::default() },
        hyper,
        device: DeviceSpec { threads: 2, ..DeviceSpec::default() },
        ..RunSpec::study(&format!("test-{dataset}"), dataset, task, "random")
    }
}

/// A home and a run folder holding `spec`.
fn run_dir(home: &Path, spec: &RunSpec) -> PathBuf {
    let dir = home.join("runs").join(&spec.id);
    std::fs::create_dir_all(&dir).unwrap();
    spec.save(&dir).unwrap();
    dir
}

fn command(home: &Path, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
    c.args(["train", "--run"]).arg(dir).env("MEDXFER_HOME", home);
    c
}

fn train(home: &Path, dir: &Path) -> Output {
    command(home, dir).output().unwrap()
}

fn spawn(home: &Path, dir: &Path) -> Child {
    command(home, dir).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
}

fn epoch_lines(dir: &Path) -> Vec<MetricLine> {
    medxfer::train::files::read_epoch_lines(dir).unwrap()
}

fn wait_for(what: &str, deadline_s: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(deadline_s);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_finished(out: &Output, dir: &Path) -> RunResult {
    let status = Status::load(dir).unwrap();
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert_eq!(status.state, State::Finished, "{status:?}");
    RunResult::load(dir).unwrap()
}

#[test]
fn classification_from_random_init_learns_the_findings() {
    let home = tempfile::tempdir().unwrap();
    let mut spec = spec("demo-cls", Task::Classification, 4, 8, 100);
    spec.hyper.lr = 1e-3;
    let dir = run_dir(home.path(), &spec);
    let out = train(home.path(), &dir);
    let result = assert_finished(&out, &dir);
    // An untrained network scores a mean AUC of about 0.5 ± 0.03 over four findings on 100 test images;
    // the issue asks a few epochs to reach 0.9.
    eprintln!("mean test AUC {:.4} {:?}", result.mean, result.per_class);
    assert!(result.mean >= 0.9, "mean test AUC {} < 0.9: {:?}", result.mean, result.per_class);
    assert_eq!(result.per_class.len(), 4);
    assert_eq!(result.conventions["tta"], "tencrop");
    let epochs: Vec<u32> = epoch_lines(&dir).iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, (1..=result.epochs_run).collect::<Vec<_>>());
    assert!(dir.join("best.safetensors").exists() && dir.join("last.ckpt").exists());

    // Step lines carry the epoch's batch count, so a reader can show progress inside an epoch.
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let steps: Vec<MetricLine> =
        text.lines().map(|l| serde_json::from_str::<MetricLine>(l).unwrap()).filter(|m| m.kind == "step").collect();
    assert!(!steps.is_empty());
    let batches = steps[0].epoch_batches.expect("a step line names the batches per epoch");
    assert!(batches > 0 && steps.iter().all(|m| m.epoch_batches == Some(batches)), "{steps:?}");
    let log = std::fs::read_to_string(dir.join("train.log")).unwrap();
    let best = Status::load(&dir).unwrap().best_epoch.unwrap();
    assert!(log.contains(&format!("(best epoch {best})")), "{log}");
    assert!(log.contains(&format!("test auc: mean {:.5}; ", result.mean)), "{log}");
    assert!(!log.contains("Some(") && !log.contains("{\""), "no debug formatting in the log:\n{log}");
}

#[test]
fn segmentation_beats_an_empty_prediction() {
    let home = tempfile::tempdir().unwrap();
    let dir = run_dir(home.path(), &spec("demo-seg", Task::Segmentation, 3, 8, 100));
    let out = train(home.path(), &dir);
    let result = assert_finished(&out, &dir);
    // Every demo image has lungs, so an empty prediction scores Dice 0.
    assert!(result.mean > 0.5, "test Dice {} {:?}", result.mean, result.extra);
    assert_eq!(result.conventions["empty_mask_dice"], 1.0);
    assert!(result.extra.contains_key("iou"));
}

#[test]
fn stop_kill_and_resume_give_every_epoch_once() {
    let home = tempfile::tempdir().unwrap();
    let dir = run_dir(home.path(), &spec("demo-cls", Task::Classification, 4, 16, 40));
    let ckpt = dir.join("last.ckpt");

    let mut child = spawn(home.path(), &dir);
    wait_for("a step line", 120, || std::fs::read_to_string(dir.join("metrics.jsonl")).is_ok_and(|t| !t.is_empty()));
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success(), "SIGTERM must exit 0");
    let status = Status::load(&dir).unwrap();
    assert_eq!(status.state, State::Stopped, "{status:?}");
    assert!(ckpt.exists(), "a stopped run keeps last.ckpt");

    let mut child = spawn(home.path(), &dir);
    wait_for("epoch 2", 120, || epoch_lines(&dir).iter().any(|m| m.epoch >= 2));
    child.kill().unwrap(); // SIGKILL, wherever it is
    child.wait().unwrap();

    let out = train(home.path(), &dir);
    let result = assert_finished(&out, &dir);
    let epochs: Vec<u32> = epoch_lines(&dir).iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, (1..=result.epochs_run).collect::<Vec<_>>(), "every epoch exactly once");
    assert_eq!(result.epochs_run, 4);
}

#[test]
fn a_corrupt_image_fails_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let (cls, _) = medxfer::data::demo::write(&home.path().join("data")).unwrap();
    let images = cls.join("images");
    let victim = std::fs::read_dir(&images).unwrap().next().unwrap().unwrap().path();
    std::fs::write(&victim, b"not an image at all").unwrap();
    let mut s = spec("demo-cls", Task::Classification, 1, 16, 100);
    s.data.root = Some(cls.clone());
    let dir = run_dir(home.path(), &s);
    let out = train(home.path(), &dir);
    assert!(!out.status.success());
    let status = Status::load(&dir).unwrap();
    assert_eq!(status.state, State::Failed);
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let reason = status.reason.unwrap_or_default();
    assert!(reason.contains(&name), "{reason}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&name));
}

#[test]
fn a_diverging_loss_fails_with_its_step() {
    let home = tempfile::tempdir().unwrap();
    let mut s = spec("demo-cls", Task::Classification, 2, 16, 40);
    (s.hyper.optimizer, s.hyper.lr, s.hyper.momentum) = ("sgd".into(), 1e30, 0.0);
    let dir = run_dir(home.path(), &s);
    let out = train(home.path(), &dir);
    assert!(!out.status.success());
    let status = Status::load(&dir).unwrap();
    assert_eq!(status.state, State::Failed);
    let reason = status.reason.unwrap_or_default();
    assert!(reason.contains("loss became") && reason.contains("step"), "{reason}");
}

#[test]
fn the_same_seed_gives_identical_metrics() {
    let home = tempfile::tempdir().unwrap();
    let mut lines = vec![];
    for id in ["same-a", "same-b"] {
        let mut s = spec("demo-seg", Task::Segmentation, 2, 8, 50);
        s.id = id.into();
        let dir = run_dir(home.path(), &s);
        assert_finished(&train(home.path(), &dir), &dir);
        let l: Vec<_> = epoch_lines(&dir).into_iter().map(|m| (m.train_loss, m.val_loss, m.val)).collect();
        lines.push(l);
    }
    assert_eq!(lines[0].len(), 2);
    assert_eq!(lines[0], lines[1]);
}

#[test]
fn bf16_autocast_and_channels_last_train_on_cpu_and_save_plain_weights() {
    let home = tempfile::tempdir().unwrap();
    let mut s = spec("demo-cls", Task::Classification, 1, 16, 20);
    (s.device.precision, s.device.memory_format) = ("bf16".into(), "nhwc".into());
    let dir = run_dir(home.path(), &s);
    let result = assert_finished(&train(home.path(), &dir), &dir);
    assert!(result.mean.is_finite() && epoch_lines(&dir)[0].train_loss.is_some_and(f64::is_finite));
    // The saved weights are plain NCHW float32, whatever the run trained in.
    let weights = medxfer::model::read_tensors(&dir.join("best.safetensors")).unwrap();
    let conv1 = &weights["conv1.weight"];
    assert_eq!((conv1.size(), conv1.kind()), (vec![64, 3, 7, 7], tch::Kind::Float));
    assert!(conv1.is_contiguous());
}
