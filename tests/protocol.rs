//! The study's protocol (issue 19, classification), checked against tests/protocol_reference.py, which is
//! written from the protocol's facts: anno-percent subsets of all three splits, CheXpert labels per uncertain
//! policy (LSR drawn in range and redrawn at every fetch), the head init, batches with a partial last batch,
//! the lr / checkpoint / early-stop trace of scripted val losses (plateau and cosine), the test transform (resize
//! and ten crops, bytes), AUC per class, per trial and over trials (scikit-learn and numpy), and both Dice scores
//! with the Dice loss (numpy and torch, the study's utils.py).

use medxfer::data::protocol::{AnnoScope, HeadInit};
use medxfer::data::spec::UncertainPolicy;
use medxfer::data::{DatasetSpec, Loader, LoaderConfig, Mode, Normalization, demo, lists};
use medxfer::runs::record::{DataSpec, Task};
use medxfer::train::schedule::{EarlyStop, Schedule};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

fn reference(command: &str, args: Value) -> Value {
    let py = std::env::var("MEDXFER_TEST_PYTHON")
        .expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env to point it at the reference Python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protocol_reference.py");
    let out = Command::new(py).arg(script).arg(command).arg(args.to_string()).output().unwrap();
    assert!(out.status.success(), "reference {command}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn home(dir: &Path) -> medxfer::home::Home {
    medxfer::home::Home::under(&dir.join("home")).unwrap()
}

#[test]
fn anno_percent_subsets_train_val_and_test_exactly_as_the_study_and_the_run_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = serde_json::Map::new();
    let mut data = DataSpec { root: Some(dir.path().to_path_buf()), anno_percent: 30, ..DataSpec::default() };
    for (role, n) in [("train", 23), ("val", 11), ("test", 9)] {
        let split: Vec<String> = (0..n).map(|i| format!("CHNCXR_{role}_{i:04}_{}.png", i % 2)).collect();
        let list = dir.path().join(format!("{role}.txt"));
        std::fs::write(
            &list,
            split.iter().map(|n| format!("{n},{}\n", &n[n.len() - 5..n.len() - 4])).collect::<String>(),
        )
        .unwrap();
        names.insert(role.into(), json!(split));
        match role {
            "train" => data.train_list = Some(list),
            "val" => data.val_list = Some(list),
            _ => data.test_list = Some(list),
        }
    }
    let expected = reference("anno_subset", json!({"splits": names, "percent": 30}));
    let splits = medxfer::data::resolve("shenzhen", &data, &home(dir.path()), 1).unwrap();
    let got = |items: &[lists::Item]| -> Vec<String> {
        items.iter().map(|i| i.image.file_name().unwrap().to_string_lossy().into_owned()).collect()
    };
    assert_eq!(json!(got(&splits.train)), expected["train"]);
    assert_eq!(json!(got(&splits.val)), expected["val"]);
    assert_eq!(json!(got(&splits.test)), expected["test"]);
    assert_eq!((splits.train.len(), splits.val.len(), splits.test.len()), (6, 3, 2));

    let out = dir.path().join("run/splits");
    splits.write_lists(&out).unwrap();
    let written = std::fs::read_to_string(out.join("val.txt")).unwrap();
    let expected_val: Vec<String> =
        expected["val"].as_array().unwrap().iter().map(|n| format!("CXR_png/{}\n", n.as_str().unwrap())).collect();
    assert_eq!(written, expected_val.concat());

    data.protocol.anno_scope = AnnoScope::TrainOnly;
    let train_only = medxfer::data::resolve("shenzhen", &data, &home(dir.path()), 1).unwrap();
    assert_eq!((train_only.train.len(), train_only.val.len(), train_only.test.len()), (6, 11, 9));
    data.anno_percent = 5;
    data.protocol.anno_scope = AnnoScope::AllSplits;
    let err = medxfer::data::resolve("shenzhen", &data, &home(dir.path()), 1).unwrap_err().to_string();
    assert!(err.contains("leaves the val split of shenzhen empty"), "{err}");
}

