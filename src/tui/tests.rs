//! Tests of `update` (actions → state and effects) and of the views rendered into a TestBackend.

use super::action::Action;
use super::keymap::Keymap;
use super::state::{State, View};
use super::store::RunDelta;
use super::update::{Effect, update};
use crate::runs::record::{
    DataSpec, DeviceSpec, Hyper, MetricLine, RunResult, RunSpec, Snapshot, State as RunState, Status, Task,
};
use ratatui::{Terminal, backend::TestBackend};
use std::collections::BTreeMap;

pub fn spec(id: &str, init: &str, trial: u32) -> RunSpec {
    RunSpec {
        id: id.into(),
        dataset: "demo-cls".into(),
        task: Task::Classification,
        init: init.into(),
        trial,
        seed: trial.into(),
        sweep: None,
        executor: "local".into(),
        data: DataSpec::default(),
        hyper: Hyper { epochs: 10, ..Hyper::study_defaults(Task::Classification) },
        device: DeviceSpec::default(),
        snapshot: Snapshot::default(),
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

const A: &str = "20261126-081200-demo-cls-imagenet-t1";
const B: &str = "20261126-081201-demo-cls-random-t1";

fn two_runs() -> State {
    let mut s = State::new(Keymap::default(), false);
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
    assert_eq!(effects[0].cli_args().join(" "), "sweep --dataset demo-cls --models random,imagenet --trials 1");
    assert!(update(&mut s, Action::StopRun).is_empty(), "the finished run cannot be stopped");
    assert!(s.message.as_deref().unwrap_or_default().contains("nothing to stop"));
    update(&mut s, Action::Down);
    assert_eq!(update(&mut s, Action::StopRun), [Effect::StopRun { id: B.into() }]);
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
    assert!(!small.contains(A), "ids only when wide:\n{small}");
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
        assert!(text.contains('*') && text.contains('o'), "{text}");
        let axis = text.lines().find(|l| l.contains("---")).unwrap_or_default();
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
    assert!(text.contains("auc 0.9200 ± 0.0100") && text.contains("auc 0.6100 ± 0.0000"), "{text}");
}

#[test]
fn other_views_render_at_80x24() {
    let mut s = two_runs();
    let cases = [
        (View::Zoo, "imagenet"),
        (View::Datasets, "classification"),
        (View::Launch, "press d to enqueue"),
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
