//! `medxfer results --plot` with the real binary on a home of hand-written run folders: each figure kind's
//! numeric side file equals `results --format json` (or metrics.jsonl), the SVG carries the labels and
//! marks, the PNG is drawn in the palette, and a bad file name fails without writing anything.

use medxfer::runs::record::{DataSpec, RunResult, RunSpec, State, Status, Task};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const DATASET: &str = "chestxray14";

fn result(init: &str, trial: u32, anno: u32, mean: f64) -> RunResult {
    RunResult {
        run_id: format!("20261126-080000-{DATASET}-{init}-p{anno}-t{trial}"),
        dataset: DATASET.into(),
        init: init.into(),
        trial,
        seed: u64::from(trial),
        anno_percent: anno,
        task: Task::Classification,
        metric: "auc".into(),
        mean,
        per_class: BTreeMap::new(),
        extra: BTreeMap::new(),
        best_epoch: 2,
        epochs_run: 3,
        conventions: BTreeMap::from([("tta".to_string(), json!("tencrop"))]),
    }
}

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
    Status::new(State::Finished).save(&dir).unwrap();
    r.save(&dir).unwrap();
}

/// Four models in three categories at 100% and 10% labels; swav differs from imagenet, byol does not.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let runs = home.path().join("runs");
    let inits = [
        ("imagenet", [0.80, 0.81, 0.82]),
        ("swav", [0.85, 0.86, 0.87]),
        ("byol", [0.805, 0.83, 0.80]),
        ("random", [0.70, 0.72, 0.71]),
    ];
    for (init, values) in inits {
        for (t, v) in values.iter().enumerate() {
            write_run(&runs, &result(init, t as u32 + 1, 100, *v));
            write_run(&runs, &result(init, t as u32 + 1, 10, v - 0.1 - 0.01 * t as f64));
        }
    }
    home
}

fn medxfer(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env_clear()
        .env("MEDXFER_HOME", home)
        .current_dir("/")
        .args(args)
        .output()
        .unwrap()
}

