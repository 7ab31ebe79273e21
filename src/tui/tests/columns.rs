//! The Runs table's GPU and ETA columns and the columns it drops to fit narrow terminals.

use super::super::action::Action;
use super::super::store::RunDelta;
use super::super::update::update;
use super::super::views::runs::fitting_columns;
use super::{A, B, epoch_line, line_with, screen, two_runs};
use crate::runs::record::{MetricLine, State as RunState, Status};
use crate::sched::slots::Slot;

/// B is running on GPU 1, 4 of 10 epochs done at 10 s each, and 5 s into its fifth epoch.
fn running_on_gpu() -> super::super::state::State {
    let mut s = two_runs();
    let step = MetricLine { kind: "step".into(), step: 450, elapsed_s: 45.0, ..epoch_line(5, 1e-4) };
    let mut status = Status::new(RunState::Running);
    status.epoch = 4;
    update(
        &mut s,
        Action::RunData(Box::new(RunDelta {
            id: B.into(),
            status: Some(status),
            slot: Some(Slot::Gpu(1)),
            lines: vec![step],
            ..RunDelta::default()
        })),
    );
    s
}

#[test]
fn eta_comes_from_the_epoch_times_less_the_time_spent() {
    let s = running_on_gpu();
    let run = &s.runs[B];
    assert_eq!(run.eta_s(), Some(100.0 - 45.0), "10 s per epoch, 10 planned, 45 s spent");
    assert_eq!(run.device(), "gpu1");
    assert_eq!(s.runs[A].eta_s(), None, "finished: no ETA");
    assert_eq!(s.runs[A].device(), "cpu", "not placed by the agent: the spec's device");
    let mut fresh = super::super::state::RunView::new("x".into());
    fresh.status = Some(Status::new(RunState::Running));
    assert_eq!(fresh.eta_s(), None, "no epoch done yet: unknown");
}

#[test]
fn runs_table_shows_gpu_and_eta_at_80x24_dropping_columns_that_do_not_fit() {
    let s = running_on_gpu();
    let text = screen(&s, 80, 24);
    let header = line_with(&text, "state");
    for column in ["model", "epoch", "val", "metric", "img/s", "GPU", "ETA"] {
        assert!(header.contains(column), "{column} at 80 columns: {header:?}");
    }
    assert!(!header.contains("dataset") && !header.contains("train"), "{header:?}");
    let row = line_with(&text, "random");
    assert!(row.contains("gpu1") && row.contains("0m55s"), "{row:?}");
    assert!(line_with(&text, "finished").trim_end().ends_with('-'), "no ETA when finished:\n{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 80));

    let wide = screen(&s, 160, 48);
    let header = line_with(&wide, "state");
    for column in ["dataset", "train", "GPU", "ETA", "id"] {
        assert!(header.contains(column), "{column} at 160 columns: {header:?}");
    }
    assert!(line_with(&wide, B).contains("gpu1"), "{wide}");
}

#[test]
fn columns_are_dropped_lowest_priority_first() {
    let names = |w| fitting_columns(w).len();
    assert_eq!(names(200), 14, "everything fits");
    assert_eq!(names(120), 13, "the id goes first");
    assert_eq!(names(80), 11, "then train loss and dataset");
    assert!(names(60) < names(80));
    assert_eq!(names(20), 4, "selection, state, model and metric never go");
}
