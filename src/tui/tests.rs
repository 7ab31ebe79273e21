//! Tests of `update` (actions → state and effects) and of the views rendered into a TestBackend.

use super::action::{Action, Control};
use super::effect::Effect;
use super::env::TuiEnv;
use super::keymap::Keymap;
use super::state::{State, View};
use super::store::RunDelta;
use super::update::update;
use crate::data::check::{CheckReport, Kind, Problem, SplitReport};
use crate::runs::record::{Hyper, MetricLine, RunResult, RunSpec, State as RunState, Status, Task};
use ratatui::{Terminal, backend::TestBackend};
use std::collections::BTreeMap;

pub fn spec(id: &str, init: &str, trial: u32) -> RunSpec {
    RunSpec {
        trial,
        seed: trial.into(),
        hyper: Hyper { epochs: 10, ..Hyper::study_defaults(Task::Classification) },
        ..RunSpec::study(id, "demo-cls", Task::Classification, init)
    }
}

pub fn result(spec: &RunSpec, mean: f64) -> RunResult {
    RunResult {
        run_id: spec.id.clone(),
        dataset: spec.dataset.clone(),
        init: spec.init.clone(),
        trial: spec.trial,
        seed: spec.seed,
        anno_percent: 100,
        task: spec.task,
        metric: "auc".into(),
        mean,
        per_class: BTreeMap::new(),
        extra: BTreeMap::new(),
        best_epoch: 2,
        epochs_run: 4,
        conventions: BTreeMap::from([("tta".into(), serde_json::json!("tencrop"))]),
    }
}

pub fn epoch_line(epoch: u32, lr: f64) -> MetricLine {
    MetricLine {
        kind: "epoch".into(),
        epoch,
        step: u64::from(epoch) * 100,
        train_loss: Some(1.0 / f64::from(epoch + 1)),
        val_loss: Some(1.2 / f64::from(epoch + 1)),
        lr,
        images_per_s: 42.0,
        elapsed_s: f64::from(epoch) * 10.0,
        val: BTreeMap::from([("auc".into(), 0.5 + f64::from(epoch) / 20.0)]),
        epoch_batches: None,
    }
}

/// Step `n` of epoch 1 (of 50 batches) at 8 images/s: the line a trainer writes inside an epoch.
pub fn step_line(n: u64) -> MetricLine {
    MetricLine {
        kind: "step".into(),
        epoch: 1,
        step: n,
        val: BTreeMap::new(),
        images_per_s: 8.0,
        epoch_batches: Some(50),
        ..epoch_line(1, 1e-4)
    }
}

/// A delta for a run with `epochs` epoch lines (lr halves at epoch 2), state and optional result.
pub fn delta(id: &str, init: &str, trial: u32, state: RunState, mean: Option<f64>) -> Action {
    let spec = spec(id, init, trial);
    let mut status = Status::new(state);
    status.epoch = 4;
    status.best_epoch = Some(3);
    let lines = (1..=4).map(|e| epoch_line(e, if e >= 2 { 1e-4 } else { 2e-4 })).collect();
    Action::RunData(Box::new(RunDelta {
        id: id.into(),
        result: mean.map(|m| result(&spec, m)),
        spec: Some(spec),
        status: Some(status),
        lines,
        ..RunDelta::default()
    }))
}

/// What `medxfer runs <verb> ID... --json` prints: per id, what was done (Ok) or the refusal (Err).
pub fn control_json(verb: &str, runs: &[(&str, Result<&str, &str>)]) -> String {
    use crate::sched::report::{ControlOutcome, ControlReport};
    let runs = runs
        .iter()
        .map(|(id, done)| ControlOutcome {
            id: id.to_string(),
            ok: done.is_ok(),
            outcome: done.ok().map(str::to_string),
            error: done.err().map(str::to_string),
            state: None,
        })
        .collect();
    serde_json::to_string_pretty(&ControlReport { verb: verb.into(), runs }).unwrap()
}

