//! What arrives without a key: the clock, the run-folder and zoo watchers, NVML, finished commands.

use super::super::action::{DataCheck, HostView, ZooStatus};
use super::super::state::{RunView, State};
use super::super::store::RunDelta;
use super::MESSAGE_TICKS;
use super::nav::clamp_cursors;

/// One second passed: the status-line message ages, and goes once it is MESSAGE_TICKS old.
pub(super) fn tick(s: &mut State, was_dirty: bool) {
    s.message_age = s.message_age.saturating_add(1);
    let expired = s.message.is_some() && s.message_age >= MESSAGE_TICKS;
    if expired {
        s.message = None;
    }
    s.dirty = was_dirty || expired;
}

/// What the run-folder watcher read anew from one run.
pub(super) fn run_data(s: &mut State, delta: RunDelta) {
    let run = s.runs.entry(delta.id.clone()).or_insert_with(|| RunView::new(delta.id.clone()));
    if delta.spec.is_some() {
        run.spec = delta.spec;
    }
    if delta.status.is_some() {
        run.status = delta.status;
        run.slot = delta.slot;
    }
    let result_changed = delta.result.is_some() || delta.result_removed;
    if result_changed {
        run.result = delta.result;
    }
    if let Some(log) = delta.log_tail {
        run.log_tail = log;
    }
    if delta.reset {
        run.reset_curves();
    }
    run.apply_lines(delta.lines);
    if let Some(problem) = delta.problems.last() {
        s.message = Some(problem.clone());
    }
    run.problems.extend(delta.problems);
    if result_changed {
        s.refresh_board();
    }
    clamp_cursors(s);
}

pub(super) fn run_removed(s: &mut State, id: &str) {
    let had_result = s.runs.remove(id).is_some_and(|r| r.result.is_some());
    s.selected.remove(id);
    if s.detail.as_deref() == Some(id) {
        s.detail = None;
    }
    if had_result {
        s.refresh_board();
    }
    clamp_cursors(s);
}

pub(super) fn gpus(s: &mut State, gpus: Vec<crate::gpu::Gpu>, was_dirty: bool) {
    s.dirty = was_dirty || s.gpus.as_ref() != Some(&gpus);
    s.gpus = Some(gpus);
}

pub(super) fn host(s: &mut State, view: HostView, was_dirty: bool) {
    s.dirty = was_dirty || s.host.as_ref() != Some(&view);
    s.host = Some(view);
}

pub(super) fn command_finished(s: &mut State, ok: bool, message: String) {
    if !ok {
        s.last_failure = Some(message.clone());
    }
    s.message = Some(message);
}

/// The zoo watcher's reading: a frame only when some model's state changed.
pub(super) fn zoo_states(s: &mut State, statuses: Vec<ZooStatus>, was_dirty: bool) {
    let mut changed = false;
    for status in statuses {
        if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == status.id)
            && m.status.as_ref() != Some(&status)
        {
            m.status = Some(status);
            changed = true;
        }
    }
    s.dirty = was_dirty || changed;
}

pub(super) fn zoo_done(s: &mut State, id: &str, ok: bool, message: String) {
    if !ok {
        s.last_failure = Some(message.clone());
    }
    if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == id) {
        m.pending = None;
    }
    s.message = Some(message);
}

pub(super) fn data_checked(s: &mut State, dataset: &str, check: DataCheck) {
    let summary = match &check {
        DataCheck::Done { listed, found, problems, .. } => {
            format!("{dataset}: {found} of {listed} listed images found, {} problem(s)", problems.len())
        }
        DataCheck::Failed(reason) => format!("{dataset}: check failed: {reason}"),
        DataCheck::Running => format!("{dataset}: checking..."),
    };
    if let Some(d) = s.datasets.iter_mut().find(|d| d.name == dataset) {
        d.check = Some(check);
    }
    s.message = Some(summary);
}
