//! The Runs view's keys: open a run, its log, the selection, the filter, and run controls (stop, kill,
//! resume, restart; kill and restart ask first).

use super::super::action::{Control, targets_name};
use super::super::effect::Effect;
use super::super::state::{RunView, State, View};
use crate::runs::record::State as RunState;
use std::collections::BTreeSet;

pub(super) fn open(s: &mut State) {
    if s.view == View::Runs {
        s.detail = s.current_run().map(|r| r.id.clone());
        s.log_scroll = 0;
    }
}

pub(super) fn toggle_full_log(s: &mut State) {
    if s.detail.is_none() {
        s.detail = s.current_run().map(|r| r.id.clone());
        s.log_full = s.detail.is_some();
    } else {
        s.log_full = !s.log_full;
    }
    s.log_scroll = 0;
}

pub(super) fn select(s: &mut State) {
    if let Some(id) = s.current_run().map(|r| r.id.clone())
        && !s.selected.remove(&id)
    {
        s.selected.insert(id);
    }
}

/// Selects every trial of the run under the cursor (its dataset, model and anno %), or unselects them all.
pub(super) fn select_trials(s: &mut State) {
    let Some(run) = s.current_run() else {
        s.message = Some("no run under the cursor".into());
        return;
    };
    let group = run.trial_group();
    let ids: BTreeSet<String> = s.runs.values().filter(|r| r.trial_group() == group).map(|r| r.id.clone()).collect();
    let message = format!("{} trials of {} on {} ({}%)", ids.len(), group.1, group.0, group.2);
    if ids.is_subset(&s.selected) {
        s.selected.retain(|id| !ids.contains(id));
        s.message = Some(format!("unselected the {message}"));
    } else {
        s.selected.extend(ids);
        s.message = Some(format!("selected the {message} for Compare"));
    }
}

pub(super) fn filter_start(s: &mut State) {
    s.filter_editing = true;
    s.detail = None;
}

pub(super) fn filter_input(s: &mut State, c: char) {
    s.filter.push(c);
    s.cursor[View::Runs.index()] = 0;
}

pub(super) fn control(s: &mut State, control: Control) -> Vec<Effect> {
    let Some(ids) = control_targets(s, control) else { return Vec::new() };
    if control.asks_first() {
        s.message = None;
        s.confirm = Some((control, ids));
        return Vec::new();
    }
    run_control(s, control, ids)
}

/// The answer to the pending question of `control`.
pub(super) fn confirm(s: &mut State, yes: bool) -> Vec<Effect> {
    let Some((control, ids)) = s.confirm.take() else { return Vec::new() };
    if yes {
        return run_control(s, control, ids);
    }
    s.message = Some(format!("{} {}: cancelled", control.verb(), targets_name(&ids)));
    Vec::new()
}

/// The runs a control acts on: the selection when there is one (outside an open detail), else the run under
/// the cursor. From a selection, only runs the control applies to are kept; None (with the reason on the
/// status line) when nothing is left.
fn control_targets(s: &mut State, control: Control) -> Option<Vec<String>> {
    let verb = control.verb();
    if s.detail.is_none() && !s.selected.is_empty() {
        let applies = |r: &RunView| match control {
            Control::Stop | Control::Kill => matches!(r.state(), Some(RunState::Running | RunState::Queued)),
            Control::Resume => matches!(r.state(), Some(RunState::Stopped | RunState::Failed)),
            Control::Restart => r.state() != Some(RunState::Running),
        };
        let ids: Vec<String> = s.selected.iter().filter(|id| s.runs.get(*id).is_some_and(applies)).cloned().collect();
        if ids.is_empty() {
            s.message = Some(format!("none of the {} selected runs can be told to {verb}", s.selected.len()));
            return None;
        }
        return Some(ids);
    }
    let Some(run) = s.current_run() else {
        s.message = Some(format!("no run under the cursor to {verb}"));
        return None;
    };
    if control == Control::Stop && !matches!(run.state(), Some(RunState::Running | RunState::Queued)) {
        s.message = Some(format!("{} is {}: nothing to stop", run.id, run.state_name()));
        return None;
    }
    Some(vec![run.id.clone()])
}

fn run_control(s: &mut State, control: Control, ids: Vec<String>) -> Vec<Effect> {
    let effect = Effect::Control { control, ids };
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
}

/// `e`: evaluates the selected runs that have a best checkpoint (outside an open detail), else the run under
/// the cursor; one `medxfer eval` at a time, the next when the previous ends (`eval_done`).
pub(super) fn eval(s: &mut State) -> Vec<Effect> {
    if let Some(id) = &s.evaluating {
        s.message = Some(format!("medxfer eval of {id} is running: press e again once it has ended"));
        return Vec::new();
    }
    let has_best = |r: &RunView| r.status.as_ref().is_some_and(|st| st.best_epoch.is_some());
    let (ids, left_out) = if s.detail.is_none() && !s.selected.is_empty() {
        let ids: Vec<String> = s.selected.iter().filter(|id| s.runs.get(*id).is_some_and(has_best)).cloned().collect();
        if ids.is_empty() {
            s.message = Some(format!(
                "none of the {} selected runs has a best checkpoint to evaluate (it comes with a run's first epoch)",
                s.selected.len()
            ));
            return Vec::new();
        }
        let left_out = s.selected.len() - ids.len();
        (ids, left_out)
    } else {
        let Some(run) = s.current_run() else {
            s.message = Some("no run under the cursor to evaluate".into());
            return Vec::new();
        };
        if !has_best(run) {
            s.message = Some(format!(
                "{} has no best checkpoint to evaluate yet (it comes with the run's first epoch)",
                run.id
            ));
            return Vec::new();
        }
        (vec![run.id.clone()], 0)
    };
    s.evaluating = ids.first().cloned();
    let effect = Effect::Eval { ids };
    let skipped = match left_out {
        0 => String::new(),
        n => format!("; {n} selected without a best checkpoint left out"),
    };
    s.message = Some(format!("running: {}{}{skipped}", effect.describe(), eval_queue(&effect)));
    vec![effect]
}

/// One `medxfer eval` ended: its result or error on the status line (a failure also for `M`), then the next.
pub(super) fn eval_done(s: &mut State, ok: bool, message: String, rest: Vec<String>) -> Vec<Effect> {
    if !ok {
        s.last_failure = Some(message.clone());
    }
    s.evaluating = rest.first().cloned();
    if rest.is_empty() {
        s.message = Some(message);
        return Vec::new();
    }
    let next = Effect::Eval { ids: rest };
    s.message = Some(format!("{message}; next: {}{}", next.describe(), eval_queue(&next)));
    vec![next]
}

/// " (then N more)" when the effect evaluates more runs after its first.
fn eval_queue(effect: &Effect) -> String {
    match effect {
        Effect::Eval { ids } if ids.len() > 1 => format!(" (then {} more)", ids.len() - 1),
        _ => String::new(),
    }
}
