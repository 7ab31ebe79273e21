//! The trainer's numerics against the Python references: optimizer steps (plain and fused) against torch.optim,
//! AUROC against scikit-learn's roc_auc_score (with ties), ReduceLROnPlateau and cosine against torch.

use medxfer::train::checkpoint;
use medxfer::train::metrics::auroc;
use medxfer::train::optim::{OptimConfig, OptimKind, Optimizer};
use medxfer::train::schedule::Schedule;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

const STEPS: usize = 3;
const LOSSES: [f64; 12] = [1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.899, 0.8999, 0.85, 0.86, 0.87, 0.88];

const SCRIPT: &str = r#"
import json, sys, torch
from safetensors.torch import load_file, save_file
from sklearn.metrics import roc_auc_score
d = load_file(sys.argv[1] + "/in.safetensors")
names = ["w", "b"]
configs = {
    "adam": lambda ps: torch.optim.Adam(ps, lr=2e-3),
    "adam_wd": lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=0.01),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.05),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
    "sgd_wd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
}
out = {}
for cfg, make in configs.items():
    ps = [d["p." + n].clone().requires_grad_(True) for n in names]
    opt = make(ps)
    for k in range(STEPS):
        for n, p in zip(names, ps):
            p.grad = d[f"g{k}.{n}"].clone()
        opt.step()
    for n, p in zip(names, ps):
        out[f"{cfg}.{n}"] = p.detach().contiguous()
save_file(out, sys.argv[1] + "/out.safetensors")
aucs = []
for k in range(int(d["auc.cases"].item())):
    y = d[f"auc.y{k}"].numpy()
    s = d[f"auc.s{k}"].numpy()
    aucs.append(float(roc_auc_score(y, s)))
opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2, threshold=1e-4)
plateau_lrs = []
for loss in LOSSES:
    plateau.step(loss)
    plateau_lrs.append(opt.param_groups[0]["lr"])
opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7)
cosine_lrs = []
for _ in range(7):
    opt.step()
    cosine.step()
    cosine_lrs.append(opt.param_groups[0]["lr"])
json.dump({"auc": aucs, "plateau": plateau_lrs, "cosine": cosine_lrs}, open(sys.argv[1] + "/out.json", "w"))
"#;