fn ok(home: &Path, args: &[&str]) -> Vec<u8> {
    let out = medxfer(home, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn results_json(home: &Path) -> Value {
    serde_json::from_slice(&ok(home, &["results", "--dataset", DATASET, "--format", "json", "--published"])).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `<text>` element of the SVG (plotters writes its content on a line of its own, XML-escaped).
fn has_text(svg: &str, content: &str) -> bool {
    svg.contains(&format!(">\n{content}\n</text>"))
}

fn same(a: &Value, b: &Value, what: &str) {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => assert!((x - y).abs() <= 1e-12, "{what}: figure {x} results {y}"),
        _ => assert_eq!(a, b, "{what}"),
    }
}

#[test]
fn bars_draw_the_numbers_of_the_results_json() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let (svg, data) = (dir.path().join("bars.svg"), dir.path().join("bars.json"));
    let (svg_s, data_s) = (svg.to_str().unwrap(), data.to_str().unwrap());
    let args = [
        "results",
        "--dataset",
        DATASET,
        "--published",
        "--plot",
        svg_s,
        "--spread",
        "ci95",
        "--p-values",
        "--plot-data",
        data_s,
    ];
    ok(home.path(), &args);
    let lb = results_json(home.path());
    let fig = read_json(&data);
    let group = &lb["groups"][0];
    assert_eq!((fig["kind"].as_str(), fig["anno_percent"].as_u64()), (Some("bars"), Some(100)));
    let bars = fig["bars"].as_array().unwrap();
    let ours: Vec<&Value> = bars.iter().filter(|b| b["published"] == false).collect();
    assert_eq!(ours.len(), group["rows"].as_array().unwrap().len());
    for row in group["rows"].as_array().unwrap() {
        let init = row["init"].as_str().unwrap();
        let bar = ours.iter().find(|b| b["init"] == init).unwrap();
        same(&bar["mean"], &row["summary"]["mean"], init);
        same(&bar["low"], &row["summary"]["ci95"][0], init);
        same(&bar["high"], &row["summary"]["ci95"][1], init);
        same(&bar["p_value"], &row["p_value"], init);
        same(&bar["significant"], &row["significant"], init);
    }
    let imagenet = group["rows"].as_array().unwrap().iter().find(|r| r["init"] == "imagenet").unwrap();
    same(&fig["baseline_mean"], &imagenet["summary"]["mean"], "baseline");
    // Grouped by category in the catalog's order, best first within one: imagenet, swav > byol, random.
    let order: Vec<&str> = ours.iter().map(|b| b["init"].as_str().unwrap()).collect();
    assert_eq!(order, ["imagenet", "swav", "byol", "random"]);
    let published: Vec<&Value> = bars.iter().filter(|b| b["published"] == true).collect();
    let paper = lb["published"].as_array().unwrap();
    assert!(!paper.is_empty() && published.len() == paper.len());
    for p in paper {
        let bar = published.iter().find(|b| b["init"] == p["init"]).unwrap();
        let mean = p["mean_percent"].as_f64().unwrap() / 100.0;
        assert!((bar["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{p}");
    }

    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{text}");
    for init in &order {
        assert!(has_text(&text, init), "the SVG names {init}");
    }
    let swav = ours.iter().find(|b| b["init"] == "swav").unwrap();
    let byol = ours.iter().find(|b| b["init"] == "byol").unwrap();
    assert_eq!((swav["significant"].as_bool(), byol["significant"].as_bool()), (Some(true), Some(false)));
    let p = |b: &Value| format!("p={:.3}", b["p_value"].as_f64().unwrap());
    assert!(has_text(&text, &format!("* {}", p(swav))), "swav is marked with its p-value");
    assert!(has_text(&text, &p(byol)), "byol shows its p-value without a mark");
    assert!(has_text(&text, "* differs from imagenet (Welch p &lt; 0.05)"), "{text}");
    assert!(has_text(&text, "imagenet (published)"), "published rows are labelled");
}

#[test]
fn a_png_is_drawn_in_the_palette_with_the_embedded_font() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("bars.PNG");
    ok(home.path(), &["results", "--dataset", DATASET, "--plot", png.to_str().unwrap()]);
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.width(), 1200);
    let [r, g, b] = [0u8, 114, 178]; // the first category's colour (Okabe-Ito blue): imagenet's bar
    let blue = img.pixels().filter(|p| p.0 == [r, g, b]).count();
    let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 60)).count();
    assert!(blue > 1000, "{blue} pixels of the bar colour");
    assert!(dark > 1000, "{dark} dark pixels: text and axes");
}

#[test]
fn label_efficiency_draws_the_results_json_table() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let (svg, data) = (dir.path().join("eff.svg"), dir.path().join("eff.json"));
    let args = [
        "results",
        "--dataset",
        DATASET,
        "--plot",
        svg.to_str().unwrap(),
        "--kind",
        "label-efficiency",
        "--plot-data",
        data.to_str().unwrap(),
    ];
    ok(home.path(), &args);
    let table = &results_json(home.path())["label_efficiency"][0];
    let fig = read_json(&data);
    assert_eq!(fig["kind"], "label-efficiency");
    let anno: Vec<u64> = table["anno_percents"].as_array().unwrap().iter().map(|a| a.as_u64().unwrap()).collect();
    assert_eq!(anno, [10, 100]);
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(fig["lines"].as_array().unwrap().len(), rows.len());
    for row in rows {
        let line = fig["lines"].as_array().unwrap().iter().find(|l| l["init"] == row["init"]).unwrap();
        for (i, summary) in row["points"].as_array().unwrap().iter().enumerate() {
            let point = &line["points"][i];
            assert_eq!(point["anno_percent"].as_u64(), Some(anno[i]));
            let (mean, std) = (summary["mean"].as_f64().unwrap(), summary["std"].as_f64().unwrap());
            same(&point["mean"], &summary["mean"], "mean");
            assert!((point["low"].as_f64().unwrap() - (mean - std)).abs() < 1e-12);
            assert!((point["high"].as_f64().unwrap() - (mean + std)).abs() < 1e-12);
        }
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("label efficiency") && has_text(&text, "swav"), "{text}");
}