#[test]
fn chexpert_labels_follow_each_policy_and_lsr_values_are_redrawn_at_every_fetch_in_every_split() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = (0..3).map(|i| dir.path().join(format!("p{i}.png")).display().to_string()).collect();
    reference("write_pngs", json!({"paths": paths}));
    let header = "Path,Sex,Age,Frontal/Lateral,AP/PA,".to_string() + &["L"; 14].join(",");
    let rows = [
        "p0.png,F,68,Frontal,AP,1.0,-1.0,,0.0,1,-1,,,,,,,,-1.0",
        "p1.png,M,50,Lateral,,,,-1.0,1.0,0.0,,,,,1.0,,,,",
        "p2.png,F,40,Frontal,PA,-1.0,-1.0,-1.0,,,,,,,,,,,0.0",
    ];
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    for policy in ["ones", "zeros", "lsr-ones", "lsr-zeros"] {
        for unknown_label in [0i8, 1] {
            let expected =
                reference("chexpert_labels", json!({"csv": csv, "policy": policy, "unknown_label": unknown_label}));
            let mut data = DataSpec {
                root: Some(dir.path().to_path_buf()),
                train_list: Some(csv.clone()),
                val_list: Some(csv.clone()),
                test_list: Some(csv.clone()),
                image_size: 16,
                workers: 1,
                ..DataSpec::default()
            };
            data.protocol.set("uncertain_policy", policy).unwrap();
            data.protocol.unknown_label = Some(unknown_label);
            let splits = medxfer::data::resolve("chexpert", &data, &home(dir.path()), 1).unwrap();
            for mode in [Mode::Train, Mode::Val, Mode::Test] {
                let loader = splits.loader(mode, 3, &data, 1);
                let fetch = || {
                    let batch = loader.epoch(0).next().unwrap().unwrap();
                    let targets: Vec<f32> = batch.targets.flatten(0, -1).try_into().unwrap();
                    (batch.indices, targets)
                };
                let (first, second) = (fetch(), fetch());
                assert_eq!(first.0, second.0, "{mode:?}: the same order both times (epoch 0)");
                let (mut redrawn, mut uncertain) = (0, 0);
                for (k, &row) in first.0.iter().enumerate() {
                    for c in 0..14 {
                        let [lo, hi] = [0, 1].map(|b| expected[row][c][b].as_f64().unwrap() as f32);
                        let (a, b) = (first.1[k * 14 + c], second.1[k * 14 + c]);
                        assert!(lo <= a && a <= hi && lo <= b && b <= hi, "{policy} {mode:?} row {row} class {c}: {a}");
                        if lo < hi {
                            uncertain += 1;
                            redrawn += usize::from(a != b);
                        }
                    }
                }
                assert_eq!(uncertain > 0, policy.starts_with("lsr"), "{policy}: LSR values are ranges");
                assert_eq!(redrawn, uncertain, "{policy} {mode:?}: every LSR value is drawn again at each fetch");
            }
        }
    }
    assert_eq!(DatasetSpec::load("chexpert").unwrap().uncertain_policy, Some(UncertainPolicy::LsrOnes));
}

#[test]
fn the_classification_head_starts_as_the_study_draws_it() {
    let expected = reference("head_init", json!({"seed": 3, "classes": 14}));
    let head = |init: HeadInit| {
        tch::manual_seed(3);
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let net = medxfer::model::resnet50(vs.root(), Some(14), medxfer::model::Padding::Torch);
        if init == HeadInit::TorchDefault {
            net.init_head_torch_default();
        }
        let vars = vs.variables();
        let (w, b) = (&vars["fc.weight"], &vars["fc.bias"]);
        (w.std(true).double_value(&[]), w.mean(tch::Kind::Float).double_value(&[]), b.abs().max().double_value(&[]))
    };
    let (std, mean, bias) = head(HeadInit::Normal001);
    // 28,672 draws: the std of a std estimate is about 0.01/√57344 ≈ 4e-5
    assert!((std - expected["std"].as_f64().unwrap()).abs() < 3e-4 && (std - 0.01).abs() < 3e-4, "{std}");
    assert!(mean.abs() < 3e-4 && bias == 0.0, "mean {mean} bias {bias}");
    let (std, _, bias) = head(HeadInit::TorchDefault);
    assert!((std - expected["default_std"].as_f64().unwrap()).abs() < 3e-4, "torch-default std {std}");
    assert!(bias > 0.0, "torch-default draws the bias too");
}

