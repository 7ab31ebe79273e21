//! The tch networks against torchvision's resnet50 and smp's Unet("resnet50"): same random weights,
//! same inputs, eval outputs within 1e-4; one Adam step within 1e-5; state_dicts round-trip by name.
//! References come from tests/model_reference.py run with $MEDXFER_TEST_PYTHON.

use medxfer::model::{self, Net, Padding};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tch::nn::{ModuleT, OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// Runs the reference script once per test process into target/tmp (so nothing piles up in /tmp).
fn refs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = std::env::var("MEDXFER_TEST_PYTHON")
            .expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env (the Makefile does) to run these tests");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("model_reference");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/model_reference.py");
        let out = Command::new(python).env("OMP_NUM_THREADS", "1").arg(&script).arg(&dir).output().unwrap();
        assert!(out.status.success(), "reference script failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

fn read(name: &str) -> HashMap<String, Tensor> {
    model::read_tensors(&refs().join(name)).unwrap()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[])
}

fn eval_cli(arch: &str, weights: &str, input: &str, features: bool) -> HashMap<String, Tensor> {
    let home = tempfile::tempdir().unwrap();
    let output: PathBuf = home.path().join("out.safetensors");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medxfer"));
    // One thread on both sides: the same kernels and summation order as the reference.
    cmd.env("MEDXFER_HOME", home.path()).env("OMP_NUM_THREADS", "1").args(["model", "eval", "--arch", arch]);
    cmd.arg("--weights").arg(refs().join(weights)).arg("--input").arg(refs().join(input));
    cmd.arg("--output").arg(&output);
    if features {
        cmd.arg("--features");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "model eval failed: {}", String::from_utf8_lossy(&out.stderr));
    model::read_tensors(&output).unwrap()
}

#[test]
fn resnet50_logits_and_features_match_torchvision() {
    let expected = read("resnet50_expected.safetensors");
    let got = eval_cli("resnet50", "resnet50.safetensors", "resnet50_input.safetensors", true);
    assert_eq!(got["output"].size(), [2, 5]);
    assert!(max_abs(&got["output"], &expected["output"]) < 1e-4);
    assert!(max_abs(&got["features"], &expected["features"]) < 1e-4);
    assert!(expected["output"].abs().max().double_value(&[]) > 1e-2, "reference logits are trivially small");
}

#[test]
fn one_channel_input_equals_rgb_repeat() {
    let expected = read("resnet50_expected.safetensors");
    let got = eval_cli("resnet50", "resnet50.safetensors", "gray_input.safetensors", false);
    // Folding changes conv1's summation order; fifty random layers amplify that (PyTorch's own fold
    // differs from its RGB run by ~1e-4), so the logits get 1e-3 and the stem itself 1e-5.
    assert!(max_abs(&got["output"], &expected["gray_output"]) < 1e-3);
    let mut vs = VarStore::new(Device::Cpu);
    let net = model::resnet50(vs.root(), Some(5), Padding::Torch);
    model::load_all(&mut vs, &refs().join("resnet50.safetensors")).unwrap();
    let gray = &read("gray_input.safetensors")["input"];
    let folded = tch::no_grad(|| net.stages_t(gray, false).stem);
    let rgb = tch::no_grad(|| net.stages_t(&gray.repeat([1, 3, 1, 1]), false).stem);
    assert!(max_abs(&folded, &rgb) < 1e-5);
}

#[test]
fn unet_matches_smp_at_square_and_non_square_sizes() {
    for size in ["224", "256x320"] {
        let expected = read(&format!("unet_{size}_expected.safetensors"));
        let got = eval_cli("unet", "unet.safetensors", &format!("unet_{size}_input.safetensors"), false);
        let diff = max_abs(&got["output"], &expected["output"]);
        assert!(diff < 1e-4, "U-Net at {size}: max abs diff {diff}");
    }
}

#[test]
fn one_adam_step_matches_pytorch() {
    tch::set_num_threads(1);
    let mut vs = VarStore::new(Device::Cpu);
    let net = Net::ResNet50(model::resnet50(vs.root(), Some(5), Padding::Torch));
    model::load_all(&mut vs, &refs().join("resnet50.safetensors")).unwrap();
    let batch = read("train_batch.safetensors");
    let mut opt = tch::nn::Adam::default().build(&vs, 1e-3).unwrap();
    let logits = net.forward_t(&batch["input"], true);
    let loss = logits.binary_cross_entropy_with_logits::<Tensor>(&batch["target"], None, None, tch::Reduction::Mean);
    assert!(max_abs(&loss.reshape([1]), &batch["loss"]) < 1e-5);
    opt.backward_step(&loss);
    let after = read("train_after.safetensors");
    let before = read("resnet50.safetensors");
    let ours = vs.variables();
    let mut diffs: Vec<(f64, &String)> = ours.iter().map(|(n, t)| (max_abs(t, &after[n.as_str()]), n)).collect();
    diffs.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("worst after one step: {:?}", &diffs[..8]);
    for name in
        ["conv1.weight", "fc.weight", "fc.bias", "layer4.2.bn3.weight", "bn1.running_mean", "layer3.5.bn2.running_var"]
    {
        assert!(max_abs(&ours[name], &after[name]) < 1e-5, "{name} differs after one step");
        assert!(max_abs(&before[name], &after[name]) > 1e-5, "{name} did not change in the reference step");
    }
    let worst = ours.iter().map(|(n, t)| max_abs(t, &after[n.as_str()])).fold(0.0, f64::max);
    assert!(worst < 1e-5, "some tensor differs by {worst} after one step");
}

