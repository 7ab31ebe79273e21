//! Frame time with 200 runs of 10,000 points each: the Runs table, a run's detail and Compare over all
//! 200 runs (each on its own, then as the trials of one model: mean and band), drawn into a 160×48 TestBackend. Prints p50/p99 and the resident memory of the state (make bench
//! reads them); it asserts only that the curves stay downsampled.

use medxfer::runs::record::{MetricLine, RunSpec, State as RunState, Status, Task};
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
            epoch_batches: None,
        })
        .collect();
    let spec = RunSpec::study(&id, "demo-cls", Task::Classification, &format!("init{i:03}"));
    RunDelta { id, spec: Some(spec), status: Some(Status::new(RunState::Running)), lines, ..RunDelta::default() }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// CPU time of this thread in ms: on a busy shared machine it leaves out time spent waiting to be scheduled.
fn thread_cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn frames_with_200_runs_of_10000_points() {
    let before = rss_kib();
    let mut state = State::new(medxfer::tui::env::TuiEnv::embedded(), Keymap::default(), true);
    for i in 0..RUNS {
        update(&mut state, Action::RunData(Box::new(delta(i))));
    }
    let state_kib = rss_kib().saturating_sub(before);
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let (mut report, mut figures) = (Vec::new(), Vec::new());
    let views = [
        ("runs table", vec![]),
        ("run detail", vec![Action::Open]),
        ("compare 200", vec![Action::Back]),
        ("compare 200 trials as mean and band", vec![]),
    ];
    for (name, setup) in views {
        for action in setup {
            update(&mut state, action);
        }
        if name == "compare 200" {
            state.selected = state.runs.keys().cloned().collect();
            update(&mut state, Action::Show(View::Compare));
        }
        if name == "compare 200 trials as mean and band" {
            for run in state.runs.values_mut() {
                run.spec.as_mut().unwrap().init = "imagenet".into();
            }
            assert!(!state.compare_each);
        }
        let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..FRAMES)
            .map(|_| {
                let (start, cpu_start) = (Instant::now(), thread_cpu_ms());
                terminal.draw(|f| f.render_widget(&state, f.area())).unwrap();
                (start.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - cpu_start)
            })
            .unzip();
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        let (p50, p99) = (percentile(&wall, 0.5), percentile(&wall, 0.99));
        let (cpu50, cpu99) = (percentile(&cpu, 0.5), percentile(&cpu, 0.99));
        report.push(format!("{name}: wall p50 {p50:.3} p99 {p99:.3} ms, cpu p50 {cpu50:.3} p99 {cpu99:.3} ms"));
        figures.push(serde_json::json!({"view": name, "wall_p50_ms": p50, "wall_p99_ms": p99, "cpu_p99_ms": cpu99}));
    }
    let buckets: usize = state.runs.values().map(|r| r.train.buckets().len()).max().unwrap_or(0);
    assert!(buckets <= medxfer::tui::curve::CAPACITY, "{buckets}");
    eprintln!("{RUNS} runs × {POINTS} points, 160×48: {}; state RSS +{state_kib} KiB", report.join("; "));
    // Read by scripts/bench (timing goals live there, not in tests).
    let bench = serde_json::json!({"frames": figures, "state_rss_kib": state_kib});
    eprintln!("BENCH_JSON {bench}");
}