/// What `medxfer zoo <verb> ID --json` prints for one model: what was done (Ok) or why not (Err), its state.
pub fn zoo_json(verb: &str, id: &str, done: Result<&str, &str>, state: crate::zoo::ModelState) -> String {
    use crate::zoo::report::{ZooOutcome, ZooReport};
    let model = ZooOutcome {
        id: id.into(),
        ok: done.is_ok(),
        state,
        message: done.ok().map(str::to_string),
        error: done.err().map(str::to_string),
        file: None,
        sha256: None,
    };
    serde_json::to_string_pretty(&ZooReport { verb: verb.into(), models: vec![model] }).unwrap()
}

const A: &str = "20261126-081200-demo-cls-imagenet-t1";
const B: &str = "20261126-081201-demo-cls-random-t1";

fn two_runs() -> State {
    let mut s = State::new(TuiEnv::embedded(), Keymap::default(), false);
    update(&mut s, delta(A, "imagenet", 1, RunState::Finished, Some(0.91)));
    update(&mut s, delta(B, "random", 1, RunState::Running, None));
    s
}

fn screen(s: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| f.render_widget(s, f.area())).unwrap();
    let buf = terminal.backend().buffer();
    (0..height)
        .map(|y| (0..width).map(|x| buf[(x, y)].symbol()).collect::<String>().trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn run_data_builds_runs_with_curves_and_marks() {
    let s = two_runs();
    let run = &s.runs[A];
    assert_eq!(run.val.len(), 4);
    assert_eq!(run.lr_drops, [200.0]);
    assert_eq!(run.epoch_steps[&3], 300.0);
    assert_eq!(run.metric(), Some(0.91));
    assert_eq!(s.runs[B].metric(), Some(0.7), "latest val auc while running");
}

#[test]
fn navigation_filter_sort_and_selection() {
    let mut s = two_runs();
    assert_eq!(s.view, View::Runs);
    update(&mut s, Action::Down);
    update(&mut s, Action::Down);
    assert_eq!(s.cursor(), 1, "cursor stops at the last row");
    update(&mut s, Action::Select);
    assert!(s.selected.contains(B));
    update(&mut s, Action::FilterStart);
    for c in "imagenet".chars() {
        update(&mut s, Action::FilterInput(c));
    }
    update(&mut s, Action::FilterDone);
    assert_eq!(s.visible_runs().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [A]);
    assert_eq!(s.cursor(), 0);
    update(&mut s, Action::Back);
    assert_eq!(s.visible_runs().len(), 2);
    for _ in 0..4 {
        update(&mut s, Action::CycleSort);
    }
    assert_eq!(s.visible_runs()[0].id, A, "metric sort puts the best first");
    update(&mut s, Action::NextView);
    assert_eq!(s.view, View::Compare);
    update(&mut s, Action::PrevView);
    update(&mut s, Action::Show(View::Zoo));
    update(&mut s, Action::PrevView);
    assert_eq!(s.view, View::Gpus, "views wrap around");
}

#[test]
fn effects_come_from_demo_sweep_and_stop() {
    let mut s = two_runs();
    let effects = update(&mut s, Action::DemoSweep);
    assert_eq!(effects.len(), 1);
    assert_eq!(
        effects[0].cli_args().join(" "),
        "sweep --dataset demo-cls --models random --trials 2 --set epochs=3 --set image_size=32 --set batch_size=16 --set threads=1 --json",
        "nothing converted yet: random alone"
    );
    let stop = Action::RunControl(Control::Stop);
    assert!(update(&mut s, stop.clone()).is_empty(), "the finished run cannot be stopped");
    assert!(s.message.as_deref().unwrap_or_default().contains("nothing to stop"));
    update(&mut s, Action::Down);
    assert_eq!(update(&mut s, stop), [Effect::Control { control: Control::Stop, ids: vec![B.into()] }]);
    update(&mut s, Action::CommandFinished { ok: false, message: "medxfer runs stop failed: no agent".into() });
    assert_eq!(s.message.as_deref(), Some("medxfer runs stop failed: no agent"));
    update(&mut s, Action::Quit);
    assert!(s.quit);
}

#[test]
fn removed_runs_leave_selection_and_detail() {
    let mut s = two_runs();
    update(&mut s, Action::Select);
    update(&mut s, Action::Open);
    assert_eq!(s.detail.as_deref(), Some(A));
    update(&mut s, Action::RunRemoved(A.into()));
    assert!(s.detail.is_none() && s.selected.is_empty() && s.runs.len() == 1);
}

#[test]
fn runs_table_fits_80x24_and_widens_at_160() {
    let s = two_runs();
    let small = screen(&s, 80, 24);
    assert!(small.lines().next().unwrap().contains("4 Runs"), "{small}");
    assert!(small.contains("finished") && small.contains("imagenet") && small.contains("0.910"), "{small}");
    assert!(small.contains("running") && small.contains("random"), "{small}");
    let header = small.lines().find(|l| l.contains("state")).unwrap();
    assert!(!header.contains(" id"), "the id column only when wide:\n{small}");
    assert!(small.lines().nth(1).unwrap().contains(&format!("· {A}")), "the title names the cursor's run:\n{small}");
    assert!(small.lines().last().unwrap().contains("? help  q quit"), "{small}");
    let wide = screen(&s, 160, 48);
    assert!(wide.contains(A) && wide.contains("ETA") && wide.contains("cpu"), "{wide}");
}

#[test]
fn detail_draws_both_curves_and_marks() {
    let mut s = two_runs();
    update(&mut s, Action::Open);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, w, h);
        assert!(text.contains(A) && text.contains("epoch 4/10") && text.contains("best 3"), "{text}");
        let braille = text.lines().skip(3).any(|l| l.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)));
        assert!(braille && text.contains('o'), "train in braille, val as o without colour:\n{text}");
        let axis = text.lines().find(|l| l.contains("───")).unwrap_or_default();
        assert!(axis.contains('L') && axis.contains('B'), "marks on the axis row: {axis:?}\n{text}");
    }
}