#[test]
fn curves_draw_each_runs_metrics_jsonl() {
    let home = home();
    let runs = home.path().join("runs");
    let ids = [format!("20261126-080000-{DATASET}-swav-p100-t1"), format!("20261126-080000-{DATASET}-byol-p100-t2")];
    for (k, id) in ids.iter().enumerate() {
        let mut text = String::new();
        for epoch in 1..=3u32 {
            let (train, val) = (1.0 / f64::from(epoch) + k as f64, 1.2 / f64::from(epoch) + k as f64);
            text += &format!(
                "{{\"kind\":\"step\",\"epoch\":{epoch},\"step\":{},\"train_loss\":9.0,\"lr\":0.1,\"images_per_s\":1.0,\"elapsed_s\":1.0}}\n",
                epoch * 10 - 5
            );
            text += &format!(
                "{{\"kind\":\"epoch\",\"epoch\":{epoch},\"step\":{},\"train_loss\":{train},\"val_loss\":{val},\"lr\":0.1,\"images_per_s\":1.0,\"elapsed_s\":1.0,\"val\":{{\"auc\":0.8}}}}\n",
                epoch * 10
            );
        }
        text += "{\"kind\":\"epo"; // a torn last line is skipped
        std::fs::write(runs.join(id).join("metrics.jsonl"), text).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (svg, data) = (dir.path().join("loss.svg"), dir.path().join("loss.json"));
    let selected = ids.join(",");
    let args = [
        "results",
        "--dataset",
        DATASET,
        "--plot",
        svg.to_str().unwrap(),
        "--kind",
        "curves",
        "--runs",
        &selected,
        "--per-run",
        "--plot-data",
        data.to_str().unwrap(),
    ];
    ok(home.path(), &args);
    let figs = read_json(&data);
    assert_eq!(figs.as_array().unwrap().len(), 2);
    for (k, id) in ids.iter().enumerate() {
        let lines = medxfer::train::files::read_epoch_lines(&runs.join(id)).unwrap();
        let run = &figs[k]["runs"][0];
        assert_eq!(run["run_id"].as_str(), Some(id.as_str()));
        let epochs = run["epochs"].as_array().unwrap();
        assert_eq!(epochs.len(), lines.len());
        for (e, m) in epochs.iter().zip(&lines) {
            assert_eq!(e["epoch"].as_u64(), Some(u64::from(m.epoch)));
            assert_eq!((e["train_loss"].as_f64(), e["val_loss"].as_f64()), (m.train_loss, m.val_loss));
        }
        let file = dir.path().join(format!("loss-{id}.svg"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(has_text(&text, &format!("{id} · loss")), "{text}");
    }
    assert!(!svg.exists(), "--per-run writes one file per run only");
}

#[test]
fn bad_requests_fail_with_one_sentence_and_write_nothing() {
    let home = home();
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("bars.pdf");
    let out = medxfer(home.path(), &["results", "--dataset", DATASET, "--plot", pdf.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bars.pdf must end in .svg or .png"), "{err}");
    let svg = dir.path().join("x.svg");
    let args = ["results", "--dataset", "demo-seg", "--plot", svg.to_str().unwrap()];
    let out = medxfer(home.path(), &args);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dataset \"demo-seg\" has no results to draw"));
    let args = ["results", "--dataset", DATASET, "--plot", svg.to_str().unwrap(), "--anno-percent", "50"];
    let out = medxfer(home.path(), &args);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no results at 50% labels"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