#[test]
fn every_sample_is_seen_once_per_epoch_with_the_partial_last_batch_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (cls, _) = demo::write(dir.path()).unwrap();
    let spec = DatasetSpec::load("demo-cls").unwrap();
    let (items, _) = lists::read_split(&spec, &cls, &cls.join("train.txt"), 0).unwrap();
    for (n, batch_size) in [(10, 4), (3, 32)] {
        let expected = reference("batch_sizes", json!({"n": n, "batch_size": batch_size}));
        for mode in [Mode::Train, Mode::Val] {
            let config = LoaderConfig::for_split(Task::Classification, mode, batch_size, 16, Normalization::Imagenet);
            let loader = Loader::new(items[..n].to_vec(), config);
            let batches: Vec<_> = loader.epoch(2).map(|b| b.unwrap()).collect();
            let sizes: Vec<usize> = batches.iter().map(|b| b.indices.len()).collect();
            assert_eq!(json!(sizes), expected["sizes"], "{mode:?} n={n} batch {batch_size}");
            assert_eq!(loader.batches_per_epoch(), sizes.len());
            let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
            seen.sort();
            assert_eq!(json!(seen), expected["seen"]);
        }
    }
}

/// (lr used, checkpoint saved, stopped after it) per epoch, run as the trainer runs them.
fn trace(mut schedule: Schedule, patience: u32, lr: f64, losses: &[f64]) -> Value {
    let (mut early, mut lr, mut out) = (EarlyStop::new(patience), lr, vec![]);
    for (epoch, &loss) in losses.iter().enumerate() {
        let saved = early.observe(epoch as u32 + 1, loss);
        let used = lr;
        lr = schedule.step(lr, loss);
        out.push(json!({"lr": used, "saved": saved, "stopped": early.should_stop()}));
        if early.should_stop() {
            break;
        }
    }
    json!(out)
}

#[test]
fn plateau_and_cosine_lr_checkpoint_and_early_stop_traces_match_the_study() {
    // Gains below ReduceLROnPlateau's 1e-4 relative threshold still save a checkpoint (strict <) but count as
    // bad epochs for the lr: it halves on the 6th; early stop after 11 epochs without a new best.
    let mut losses = vec![1.0, 0.9, 0.8];
    losses.extend((1..=7).map(|k| 0.8 - 1e-6 * f64::from(k)));
    losses.extend([0.9; 14]);
    let expected = reference("plateau_trace", json!({"lr": 2e-4, "patience": 10, "losses": losses}));
    let got = trace(Schedule::from_name("plateau", 2e-4, 1000, 10).unwrap(), 10, 2e-4, &losses);
    assert_eq!(got, expected);
    let lrs: Vec<f64> = got.as_array().unwrap().iter().map(|e| e["lr"].as_f64().unwrap()).collect();
    assert_eq!((lrs.len(), lrs[8], lrs[9], lrs[15]), (21, 2e-4, 1e-4, 5e-5), "{lrs:?}");

    // Cosine over T = 6 epochs: set after each epoch, the first two at the base lr, wrapping at t mod T.
    let losses: Vec<f64> = (0..8).map(|k| 1.0 - 0.05 * f64::from(k)).chain([0.9; 6]).collect();
    let expected = reference("cosine_trace", json!({"lr": 1e-3, "epochs": 6, "patience": 3, "losses": losses}));
    let got = trace(Schedule::from_name("cosine", 1e-3, 6, 3).unwrap(), 3, 1e-3, &losses);
    let (got, expected) = (got.as_array().unwrap(), expected.as_array().unwrap());
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert_eq!((&g["saved"], &g["stopped"]), (&e["saved"], &e["stopped"]));
        let (g, e) = (g["lr"].as_f64().unwrap(), e["lr"].as_f64().unwrap());
        assert!((g - e).abs() <= 1e-18, "lr {g} vs the study's {e}");
    }
    assert_eq!((got[1]["lr"].as_f64(), got[7]["lr"].as_f64()), (Some(1e-3), Some(1e-3)));
}

