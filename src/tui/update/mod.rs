//! `update(&mut State, Action) -> Vec<Effect>`: every change to the TUI's state, with no I/O. This file
//! dispatches each action to the module of its area; effects are performed by the app, which reports back
//! with actions (`Effect::finished`).

mod board;
mod datasets;
mod incoming;
mod launch;
mod nav;
mod runs;
mod zoo;

use super::action::Action;
use super::effect::Effect;
use super::state::{State, View};

/// Seconds a status-line message stays (the app sends one `Action::Tick` a second).
pub const MESSAGE_TICKS: u32 = 15;

pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    let before = s.message.clone();
    let mut effects = apply(s, action);
    if s.view == View::Launch
        && let Some(request) = super::launch::preflight_due(s)
    {
        effects.push(Effect::Preflight(request));
    }
    if s.message != before {
        s.message_age = 0;
    }
    effects
}

fn apply(s: &mut State, action: Action) -> Vec<Effect> {
    let was_dirty = s.dirty;
    s.dirty = true;
    if s.help && !matches!(action, Action::Quit | Action::ToggleHelp | Action::Back | Action::Redraw) && is_key(&action)
    {
        s.help = false;
    }
    match action {
        Action::Quit => s.quit = true,
        Action::ToggleHelp => s.help = !s.help,
        Action::NextView => nav::step_view(s, 1),
        Action::PrevView => nav::step_view(s, View::ALL.len() - 1),
        Action::Show(view) => nav::show(s, view),
        Action::Up => nav::move_cursor(s, |c, _| c.saturating_sub(1)),
        Action::Down => nav::move_cursor(s, |c, n| (c + 1).min(n.saturating_sub(1))),
        Action::Top => nav::move_cursor(s, |_, _| 0),
        Action::Bottom => nav::move_cursor(s, |_, n| n.saturating_sub(1)),
        Action::ToggleMessage => nav::toggle_message(s),
        // Typing into the import prompt or a Launch field.
        Action::FilterInput(_)
        | Action::FilterBackspace
        | Action::FilterDone
        | Action::Back
        | Action::Complete
        | Action::PathCompleted(_)
            if s.import.is_some() || s.launch.editing.is_some() =>
        {
            return if s.import.is_some() { zoo::import_edit(s, action) } else { launch::edit_field(s, action) };
        }
        Action::ZooImport => zoo::import_start(s),
        Action::Click { column, row } => nav::click(s, column, row),
        Action::Complete | Action::PathCompleted(_) => {}
        Action::Back => nav::back(s),
        Action::Redraw => {}
        Action::Open => runs::open(s),
        Action::ToggleFullLog => runs::toggle_full_log(s),
        Action::Select if s.view == View::Launch => launch::select_model(s),
        Action::Select => runs::select(s),
        Action::SelectTrials => runs::select_trials(s),
        Action::ToggleBands => s.compare_each = !s.compare_each,
        Action::FilterStart => runs::filter_start(s),
        Action::FilterInput(c) => runs::filter_input(s, c),
        Action::FilterBackspace => {
            s.filter.pop();
        }
        Action::FilterDone => s.filter_editing = false,
        Action::CycleSort => s.sort = s.sort.next(),
        Action::RunControl(control) => return runs::control(s, control),
        Action::Confirm(yes) => return runs::confirm(s, yes),
        Action::EvalRuns => return runs::eval(s),
        Action::EvalDone { ok, message, rest } => return runs::eval_done(s, ok, message, rest),
        Action::ToggleZooDetails => s.zoo_details = !s.zoo_details,
        Action::ZooPull | Action::ZooVerify => return zoo::pull_or_verify(s, action == Action::ZooPull),
        Action::DataCheck => return datasets::check(s),
        Action::DemoSweep => return launch::demo_sweep(s),
        Action::More => launch::more_or_less(s, 1),
        Action::Less => launch::more_or_less(s, -1),
        Action::Edit => launch::edit(s),
        Action::ChooseConverted => launch::choose_converted(s),
        Action::Enqueue => return launch::enqueue(s, false),
        Action::DryRun => return launch::enqueue(s, true),
        Action::ToggleHeatMap => s.board_heat = !s.board_heat,
        Action::TogglePublished => board::toggle_published(s),
        Action::Export => return board::export(s),
        Action::Tick => incoming::tick(s, was_dirty),
        Action::RunData(delta) => incoming::run_data(s, *delta),
        Action::RunRemoved(id) => incoming::run_removed(s, &id),
        Action::Gpus(gpus) => incoming::gpus(s, gpus, was_dirty),
        Action::Host(view) => incoming::host(s, *view, was_dirty),
        Action::CommandFinished { ok, message } => incoming::command_finished(s, ok, message),
        Action::ZooStates(statuses) => incoming::zoo_states(s, statuses, was_dirty),
        Action::ZooDone { id, message, ok } => incoming::zoo_done(s, &id, ok, message),
        Action::DataChecked { dataset, check } => incoming::data_checked(s, &dataset, check),
        Action::Preflighted { request, outcome, announce } => launch::preflighted(s, *request, outcome, announce),
    }
    Vec::new()
}

/// A key (not a watcher's report, a finished command or the clock).
fn is_key(action: &Action) -> bool {
    !matches!(
        action,
        Action::RunData(_)
            | Action::RunRemoved(_)
            | Action::Gpus(_)
            | Action::Host(_)
            | Action::CommandFinished { .. }
            | Action::EvalDone { .. }
            | Action::ZooStates(_)
            | Action::ZooDone { .. }
            | Action::DataChecked { .. }
            | Action::Preflighted { .. }
            | Action::Tick
    )
}