fn python(dir: &Path) {
    let python = std::env::var("MEDXFER_TEST_PYTHON")
        .expect("MEDXFER_TEST_PYTHON is not set: source scripts/torch-env (the Makefile does) to run this test");
    let script = SCRIPT.replace("STEPS", &STEPS.to_string()).replace("LOSSES", &format!("{LOSSES:?}"));
    let out = std::process::Command::new(python).arg("-c").arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn rust_optimizer(cfg: &str) -> Optimizer {
    let c = match cfg {
        "adam" => OptimConfig::new(OptimKind::Adam, 2e-3, 0.0, 0.0),
        "adam_wd" => OptimConfig::new(OptimKind::Adam, 1e-3, 0.01, 0.0),
        "adamw" => OptimConfig::new(OptimKind::AdamW, 1e-3, 0.05, 0.0),
        "sgd" => OptimConfig::new(OptimKind::Sgd, 0.05, 0.0, 0.9),
        _ => OptimConfig::new(OptimKind::Sgd, 0.05, 1e-3, 0.9),
    };
    Optimizer::new(c)
}

#[test]
fn optimizers_schedules_and_auroc_match_the_python_references() {
    tch::manual_seed(7);
    let dir = tempfile::tempdir().unwrap();
    let mut input: Vec<(String, Tensor)> = vec![
        ("p.w".into(), Tensor::randn([8, 5], (Kind::Float, tch::Device::Cpu))),
        ("p.b".into(), Tensor::randn([5], (Kind::Float, tch::Device::Cpu))),
    ];
    for k in 0..STEPS {
        input.push((format!("g{k}.w"), Tensor::randn([8, 5], (Kind::Float, tch::Device::Cpu)) * 0.1));
        input.push((format!("g{k}.b"), Tensor::randn([5], (Kind::Float, tch::Device::Cpu)) * 0.1));
    }
    let mut auc_cases = vec![];
    for (k, n) in [40i64, 200, 1000].into_iter().enumerate() {
        // Scores rounded to one decimal: many ties, within and across classes.
        let s = (Tensor::rand([n], (Kind::Double, tch::Device::Cpu)) * 10.0).round() / 10.0;
        let y = Tensor::rand([n], (Kind::Double, tch::Device::Cpu)).lt(0.3).to_kind(Kind::Int64);
        auc_cases.push((Vec::<f64>::try_from(&s).unwrap(), Vec::<i64>::try_from(&y).unwrap()));
        input.push((format!("auc.s{k}"), s));
        input.push((format!("auc.y{k}"), y));
    }
    input.push(("auc.cases".into(), Tensor::from_slice(&[auc_cases.len() as i64])));
    checkpoint::save(&dir.path().join("in.safetensors"), &input, &BTreeMap::new()).unwrap();
    python(dir.path());
    let reference = checkpoint::load(&dir.path().join("out.safetensors")).unwrap().tensors;

    let get = |name: &str| input.iter().find(|(n, _)| n == name).unwrap().1.shallow_clone();
    let fused = [("adam", true), ("adam_wd", true), ("adamw", true)];
    for (cfg, fused) in ["adam", "adam_wd", "adamw", "sgd", "sgd_wd"].map(|c| (c, false)).into_iter().chain(fused) {
        let params: Vec<(String, Tensor)> =
            ["w", "b"].iter().map(|n| (n.to_string(), get(&format!("p.{n}")).copy().set_requires_grad(true))).collect();
        let mut opt = Optimizer::new(rust_optimizer(cfg).config.with_fused(fused));
        for k in 0..STEPS {
            Optimizer::zero_grad(&params);
            // d/dp sum(p * g) = g exactly: the gradient torch gets.
            let loss = params.iter().map(|(n, p)| (p * get(&format!("g{k}.{n}"))).sum(Kind::Float));
            loss.reduce(|a, b| a + b).unwrap().backward();
            opt.step(&params).unwrap();
        }
        for (n, p) in &params {
            let want = &reference.iter().find(|(r, _)| *r == format!("{cfg}.{n}")).unwrap().1;
            let rel = ((p.detach() - want).abs() / want.abs().clamp_min(1e-12)).max().double_value(&[]);
            assert!(rel < 1e-6, "{cfg}.{n} (fused {fused}): relative difference {rel} from torch.optim");
        }
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
    for (k, (s, y)) in auc_cases.iter().enumerate() {
        let labels: Vec<bool> = y.iter().map(|&v| v == 1).collect();
        let ours = auroc(s, &labels).unwrap();
        let sklearn = json["auc"][k].as_f64().unwrap();
        assert!((ours - sklearn).abs() < 1e-12, "case {k}: ours {ours} vs scikit-learn {sklearn}");
    }

    let mut plateau = Schedule::plateau(2);
    let mut lr = 1.0;
    for (i, loss) in LOSSES.iter().enumerate() {
        lr = plateau.step(lr, *loss);
        assert_eq!(lr, json["plateau"][i].as_f64().unwrap(), "plateau after loss #{i}");
    }
    // The study sets the cosine lr after each epoch from the epochs finished before it, so its lr after
    // epoch i is torch's CosineAnnealingLR value one step earlier (and the base lr after the first).
    let mut cosine = Schedule::cosine(1e-3, 7);
    assert_eq!(cosine.step(0.0, 0.0), 1e-3, "cosine after epoch 0");
    for i in 1..7 {
        let ours = cosine.step(0.0, 0.0);
        let torch = json["cosine"][i - 1].as_f64().unwrap();
        assert!((ours - torch).abs() < 1e-15, "cosine epoch {i}: {ours} vs torch one step earlier {torch}");
    }
}