#[test]
fn auc_per_class_trial_mean_and_population_std_equal_sklearn_and_numpy_with_ties_and_a_one_valued_class() {
    use medxfer::runs::stats::{StdKind, summarize};
    use medxfer::train::metrics::class_aurocs;
    let names: Vec<String> = ["A", "B", "C", "D"].map(String::from).to_vec();
    let mut state = 12345u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    // scores on a 0.1 grid: many ties between positives and negatives, which count 1/2
    /// Per class: the scores and the labels of one trial's test set.
    type Trial = (Vec<Vec<f64>>, Vec<Vec<bool>>);
    let trials: Vec<Trial> = (0..4)
        .map(|trial| {
            let mut labels: Vec<Vec<bool>> = (0..4).map(|_| (0..40).map(|_| next() < 0.4).collect()).collect();
            if trial == 3 {
                labels[2] = vec![false; 40]; // class C: one label value in this test set
            }
            let scores = labels
                .iter()
                .map(|l| l.iter().map(|&y| ((next() + if y { 0.3 } else { 0.0 }) * 10.0).round() / 10.0).collect())
                .collect();
            (scores, labels)
        })
        .collect();
    let args: Vec<Value> = trials
        .iter()
        .map(|(s, l)| {
            let l: Vec<Vec<u8>> = l.iter().map(|c| c.iter().map(|&b| u8::from(b)).collect()).collect();
            json!({"scores": s, "labels": l})
        })
        .collect();
    let expected = reference("auc", json!({"trials": args}));
    let all: Vec<usize> = (0..4).collect();
    let mut means = vec![];
    for (t, (scores, labels)) in trials.iter().enumerate() {
        let got = class_aurocs(&names, &all, scores, labels);
        let want = &expected["trials"][t];
        for (c, name) in names.iter().enumerate() {
            match want["per_class"][c].as_f64() {
                Some(a) => assert!((got.per_class[name] - a).abs() < 1e-12, "trial {t} class {name}: {got:?} vs {a}"),
                None => assert!(!got.per_class.contains_key(name), "trial {t} class {name} is undefined"),
            }
        }
        assert!((got.mean - want["mean"].as_f64().unwrap()).abs() < 1e-12, "trial {t} mean");
        if t == 3 {
            let error = want["errors"]["2"].as_str().unwrap();
            assert!(error.contains("Only one class"), "scikit-learn refuses it: {error}");
            assert_eq!(got.undefined, ["C"], "medxfer names the class instead, and means the other three");
        } else {
            assert!(got.undefined.is_empty() && got.per_class.len() == 4);
            means.push(got.mean);
        }
    }
    let (scores, labels) = (&trials[0].0[0], &trials[0].1[0]);
    let tied = (0..40).any(|i| (0..40).any(|j| labels[i] && !labels[j] && scores[i] == scores[j]));
    assert!(tied, "a positive and a negative share a score");
    let summary = summarize(&means, StdKind::default()).unwrap();
    assert!((summary.mean - expected["mean"].as_f64().unwrap()).abs() < 1e-12);
    assert!((summary.std.unwrap() - expected["std"].as_f64().unwrap()).abs() < 1e-12, "population std, ddof 0");
}

#[test]
fn both_dice_scores_and_the_dice_loss_equal_the_studys_formulas() {
    use medxfer::train::metrics::{SegScores, dice_loss};
    let (images, pixels) = (6, 64);
    let mut state = 99u64;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u32 << 24) as f32
    };
    let mut probs: Vec<Vec<f32>> = (0..images).map(|_| (0..pixels).map(|_| next()).collect()).collect();
    let mut masks: Vec<Vec<f32>> =
        (0..images).map(|_| (0..pixels).map(|_| if next() < 0.3 { 1.0 } else { 0.0 }).collect()).collect();
    probs[0] = vec![0.2; pixels]; // prediction and mask empty: this image scores 1.0
    masks[0] = vec![0.0; pixels];
    probs[1] = vec![0.5; pixels]; // exactly 0.5 is background (> 0.5 is foreground): an empty prediction
    probs[2][..8].fill(0.5000001);
    let expected = reference("dice", json!({"probs": probs, "masks": masks}));
    let mut scores = SegScores::default();
    for (p, m) in probs.iter().zip(&masks) {
        scores.add_image(p, m);
    }
    let close = |a: f64, key: &str| (a - expected[key].as_f64().unwrap()).abs() < 1e-12;
    assert!(close(scores.dice_global(), "dice"), "global Dice {} vs {}", scores.dice_global(), expected["dice"]);
    assert!(close(scores.dice_per_image(), "mean_dice"), "Mean Dice {} vs {}", scores.dice_per_image(), expected);
    assert_ne!(scores.dice_global(), scores.dice_per_image(), "the data tells the two apart");
    let flat = |v: &[Vec<f32>]| tch::Tensor::from_slice(&v.concat()).reshape([images as i64, 1, 8, 8]);
    let loss = dice_loss(&flat(&probs), &flat(&masks)).double_value(&[]);
    assert!((loss - expected["loss"].as_f64().unwrap()).abs() < 1e-6, "loss {loss} vs {}", expected["loss"]);
}