#[test]
fn leaderboard_ranks_by_mean_with_population_std() {
    let mut s = two_runs();
    update(&mut s, delta("20261126-081202-demo-cls-imagenet-t2", "imagenet", 2, RunState::Finished, Some(0.93)));
    update(&mut s, delta("20261126-081203-demo-cls-random-t1b", "random", 1, RunState::Finished, Some(0.61)));
    let rows = super::views::leaderboard::rows(&s);
    assert_eq!(
        rows.iter().map(|r| (r.rank, r.init.as_str(), r.trials)).collect::<Vec<_>>(),
        [(1, "imagenet", 2), (2, "random", 1)]
    );
    assert!((rows[0].mean - 0.92).abs() < 1e-12 && (rows[0].std - 0.01).abs() < 1e-12, "{rows:?}");
    update(&mut s, Action::Show(View::Leaderboard));
    let text = screen(&s, 80, 24);
    assert!(text.contains("auc 0.9200 ± 0.0100") && text.contains("auc 0.6100 (1 trial)"), "{text}");
}

#[test]
fn other_views_render_at_80x24() {
    let mut s = two_runs();
    let cases = [
        (View::Zoo, "imagenet"),
        (View::Datasets, "classification"),
        (View::Launch, "choose at least one model with space"),
        (View::Compare, "select runs with space"),
        (View::Gpus, "asking NVML"),
    ];
    for (view, expected) in cases {
        update(&mut s, Action::Show(view));
        let text = screen(&s, 80, 24);
        assert!(text.contains(expected), "{view:?}:\n{text}");
    }
    update(&mut s, Action::Gpus(Vec::new()));
    assert!(screen(&s, 80, 24).contains("no GPU"));
    update(&mut s, Action::Show(View::Runs));
    update(&mut s, Action::Select);
    update(&mut s, Action::Show(View::Compare));
    assert!(screen(&s, 80, 24).contains(&format!("a {A}")));
}

#[test]
fn help_lists_every_key_of_the_view() {
    let mut s = two_runs();
    update(&mut s, Action::ToggleHelp);
    let text = screen(&s, 80, 24);
    for (keys, about) in s.keymap.help(View::Runs) {
        assert!(text.contains(&format!("{keys} {about}")), "{keys} {about}:\n{text}");
    }
    update(&mut s, Action::Down);
    assert!(!s.help, "any other key closes the help");
}