/// Every tensor of the reference state_dict (but num_batches_tracked) loads by its own name and saves back.
fn assert_round_trip(file: &str, net_for: impl FnOnce(&VarStore) -> Net) {
    let mut vs = VarStore::new(Device::Cpu);
    let _net = net_for(&vs);
    let report = model::load_all(&mut vs, &refs().join(file)).unwrap();
    assert!(report.unused.is_empty(), "{file}: tensors with no variable: {:?}", report.unused);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved.safetensors");
    vs.save(&saved).unwrap();
    let reference = read(file);
    let ours = model::read_tensors(&saved).unwrap();
    let expected: Vec<&String> = reference.keys().filter(|k| !k.ends_with("num_batches_tracked")).collect();
    assert_eq!(ours.len(), expected.len());
    for name in expected {
        assert_eq!(max_abs(&ours[name], &reference[name]), 0.0, "{file}: {name}");
    }
}

#[test]
fn state_dicts_round_trip_by_name() {
    assert_round_trip("resnet50.safetensors", |vs| Net::ResNet50(model::resnet50(vs.root(), Some(5), Padding::Torch)));
    assert_round_trip("unet.safetensors", |vs| Net::Unet(model::unet(vs.root(), 2, Padding::Torch)));
}

#[test]
fn encoder_load_is_strict_and_leaves_heads_fresh() {
    let mut vs = VarStore::new(Device::Cpu);
    let net = Net::Unet(model::unet(vs.root(), 2, Padding::Torch));
    let head_before = vs.variables()["segmentation_head.0.weight"].copy();
    let report = model::load_encoder(&mut vs, &refs().join("resnet50.safetensors"), net.encoder_prefix()).unwrap();
    assert_eq!(report.loaded, 265, "53 convs and 53 BNs (4 tensors each)");
    assert_eq!(report.unused, ["fc.bias", "fc.weight"]);
    let torchvision = read("resnet50.safetensors");
    assert_eq!(max_abs(&vs.variables()["encoder.layer2.1.conv2.weight"], &torchvision["layer2.1.conv2.weight"]), 0.0);
    assert_eq!(max_abs(&vs.variables()["segmentation_head.0.weight"], &head_before), 0.0);

    let mut partial: Vec<(String, Tensor)> = torchvision.into_iter().collect();
    partial.retain(|(n, _)| n != "layer3.1.bn2.running_var");
    for (n, t) in partial.iter_mut() {
        if n == "conv1.weight" {
            *t = Tensor::zeros([64, 1, 7, 7], tch::kind::FLOAT_CPU);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.safetensors");
    Tensor::write_safetensors(&partial, &broken).unwrap();
    let err = model::load_encoder(&mut vs, &broken, "encoder.").unwrap_err().to_string();
    assert!(err.contains("1 missing (layer3.1.bn2.running_var)"), "{err}");
    assert!(err.contains("conv1.weight: file [64, 1, 7, 7], model [64, 3, 7, 7]"), "{err}");
}

#[test]
fn same_padding_gives_ceil_sizes_and_random_init_is_torchvision_s() {
    let vs = VarStore::new(Device::Cpu);
    let net = model::resnet50(vs.root(), None, Padding::Same);
    let stages = tch::no_grad(|| net.stages_t(&Tensor::randn([1, 3, 65, 67], tch::kind::FLOAT_CPU), false));
    assert_eq!(stages.stem.size(), [1, 64, 33, 34]);
    assert_eq!(stages.layers[3].size(), [1, 2048, 3, 3]);
    let vars = vs.variables();
    assert!(!vars.contains_key("fc.weight"));
    let w = &vars["layer3.0.conv2.weight"];
    let expected_std = (2.0f64 / (256.0 * 9.0)).sqrt();
    assert!((w.std(true).double_value(&[]) / expected_std - 1.0).abs() < 0.05);
    assert_eq!(vars["layer4.2.bn3.weight"].min().double_value(&[]), 1.0);
}

#[test]
fn eval_names_the_file_at_fault() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env("MEDXFER_HOME", home.path())
        .args(["model", "eval", "--arch", "unet", "--weights"])
        .arg(refs().join("unet.safetensors"))
        .arg("--input")
        .arg(refs().join("resnet50_expected.safetensors"))
        .arg("--output")
        .arg(home.path().join("out.safetensors"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resnet50_expected.safetensors: no tensor named `input`"), "{stderr}");
    assert!(!home.path().join("out.safetensors").exists());
}