#[test]
fn the_test_transform_is_torchvisions_resize_and_ten_crop_in_its_order() {
    use medxfer::data::image::Img;
    let dir = tempfile::tempdir().unwrap();
    let (width, height) = (300, 260);
    let mut img = Img::new(width, height, 3);
    for (i, v) in img.data.iter_mut().enumerate() {
        let (p, c) = (i / 3, i % 3);
        // no symmetry: every crop and its mirror differ
        *v = ((p % width) * (c + 1) + (p / width) * 3 + (p % width) * (p / width) / 50) as u8;
    }
    let png = dir.path().join("in.png");
    img.save_png(&png).unwrap();
    let out = dir.path().join("crops.bin");
    let count = reference("ten_crop", json!({"png": png, "out": out, "resize": 256, "crop": 224}));
    assert_eq!(count, 10);
    let expected = std::fs::read(&out).unwrap();
    let ours = medxfer::data::transform::ten_crop(&Img::open(&png).unwrap().resize_bilinear(256, 256), 224);
    assert_eq!(ours.len(), 10);
    let crop_bytes = 224 * 224 * 3;
    for (k, crop) in ours.iter().enumerate() {
        assert_eq!((crop.width, crop.height, crop.channels), (224, 224, 3));
        assert!(crop.data == expected[k * crop_bytes..(k + 1) * crop_bytes], "crop {k} differs from torchvision's");
    }
}

#[test]
fn the_val_loss_weights_each_batch_by_its_size() {
    use medxfer::train::evaluate::{LossKind, validate};
    let dir = tempfile::tempdir().unwrap();
    let (cls, _) = demo::write(dir.path()).unwrap();
    let spec = DatasetSpec::load("demo-cls").unwrap();
    let (items, _) = lists::read_split(&spec, &cls, &cls.join("val.txt"), 0).unwrap();
    tch::manual_seed(5);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net =
        medxfer::model::Net::ResNet50(medxfer::model::resnet50(vs.root(), Some(4), medxfer::model::Padding::Torch));
    // a wide head, so that batches' losses differ
    tch::no_grad(|| {
        let _ = vs.variables()["fc.weight"].shallow_clone().normal_(0.0, 1.0);
    });
    let loss_of = |items: &[lists::Item], batch_size: usize| {
        let config = LoaderConfig::for_split(Task::Classification, Mode::Val, batch_size, 16, Normalization::Imagenet);
        validate(&net, &Loader::new(items.to_vec(), config), tch::Device::Cpu, LossKind::Bce, &spec.labels)
            .unwrap()
            .loss
    };
    let batched = loss_of(&items[..10], 4);
    let parts = [loss_of(&items[..4], 4), loss_of(&items[4..8], 4), loss_of(&items[8..10], 4)];
    let weighted = (4.0 * parts[0] + 4.0 * parts[1] + 2.0 * parts[2]) / 10.0;
    assert!((batched - weighted).abs() < 1e-5, "{batched} vs Σ n_b·L_b / Σ n_b = {weighted}");
    assert!((batched - loss_of(&items[..10], 10)).abs() < 1e-5, "the mean over all samples");
    let unweighted = parts.iter().sum::<f64>() / 3.0;
    assert!((unweighted - weighted).abs() > 1e-3, "the scripted batches tell the two means apart: {parts:?}");
}

#[test]
fn data_split_chexpert_writes_patient_disjoint_lists_under_its_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let header = "Path,Sex,Age,Frontal/Lateral,AP/PA,".to_string() + &["L"; 14].join(",");
    let mut csv = format!("{header}\n");
    for patient in 1..=20 {
        for study in 1..=2 {
            csv += &format!(
                "CheXpert-v1.0-small/train/patient{patient:05}/study{study}/view1_frontal.jpg,F,50,Frontal,AP{}\n",
                ",".repeat(13) + ",1.0"
            );
        }
    }
    let input = dir.path().join("train.csv");
    std::fs::write(&input, &csv).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["data", "split", "chexpert", "--val-fraction", "0.2", "--csv"])
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("split"))
        .env("MEDXFER_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |name: &str| lists::read_chexpert(&dir.path().join("split").join(name), dir.path(), 14, 0).unwrap();
    let (train, val) = (read("medxfer_split_train.csv"), read("medxfer_split_val.csv"));
    assert_eq!((train.len(), val.len()), (32, 8), "4 of 20 patients, 2 studies each");
    let patient =
        |i: &lists::Item| i.image.to_string_lossy().split('/').find(|p| p.starts_with("patient")).unwrap().to_string();
    let train_patients: std::collections::BTreeSet<String> = train.iter().map(patient).collect();
    assert!(val.iter().all(|i| !train_patients.contains(&patient(i))), "no patient in both");
}