#[test]
fn every_view_help_fits_80x24_untruncated() {
    let mut s = two_runs();
    for view in View::ALL {
        update(&mut s, Action::Show(view));
        update(&mut s, Action::ToggleHelp);
        let text = screen(&s, 80, 24);
        for (keys, about) in s.keymap.help(view) {
            assert!(text.contains(&format!("{keys} {about}")), "{view:?}: {keys} {about}:\n{text}");
        }
        update(&mut s, Action::ToggleHelp);
    }
}

#[test]
fn an_unchanged_gpu_probe_asks_for_no_frame() {
    let mut s = two_runs();
    update(&mut s, Action::Gpus(Vec::new()));
    s.dirty = false;
    update(&mut s, Action::Gpus(Vec::new()));
    assert!(!s.dirty, "same GPUs, nothing to redraw");
    update(&mut s, Action::Down);
    update(&mut s, Action::Gpus(Vec::new()));
    assert!(s.dirty, "an earlier change in the same batch still draws");
}

use super::action::{DataCheck, ZooStatus};
use crate::zoo::ModelState;

/// The zoo watcher's report: every catalog model missing (random builtin) except the given ones.
fn zoo_report(s: &State, states: &[(&str, ModelState)]) -> Action {
    let statuses = s
        .zoo
        .iter()
        .map(|m| {
            let id = m.entry.id.clone();
            let state = states
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, st)| st.clone())
                .unwrap_or(if m.entry.has_file() { ModelState::Missing } else { ModelState::Builtin });
            let file = m.entry.has_file().then(|| format!("/h/cache/zoo/{id}/{}", m.entry.file).into());
            let pinned = (id == "barlowtwins").then(|| "ab".repeat(32));
            ZooStatus { id, state, file, pinned }
        })
        .collect();
    Action::ZooStates(statuses)
}

fn zoo_cursor_to(s: &mut State, id: &str) {
    update(s, Action::Show(View::Zoo));
    update(s, Action::Top);
    while s.current_model().unwrap().entry.id != id {
        let before = s.cursor();
        update(s, Action::Down);
        assert_ne!(before, s.cursor(), "{id} not in the zoo");
    }
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
}

/// The Zoo list's row of a model (rows start with " id ").
fn row_of<'a>(text: &'a str, id: &str) -> &'a str {
    let start = format!(" {id} ");
    text.lines().find(|l| l.starts_with(&start)).unwrap_or_else(|| panic!("no row for {id}:\n{text}"))
}

fn typical_zoo() -> State {
    let mut s = two_runs();
    let report = zoo_report(
        &s,
        &[
            ("barlowtwins", ModelState::Converted),
            ("moco-v1", ModelState::Downloading { bytes: 42, total: Some(100), percent: Some(42.0), active: true }),
            ("swav", ModelState::Failed { reason: "sha256 mismatch".into() }),
            ("chexpert", ModelState::Verified),
        ],
    );
    update(&mut s, report);
    s
}

#[test]
fn zoo_holds_the_whole_catalog_grouped_by_category() {
    let s = State::new(TuiEnv::embedded(), Keymap::default(), false);
    assert_eq!(s.zoo.len(), 22, "21 models and random");
    let ids: Vec<&str> = s.zoo.iter().map(|m| m.entry.id.as_str()).collect();
    assert_eq!(ids[..3], ["imagenet", "barlowtwins", "swav"]);
    assert_eq!(ids[21], "random");
    let categories: Vec<&str> = s.zoo.iter().map(|m| m.entry.category.as_str()).collect();
    let mut grouped = categories.clone();
    grouped.dedup();
    assert_eq!(grouped, crate::zoo::catalog::CATEGORIES, "each category once, in the catalog's order");
    assert_eq!(s.zoo[0].label(), "checking...", "no state before the watcher reports");
}

