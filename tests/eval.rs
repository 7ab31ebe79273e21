//! `medxfer eval` with the real binary: a finished run's best weights scored again equal the trainer's own test
//! phase (ten-crop AUC for classification; both Dice scores for segmentation), written as eval-<dataset>.json;
//! a run without weights is refused in one sentence; a converted zoo model (real torch.save, `zoo import`) is
//! scored on the demo's test split with its own weights.

use medxfer::runs::record::{DataSpec, DeviceSpec, Hyper, RunResult, RunSpec, Task};
use std::path::Path;
use std::process::{Command, Output};

fn medxfer(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medxfer")).args(args).env("MEDXFER_HOME", home).output().unwrap()
}

fn trained(home: &Path, dataset: &str, task: Task) -> RunResult {
    let mut hyper = Hyper::study_defaults(task);
    (hyper.epochs, hyper.batch_size, hyper.test_batch_size) = (1, 8, 16);
    let spec = RunSpec {
        seed: 5,
        data: DataSpec { image_size: 32, workers: 2, anno_percent: 25, ..DataSpec::default() },
        hyper,
        device: DeviceSpec { threads: 2, ..DeviceSpec::default() },
        ..RunSpec::study(&format!("eval-{dataset}"), dataset, task, "random")
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
        // The second run is asked for by a unique prefix of its id, as every run command takes it.
        let asked = if task == Task::Segmentation { "eval-demo-s" } else { id.as_str() };
        let out = medxfer(home.path(), &["eval", "--run", asked, "--json"]);
        assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
        let printed: RunResult = serde_json::from_slice(&out.stdout).unwrap();
        let file = home.path().join("runs").join(&id).join(format!("eval-{dataset}.json"));
        let written: RunResult = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(printed, written);
        assert_eq!(printed, trained, "{dataset}: eval differs from the trainer's test phase");
        if task == Task::Classification {
            assert_eq!(printed.conventions["tta"], "tencrop");
            assert_eq!(printed.conventions["single_image_batch"], "skip-single-below-64px", "trained at 32 px");
            assert!(!printed.per_class.is_empty());
        } else {
            assert!(printed.extra.contains_key("dice_global") && printed.extra.contains_key("dice_per_image"));
        }
    }
    let none = medxfer(home.path(), &["eval", "--run", "no-such-run"]);
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        !none.status.success() && err.contains("no run \"no-such-run\" under") && err.lines().count() == 1,
        "{err}"
    );
}

/// A random torchvision ResNet50 written by real torch.save, seeded.
fn torch_checkpoint(path: &Path, seed: u32) {
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let script = r#"
import sys, torch, torchvision
torch.manual_seed(int(sys.argv[2]))
torch.save(torchvision.models.resnet50(weights=None).state_dict(), sys.argv[1])
"#;
    let out = Command::new(py).args(["-c", script]).arg(path).arg(seed.to_string()).output().unwrap();
    assert!(out.status.success(), "torch.save failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn eval_of_a_converted_zoo_model_scores_its_weights_on_the_test_split() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("by-hand.pth");
    torch_checkpoint(&source, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["zoo", "import", "inat2021"])
        .arg(&source)
        .env("MEDXFER_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "zoo import failed: {}", String::from_utf8_lossy(&out.stderr));
    let eval = |init: &str| -> RunResult {
        let args = ["eval", "--init", init, "--dataset", "demo-cls", "--set", "image_size=32", "--set", "threads=2"];
        let out = medxfer(home.path(), &[&args[..], &["--json"]].concat());
        assert!(out.status.success(), "eval {init} failed: {}", String::from_utf8_lossy(&out.stderr));
        let printed: RunResult = serde_json::from_slice(&out.stdout).unwrap();
        let file = home.path().join("evals").join(init).join("eval-demo-cls.json");
        let written: RunResult = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(printed, written, "{}", file.display());
        written
    };
    let zoo = eval("inat2021");
    assert_eq!(
        (zoo.init.as_str(), zoo.dataset.as_str(), zoo.task, zoo.metric.as_str()),
        ("inat2021", "demo-cls", Task::Classification, "auc")
    );
    assert_eq!((zoo.best_epoch, zoo.epochs_run, zoo.anno_percent), (0, 0, 100), "no training");
    let labels = medxfer::data::DatasetSpec::load("demo-cls").unwrap().labels;
    assert_eq!(zoo.per_class.keys().cloned().collect::<Vec<_>>(), labels, "every test class, scored");
    assert!(zoo.per_class.values().all(|a| (0.0..=1.0).contains(a)), "{:?}", zoo.per_class);
    let mean = zoo.per_class.values().sum::<f64>() / zoo.per_class.len() as f64;
    assert!((zoo.mean - mean).abs() < 1e-12, "the mean of the class AUCs");
    assert_eq!(
        (&zoo.conventions["tta"], &zoo.conventions["test_classes"]),
        (&"tencrop".into(), &serde_json::json!(labels))
    );
    assert_eq!(eval("inat2021"), zoo, "the head is drawn from seed 1: the same weights score the same");
    assert_ne!(eval("random").per_class, zoo.per_class, "the converted backbone is what is scored");
}

#[test]
fn eval_on_a_dataset_reads_its_folders_from_config_toml_and_a_flag_wins() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = medxfer(home.path(), &["data", "demo", elsewhere.path().to_str().unwrap()]);
    assert!(out.status.success(), "data demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let root = elsewhere.path().join("demo-cls");
    let config = format!("[datasets.demo-cls]\nroot = {:?}\n", root.display().to_string());
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let args = ["eval", "--init", "random", "--dataset", "demo-cls", "--set", "image_size=32", "--set", "threads=2"];

    let out = medxfer(home.path(), &args);
    assert!(out.status.success(), "eval failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !home.path().join("datasets").exists(),
        "the remembered root is read: the home's own demo copy is never generated"
    );

    let missing = elsewhere.path().join("no-such-folder");
    let out = medxfer(home.path(), &[&args[..], &["--root", missing.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-folder"), "--root wins over config.toml: {err}");
}
