//! Frame time with 200 runs of 10,000 points each: the Runs table, a run's detail and Compare over all
//! 200 runs, drawn into a 160×48 TestBackend. Prints p50/p99 and the resident memory of the state.

use medxfer::runs::record::{
    DataSpec, DeviceSpec, Hyper, MetricLine, RunSpec, Snapshot, State as RunState, Status, Task,
};
use medxfer::tui::action::Action;
use medxfer::tui::keymap::Keymap;
use medxfer::tui::state::{State, View};
use medxfer::tui::store::RunDelta;
use medxfer::tui::update::update;
use ratatui::{Terminal, backend::TestBackend};
use std::collections::BTreeMap;
use std::time::Instant;

const RUNS: usize = 200;
const POINTS: u64 = 10_000;
const FRAMES: usize = 200;

fn delta(i: usize) -> RunDelta {
    let id = format!("20261126-081200-demo-cls-init{i:03}-t1");
    let lines = (0..POINTS)
        .map(|step| MetricLine {
            kind: if step % 100 == 99 { "epoch".into() } else { "step".into() },
            epoch: (step / 100) as u32,
            step,
            train_loss: Some(1.0 / (1.0 + step as f64 / 500.0) + (step % 7) as f64 * 0.01),
            val_loss: Some(1.1 / (1.0 + step as f64 / 500.0)),
            lr: if step < 5000 { 2e-4 } else { 1e-4 },
            images_per_s: 50.0,
            elapsed_s: step as f64,
            val: BTreeMap::from([("auc".into(), 0.8)]),
        })
        .collect();
    let spec = RunSpec {
        id: id.clone(),
        dataset: "demo-cls".into(),
        task: Task::Classification,
        init: format!("init{i:03}"),
        trial: 1,
        seed: 1,
        sweep: None,
        executor: "local".into(),
        data: DataSpec::default(),
        hyper: Hyper::study_defaults(Task::Classification),
        device: DeviceSpec::default(),
        snapshot: Snapshot::default(),
    };
    RunDelta { id, spec: Some(spec), status: Some(Status::new(RunState::Running)), lines, ..RunDelta::default() }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn frames_with_200_runs_of_10000_points() {
    let before = rss_kib();
    let mut state = State::new(Keymap::default(), true);
    for i in 0..RUNS {
        update(&mut state, Action::RunData(Box::new(delta(i))));
    }
    let state_kib = rss_kib().saturating_sub(before);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut report = Vec::new();
    for (name, setup) in
        [("runs table", vec![]), ("run detail", vec![Action::Open]), ("compare 200", vec![Action::Back])]
    {
        for action in setup {
            update(&mut state, action);
        }
        if name == "compare 200" {
            state.selected = state.runs.keys().cloned().collect();
            update(&mut state, Action::Show(View::Compare));
        }
        let mut times: Vec<f64> = (0..FRAMES)
            .map(|_| {
                let start = Instant::now();
                terminal.draw(|f| f.render_widget(&state, f.area())).unwrap();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
        report.push(format!("{name}: p50 {p50:.3} ms, p99 {p99:.3} ms"));
        assert!(p99 < 100.0, "{name}: p99 {p99:.1} ms");
    }
    let buckets: usize = state.runs.values().map(|r| r.train.buckets().len()).max().unwrap_or(0);
    assert!(buckets <= medxfer::tui::curve::CAPACITY, "{buckets}");
    eprintln!("{RUNS} runs × {POINTS} points, 160×48: {}; state RSS +{state_kib} KiB", report.join("; "));
}