/// A state built from a two-model catalog, one dataset and one published row: it shows those and nothing of
/// the embedded assets.
#[test]
fn state_shows_the_catalog_datasets_and_published_rows_of_its_env() {
    let catalog = r#"
[[model]]
id = "random"
name = "Random initialization"
category = "none"
dataset = "none"
objective = "none"
paper = "He et al."
paper_url = "https://arxiv.org/abs/1502.01852"
urls = []
file = ""
recipe = "none"
credit = "none"
"#;
    let env = TuiEnv {
        catalog: crate::zoo::Catalog::parse(std::path::Path::new("fixture.toml"), catalog).unwrap(),
        datasets: vec![super::state::DatasetInfo {
            name: "tiny-set".into(),
            description: "a fixture".into(),
            task: Task::Classification,
            metric: "auc",
            demo: true,
            check: None,
        }],
        published: vec![crate::runs::leaderboard::PublishedRow {
            dataset: "tiny-set".into(),
            init: "random".into(),
            metric: "auc".into(),
            mean_percent: 55.0,
            std_percent: 1.0,
            note: None,
        }],
    };
    let mut s = State::new(env, Keymap::default(), false);
    let ids: Vec<&str> = s.zoo.iter().map(|m| m.entry.id.as_str()).collect();
    assert_eq!(ids, ["random"]);
    update(&mut s, Action::Show(View::Datasets));
    let text = screen(&s, 80, 24);
    assert!(text.contains("tiny-set") && !text.contains("chestxray14"), "{text}");
    update(&mut s, Action::Show(View::Leaderboard));
    update(&mut s, Action::TogglePublished);
    let text = screen(&s, 80, 24);
    assert!(line_with(&text, "tiny-set").contains("paper") && !text.contains("chestxray14"), "{text}");
}

#[test]
fn zoo_view_at_80x24_shows_states_runs_and_details() {
    let mut s = typical_zoo();
    zoo_cursor_to(&mut s, "barlowtwins");
    let text = screen(&s, 80, 24);
    assert!(text.contains("Zoo: 22 models, 1 converted"), "{text}");
    assert!(text.contains("supervised-imagenet:") && text.contains("self-supervised-imagenet:"), "{text}");
    let imagenet = row_of(&text, "imagenet");
    assert!(imagenet.contains("missing") && imagenet.contains(" 1 ") && imagenet.contains("0.9100"), "{imagenet}");
    assert!(row_of(&text, "barlowtwins").contains("converted"), "{text}");
    assert!(row_of(&text, "swav").contains("failed: sha256 mismatch"), "{text}");
    assert!(row_of(&text, "moco-v1").contains("downloading 42%"), "{text}");
    assert!(text.contains("Barlow Twins (barlowtwins): converted  [enter details]"), "the summary line:\n{text}");
    assert!(!text.contains("objective"), "details wait for enter:\n{text}");
    update(&mut s, Action::ToggleZooDetails);
    let text = screen(&s, 80, 24);
    assert!(text.contains(" Barlow Twins (barlowtwins) "), "details title:\n{text}");
    assert!(text.contains("objective  Barlow Twins (redundancy reduction) on ImageNet-1k"), "{text}");
    assert!(text.contains("paper      Barlow Twins: Self-Supervised Learning via Redundancy Reduction"), "{text}");
    assert!(text.contains("source     https://dl.fbaipublicfiles.com/barlowtwins/"), "{text}");
    assert!(text.contains(&format!("pinned     {}", "ab".repeat(32))), "the zoo.lock pin:\n{text}");
    assert!(text.contains("file       /h/cache/zoo/barlowtwins/resnet50.pth"), "{text}");
    assert!(text.lines().last().unwrap().contains("? help"), "{text}");

    zoo_cursor_to(&mut s, "chexpert");
    let text = screen(&s, 80, 24);
    assert!(text.contains("in-domain:"), "the cursor's heading scrolls into view:\n{text}");
    assert!(row_of(&text, "chexpert").contains("verified"), "{text}");
    assert!(!text.contains(" barlowtwins "), "scrolled past:\n{text}");
    assert!(text.contains("file       /h/cache/zoo/chexpert/chexpert.pth.tar"), "{text}");

    zoo_cursor_to(&mut s, "imagenet");
    let text = screen(&s, 80, 24);
    assert!(text.contains("sha256     none in the catalog: pinned in zoo.lock on first download"), "{text}");

    zoo_cursor_to(&mut s, "random");
    let text = screen(&s, 80, 24);
    assert!(row_of(&text, "random").contains("builtin"), "{text}");
    assert!(row_of(&text, "random").contains(" 1 "), "one run used random:\n{text}");
    assert!(text.contains("no checkpoint: the network starts from random weights"), "{text}");
}

