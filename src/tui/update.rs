//! `update(&mut State, Action) -> Vec<Effect>`: every change to the TUI's state, with no I/O.
//! Effects are performed by the app, which reports back with actions.

use super::action::Action;
use super::state::{RunView, State, View};
use crate::runs::record::State as RunState;

/// The demo sweep that the demo_sweep key enqueues.
pub const DEMO_DATASET: &str = "demo-cls";
pub const DEMO_MODELS: [&str; 2] = ["random", "imagenet"];
pub const DEMO_TRIALS: u32 = 1;

/// Work for the agent, performed by running medxfer's own command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    EnqueueSweep { dataset: String, models: Vec<String>, trials: u32 },
    StopRun { id: String },
}

impl Effect {
    /// The medxfer arguments that perform the effect.
    pub fn cli_args(&self) -> Vec<String> {
        match self {
            Effect::EnqueueSweep { dataset, models, trials } => vec![
                "sweep".into(),
                "--dataset".into(),
                dataset.clone(),
                "--models".into(),
                models.join(","),
                "--trials".into(),
                trials.to_string(),
            ],
            Effect::StopRun { id } => vec!["runs".into(), "stop".into(), id.clone()],
        }
    }

    pub fn describe(&self) -> String {
        format!("medxfer {}", self.cli_args().join(" "))
    }
}

pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    let was_dirty = s.dirty;
    s.dirty = true;
    if s.help && !matches!(action, Action::Quit | Action::ToggleHelp | Action::Back | Action::Redraw) && is_key(&action)
    {
        s.help = false;
    }
    match action {
        Action::Quit => s.quit = true,
        Action::ToggleHelp => s.help = !s.help,
        Action::NextView => show(s, View::ALL[(s.view.index() + 1) % View::ALL.len()]),
        Action::PrevView => show(s, View::ALL[(s.view.index() + View::ALL.len() - 1) % View::ALL.len()]),
        Action::Show(view) => show(s, view),
        Action::Up => move_cursor(s, |c, _| c.saturating_sub(1)),
        Action::Down => move_cursor(s, |c, n| (c + 1).min(n.saturating_sub(1))),
        Action::Top => move_cursor(s, |_, _| 0),
        Action::Bottom => move_cursor(s, |_, n| n.saturating_sub(1)),
        Action::Open => {
            if s.view == View::Runs {
                s.detail = s.current_run().map(|r| r.id.clone());
            }
        }
        Action::Back => {
            if s.help {
                s.help = false;
            } else if s.filter_editing {
                s.filter_editing = false;
                s.filter.clear();
            } else if s.detail.is_some() {
                s.detail = None;
            } else {
                s.filter.clear();
            }
        }
        Action::Select => {
            if let Some(id) = s.current_run().map(|r| r.id.clone())
                && !s.selected.remove(&id)
            {
                s.selected.insert(id);
            }
        }
        Action::FilterStart => {
            s.filter_editing = true;
            s.detail = None;
        }
        Action::FilterInput(c) => {
            s.filter.push(c);
            s.cursor[View::Runs.index()] = 0;
        }
        Action::FilterBackspace => {
            s.filter.pop();
        }
        Action::FilterDone => s.filter_editing = false,
        Action::CycleSort => s.sort = s.sort.next(),
        Action::DemoSweep => {
            let effect = Effect::EnqueueSweep {
                dataset: DEMO_DATASET.into(),
                models: DEMO_MODELS.iter().map(|m| m.to_string()).collect(),
                trials: DEMO_TRIALS,
            };
            s.message = Some(format!("running: {}", effect.describe()));
            return vec![effect];
        }
        Action::StopRun => {
            let Some(run) = s.current_run() else {
                s.message = Some("no run under the cursor to stop".into());
                return Vec::new();
            };
            if !matches!(run.state(), Some(RunState::Running | RunState::Queued)) {
                s.message = Some(format!("{} is {}: nothing to stop", run.id, run.state_name()));
                return Vec::new();
            }
            let effect = Effect::StopRun { id: run.id.clone() };
            s.message = Some(format!("running: {}", effect.describe()));
            return vec![effect];
        }
        Action::Redraw => {}
        Action::RunData(delta) => {
            let delta = *delta;
            let run = s.runs.entry(delta.id.clone()).or_insert_with(|| RunView::new(delta.id.clone()));
            if delta.spec.is_some() {
                run.spec = delta.spec;
            }
            if delta.status.is_some() {
                run.status = delta.status;
            }
            if delta.result.is_some() {
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
            clamp_cursors(s);
        }
        Action::RunRemoved(id) => {
            s.runs.remove(&id);
            s.selected.remove(&id);
            if s.detail.as_deref() == Some(id.as_str()) {
                s.detail = None;
            }
            clamp_cursors(s);
        }
        Action::Gpus(gpus) => {
            s.dirty = was_dirty || s.gpus.as_ref() != Some(&gpus);
            s.gpus = Some(gpus);
        }
        Action::CommandFinished { message, .. } => s.message = Some(message),
    }
    Vec::new()
}

fn is_key(action: &Action) -> bool {
    !matches!(action, Action::RunData(_) | Action::RunRemoved(_) | Action::Gpus(_) | Action::CommandFinished { .. })
}

fn show(s: &mut State, view: View) {
    s.view = view;
    s.filter_editing = false;
}

fn move_cursor(s: &mut State, to: impl Fn(usize, usize) -> usize) {
    if s.detail.is_some() && s.view == View::Runs {
        return;
    }
    let rows = s.rows_in_view();
    let i = s.view.index();
    s.cursor[i] = to(s.cursor[i], rows);
}

fn clamp_cursors(s: &mut State) {
    let view = s.view;
    for v in View::ALL {
        s.view = v;
        let rows = s.rows_in_view();
        s.cursor[v.index()] = s.cursor[v.index()].min(rows.saturating_sub(1));
    }
    s.view = view;
}
