//! `medxfer eval` with the real binary: a finished run's best weights scored again equal the trainer's own test
//! phase (ten-crop AUC for classification; both Dice scores for segmentation), written as eval-<dataset>.json;
//! a run without weights is refused in one sentence.

use medxfer::runs::record::{DataSpec, DeviceSpec, Hyper, RunResult, RunSpec, Snapshot, Task};
use std::path::Path;
use std::process::{Command, Output};

fn medxfer(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medxfer")).args(args).env("MEDXFER_HOME", home).output().unwrap()
}

fn trained(home: &Path, dataset: &str, task: Task) -> RunResult {
    let mut hyper = Hyper::study_defaults(task);
    (hyper.epochs, hyper.batch_size, hyper.test_batch_size) = (1, 8, 16);
    let spec = RunSpec {
        id: format!("eval-{dataset}"),
        dataset: dataset.into(),
        task,
        init: "random".into(),
        trial: 1,
        seed: 5,
        sweep: None,
        executor: "local".into(),
        data: DataSpec { image_size: 32, workers: 2, anno_percent: 25, ..DataSpec::default() },
        hyper,
        device: DeviceSpec { threads: 2, ..DeviceSpec::default() },
        snapshot: Snapshot::default(),
    };
    let dir = home.join("runs").join(&spec.id);
    std::fs::create_dir_all(&dir).unwrap();
    spec.save(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["train", "--run"])
        .arg(&dir)
        .env("MEDXFER_HOME", home)
        .output()
        .unwrap();
    assert!(out.status.success(), "train failed: {}", String::from_utf8_lossy(&out.stderr));
    RunResult::load(&dir).unwrap()
}

#[test]
fn eval_of_a_finished_run_repeats_its_test_phase() {
    let home = tempfile::tempdir().unwrap();
    for (dataset, task) in [("demo-cls", Task::Classification), ("demo-seg", Task::Segmentation)] {
        let trained = trained(home.path(), dataset, task);
        let id = format!("eval-{dataset}");
        let out = medxfer(home.path(), &["eval", "--run", &id, "--json"]);
        assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
        let printed: RunResult = serde_json::from_slice(&out.stdout).unwrap();
        let file = home.path().join("runs").join(&id).join(format!("eval-{dataset}.json"));
        let written: RunResult = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(printed, written);
        assert_eq!(printed, trained, "{dataset}: eval differs from the trainer's test phase");
        if task == Task::Classification {
            assert_eq!(printed.conventions["tta"], "tencrop");
            assert!(!printed.per_class.is_empty());
        } else {
            assert!(printed.extra.contains_key("dice_global") && printed.extra.contains_key("dice_per_image"));
        }
    }
    let none = medxfer(home.path(), &["eval", "--run", "no-such-run"]);
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(!none.status.success() && err.contains("no-such-run") && err.lines().count() == 1, "{err}");
}