#[test]
fn zoo_view_wide_puts_names_and_details_side_by_side() {
    let mut s = typical_zoo();
    zoo_cursor_to(&mut s, "simclr-v1");
    let text = screen(&s, 160, 48);
    let row = row_of(&text, "simclr-v1");
    assert!(row.contains("SimCLR") && row.contains("missing (manual)"), "{row}");
    assert!(line_with(&text, "SimCLR-v1 (simclr-v1)").contains("runs"), "details beside the list:\n{text}");
    let barlow = row_of(&text, "barlowtwins");
    assert!(barlow.contains("Barlow Twins") && barlow.contains("converted"), "{barlow}");
    assert!(text.contains("https://arxiv.org/abs/"), "paper URL when wide:\n{text}");
    assert!(text.contains("medxfer zoo import simclr-v1 FILE"), "manual steps:\n{text}");
    assert!(text.contains("imagenet-chexpert"), "all 22 rows fit at 48 lines:\n{text}");
}

#[test]
fn zoo_pull_and_verify_make_effects_for_the_model_under_the_cursor() {
    let mut s = typical_zoo();
    zoo_cursor_to(&mut s, "imagenet");
    assert!(update(&mut s, Action::ZooVerify).is_empty(), "nothing downloaded to verify");
    assert_eq!(s.message.as_deref(), Some("imagenet is not downloaded: press p to pull it first"));
    assert_eq!(update(&mut s, Action::ZooPull), [Effect::ZooPull { id: "imagenet".into() }]);
    assert_eq!(s.message.as_deref(), Some("running: medxfer zoo pull imagenet --json"));
    assert_eq!(s.current_model().unwrap().label(), "pulling...");
    assert!(update(&mut s, Action::ZooPull).is_empty(), "one pull at a time per model");
    let pulled = zoo_json("pull", "imagenet", Ok("sha256 19c8e357 (verified, converted)"), ModelState::Converted);
    // the outcome comes from stdout's report; stderr's last line is a progress message here
    let done = Effect::ZooPull { id: "imagenet".into() }.finished(true, &pulled, "imagenet: 100% done\n");
    update(&mut s, done);
    assert_eq!(s.current_model().unwrap().label(), "missing", "the watcher's report stands until it looks again");
    assert_eq!(s.message.as_deref(), Some("imagenet: sha256 19c8e357 (verified, converted)"));

    zoo_cursor_to(&mut s, "chexpert");
    assert_eq!(update(&mut s, Action::ZooVerify), [Effect::ZooVerify { id: "chexpert".into() }]);
    assert_eq!(s.current_model().unwrap().label(), "verifying...");
    let mismatch = ModelState::Failed { reason: "sha256 mismatch".into() };
    let report = zoo_json("verify", "chexpert", Err("sha256 mismatch (pinned in zoo.lock)"), mismatch);
    let failed = Effect::ZooVerify { id: "chexpert".into() }.finished(
        false,
        &report,
        "medxfer: verification failed for chexpert\n",
    );
    update(&mut s, failed);
    assert_eq!(
        s.message.as_deref(),
        Some("medxfer zoo verify chexpert --json failed: sha256 mismatch (pinned in zoo.lock)")
    );
    assert_eq!(s.current_model().unwrap().pending, None);

    zoo_cursor_to(&mut s, "random");
    assert!(update(&mut s, Action::ZooPull).is_empty());
    assert_eq!(s.message.as_deref(), Some("random has no checkpoint: nothing to pull"));
    assert_eq!(Effect::ZooVerify { id: "x".into() }.cli_args(), ["zoo", "verify", "x", "--json"]);
    let unknown = Effect::ZooPull { id: "x".into() }.finished(false, "", "medxfer: unknown zoo id \"x\"\n");
    let Action::ZooDone { message, ok: false, .. } = unknown else { panic!("{unknown:?}") };
    assert_eq!(message, "medxfer zoo pull x --json failed: medxfer: unknown zoo id \"x\"", "no report: stderr");
}

#[test]
fn demo_sweep_uses_random_and_at_most_three_converted_models() {
    let mut s = typical_zoo();
    let effects = update(&mut s, Action::DemoSweep);
    let sets = [("epochs", "3"), ("image_size", "32"), ("batch_size", "16"), ("threads", "1")];
    let sweep = Effect::EnqueueSweep(crate::sched::sweep::SweepRequest {
        dataset: "demo-cls".into(),
        models: vec!["random".into(), "barlowtwins".into()],
        trials: 2,
        overrides: sets.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    });
    assert_eq!(effects, std::slice::from_ref(&sweep));
    assert_eq!(
        s.message.as_deref(),
        Some(
            "launching demo sweep: random, barlowtwins on demo-cls, 2 trials each, as many at once as the agent's slots allow (epochs=3 image_size=32 batch_size=16 threads=1)"
        )
    );
    update(&mut s, sweep.finished(true, r#"{"count": 4, "new": 4, "existing": 0, "runs": []}"#, ""));
    assert_eq!(
        s.message.as_deref(),
        Some(
            "sweep queued: 4 new runs of random, barlowtwins on demo-cls, 2 trials each (epochs=3 image_size=32 batch_size=16 threads=1)"
        )
    );
    let agent = crate::sched::socket::AgentStatus { cpu_slots: 2, ..Default::default() };
    update(&mut s, Action::Host(Box::new(super::action::HostView { host: None, agent: Some(agent) })));
    update(&mut s, Action::DemoSweep);
    assert!(s.message.as_deref().unwrap().contains("2 trials each, up to 2 at once (scheduler.cpu_slots)"));
    update(&mut s, sweep.finished(false, "", "\nmedxfer: cannot reach the agent\n"));
    assert!(s.message.as_deref().unwrap().ends_with("failed: medxfer: cannot reach the agent"), "{:?}", s.message);

    let converted = ["imagenet", "swav", "moco-v2", "chexpert"].map(|id| (id, ModelState::Converted));
    let report = zoo_report(&s, &converted);
    update(&mut s, report);
    let effects = update(&mut s, Action::DemoSweep);
    let Effect::EnqueueSweep(sweep) = &effects[0] else { panic!("{effects:?}") };
    assert_eq!(sweep.models, ["random", "imagenet", "swav", "moco-v2"], "at most three, in the Zoo view's order");
    update(&mut s, Action::Show(View::Launch));
    assert!(screen(&s, 80, 24).contains("d      demo sweep instead"), "the demo sweep's key stays in Launch");
}

#[test]
fn an_unchanged_zoo_report_asks_for_no_frame() {
    let mut s = typical_zoo();
    s.dirty = false;
    let same = zoo_report(&s, &[("barlowtwins", ModelState::Converted)]);
    update(&mut s, same.clone());
    assert!(s.dirty, "moco-v1, swav and chexpert changed");
    s.dirty = false;
    update(&mut s, same);
    assert!(!s.dirty);
}

#[test]
fn data_check_runs_for_the_dataset_under_the_cursor_and_shows_its_report() {
    let mut s = two_runs();
    update(&mut s, Action::Show(View::Datasets));
    let names: Vec<&str> = s.datasets.iter().map(|d| d.name.as_str()).collect();
    assert!(names.contains(&"chestxray14") && names.contains(&"demo-cls") && names.contains(&"demo-seg"), "{names:?}");
    while s.current_dataset().unwrap().name != "demo-cls" {
        update(&mut s, Action::Down);
    }
    let effects = update(&mut s, Action::DataCheck);
    assert_eq!(effects, [Effect::DataCheck { dataset: "demo-cls".into() }]);
    assert_eq!(effects[0].cli_args(), ["data", "check", "demo-cls", "--json"]);
    assert_eq!(s.current_dataset().unwrap().check, Some(DataCheck::Running));
    assert!(update(&mut s, Action::DataCheck).is_empty(), "already running");
    let missing = "image /h/datasets/demo-cls/images/00007_000.png is missing (listed at train.txt:8)";
    let split = |split: &str, items| SplitReport {
        split: split.into(),
        list: format!("/h/datasets/demo-cls/{split}.txt").into(),
        items,
        prevalence: BTreeMap::new(),
        mask_pattern: None,
    };
    let report = CheckReport {
        dataset: "demo-cls".into(),
        root: "/h/datasets/demo-cls".into(),
        splits: vec![split("train", 300), split("val", 100), split("test", 100)],
        problems: vec![Problem { kind: Kind::MissingImage, message: missing.into() }],
        counts: BTreeMap::from([(Kind::MissingImage, 1)]),
        errors: vec![missing.into()],
    };
    let report = serde_json::to_string(&report).unwrap();
    update(&mut s, effects[0].finished(false, &report, "demo-cls: 1 problem(s) found"));
    assert_eq!(s.message.as_deref(), Some("demo-cls: 499 of 500 listed images found, 1 problem(s)"));
    let text = screen(&s, 80, 24);
    assert!(line_with(&text, "demo-cls").contains("1 problem(s)"), "{text}");
    assert!(text.contains("images: 499 of 500 listed found (train 300, val 100, test 100)"), "{text}");
    assert!(text.contains("00007_000.png is missing"), "{text}");
    assert!(line_with(&text, "demo-cls").contains(" 2 "), "two runs used demo-cls:\n{text}");

    update(&mut s, Action::Top);
    let chest = update(&mut s, Action::DataCheck);
    let reason = "medxfer: dataset chestxray14 needs a root folder: pass --root DIR (or set data.root)";
    update(&mut s, chest[0].finished(false, "", reason));
    assert_eq!(s.current_dataset().unwrap().check, Some(DataCheck::Failed(reason.into())));
    let text = screen(&s, 80, 24);
    assert!(text.contains("check failed: medxfer: dataset chestxray14 needs a root folder"), "{text}");
    assert!(line_with(&text, "chestxray14").contains("needs --root"), "{text}");
}

/// Missing images are counted from the report's `counts`, whatever its messages say.
#[test]
fn data_check_counts_missing_images_from_the_report_not_its_wording() {
    let messages = ["no file at a.png", "b.png: gone", "train.txt:3: image c.png is missing a label"];
    let report = CheckReport {
        dataset: "demo-cls".into(),
        root: "/d".into(),
        splits: vec![SplitReport {
            split: "train".into(),
            list: "/d/train.txt".into(),
            items: 10,
            prevalence: BTreeMap::new(),
            mask_pattern: None,
        }],
        problems: [Kind::MissingImage, Kind::MissingImage, Kind::MalformedLine]
            .into_iter()
            .zip(messages)
            .map(|(kind, message)| Problem { kind, message: message.into() })
            .collect(),
        counts: BTreeMap::from([(Kind::MissingImage, 2), (Kind::MalformedLine, 1)]),
        errors: messages.map(String::from).into(),
    };
    let effect = Effect::DataCheck { dataset: "demo-cls".into() };
    let action = effect.finished(false, &serde_json::to_string(&report).unwrap(), "");
    let Action::DataChecked { check, .. } = action else { panic!("{action:?}") };
    let problems = messages.map(String::from).into();
    assert_eq!(check, DataCheck::Done { splits: vec![("train".into(), 10)], listed: 10, found: 8, problems });
}

#[test]
fn help_lists_the_keys_of_zoo_and_datasets() {
    let mut s = typical_zoo();
    for (view, keys) in [(View::Zoo, &["p", "v", "d", "q"][..]), (View::Datasets, &["c", "q"][..])] {
        update(&mut s, Action::Show(view));
        update(&mut s, Action::ToggleHelp);
        let text = screen(&s, 80, 24);
        for (k, about) in s.keymap.help(view) {
            assert!(text.contains(&format!("{k} {about}")), "{view:?}: {k} {about}:\n{text}");
        }
        for k in keys {
            assert!(s.keymap.help(view).iter().any(|(h, _)| h == k), "{view:?} {k}");
        }
        update(&mut s, Action::ToggleHelp);
    }
}

mod board;
mod columns;
mod compare;
mod controls;
mod curves;
mod eval;
mod launch;
mod machine;
mod mouse;
mod progress;
mod trust;
mod zoo_import;
