//! `update(&mut State, Action) -> Vec<Effect>`: every change to the TUI's state, with no I/O.
//! Effects are performed by the app, which reports back with actions (`Effect::finished`).

use super::action::{Action, Control, DataCheck};
use super::launch::{self, Field, Row};
use super::state::{RunView, State, View};
use super::views::leaderboard as leaderboard_view;
use crate::runs::record::State as RunState;
use crate::runs::{export, leaderboard};
use crate::zoo::ModelState;
use std::collections::BTreeSet;

/// The demo sweep that the demo_sweep key enqueues: `random` plus up to DEMO_MAX_PULLED zoo models whose
/// checkpoints are already converted, one trial each, with settings small enough for a CPU (minutes).
pub const DEMO_DATASET: &str = "demo-cls";
pub const DEMO_MAX_PULLED: usize = 3;
pub const DEMO_TRIALS: u32 = 1;
/// threads=1 as in tests/sched.rs: one intra-op thread per run, so that a run does not oversubscribe a busy
/// or shared CPU.
pub const DEMO_SETS: [&str; 4] = ["epochs=3", "image_size=32", "batch_size=16", "threads=1"];

/// The models the demo sweep would use now: `random` and the first converted zoo models (Zoo view order).
pub fn demo_models(s: &State) -> Vec<String> {
    let pulled = s.zoo.iter().filter(|m| m.is_converted()).map(|m| m.entry.id.clone()).take(DEMO_MAX_PULLED);
    std::iter::once("random".to_string()).chain(pulled).collect()
}

/// Work for the agent, performed by running medxfer's own command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `sets` are `--set KEY=VALUE` overrides.
    EnqueueSweep {
        dataset: String,
        models: Vec<String>,
        trials: u32,
        /// `--anno-percent`; empty = the command's default (100).
        anno_percents: Vec<u32>,
        sets: Vec<String>,
    },
    /// The `EnqueueSweep` inside, planned with `--dry-run --json`: writes nothing, says which runs exist.
    DryRun(Box<Effect>),
    /// `medxfer runs <verb> ID...`.
    Control {
        control: Control,
        ids: Vec<String>,
    },
    ZooPull {
        id: String,
    },
    ZooVerify {
        id: String,
    },
    DataCheck {
        dataset: String,
    },
    /// Files written (atomically) under `<home>/exports/`: (file name, contents). Runs no command.
    Export {
        files: Vec<(String, String)>,
    },
}

impl Effect {
    /// The medxfer arguments that perform the effect.
    pub fn cli_args(&self) -> Vec<String> {
        match self {
            Effect::EnqueueSweep { dataset, models, trials, anno_percents, sets } => {
                // --json: the outcome is read back as a `SweepSummary`, not from the text.
                let mut args = vec![
                    "sweep".into(),
                    "--dataset".into(),
                    dataset.clone(),
                    "--models".into(),
                    models.join(","),
                    "--trials".into(),
                    trials.to_string(),
                ];
                if !anno_percents.is_empty() {
                    let list: Vec<String> = anno_percents.iter().map(u32::to_string).collect();
                    args.extend(["--anno-percent".to_string(), list.join(",")]);
                }
                for set in sets {
                    args.extend(["--set".to_string(), set.clone()]);
                }
                args.push("--json".into());
                args
            }
            Effect::DryRun(sweep) => {
                let mut args = sweep.cli_args();
                args.insert(args.len() - 1, "--dry-run".to_string());
                args
            }
            Effect::Control { control, ids } => {
                ["runs", control.verb()].into_iter().map(String::from).chain(ids.iter().cloned()).collect()
            }
            Effect::ZooPull { id } => vec!["zoo".into(), "pull".into(), id.clone()],
            Effect::ZooVerify { id } => vec!["zoo".into(), "verify".into(), id.clone()],
            Effect::DataCheck { dataset } => vec!["data".into(), "check".into(), dataset.clone(), "--json".into()],
            Effect::Export { .. } => Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Effect::Export { files } => {
                format!("export {}", files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", "))
            }
            _ => format!("medxfer {}", self.cli_args().join(" ")),
        }
    }

    /// The action that reports an export's end: the paths written, or why not.
    pub fn exported(written: Result<Vec<std::path::PathBuf>, String>) -> Action {
        match written {
            Ok(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                Action::CommandFinished { ok: true, message: format!("exported {}", names.join(" and ")) }
            }
            Err(why) => Action::CommandFinished { ok: false, message: format!("export failed: {why}") },
        }
    }

    /// The action that reports the command's end (exit success, stdout, stderr) back to `update`.
    pub fn finished(&self, ok: bool, stdout: &str, stderr: &str) -> Action {
        let command = self.describe();
        let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = || lines().next().unwrap_or("no message").to_string();
        let failed = || format!("{command} failed: {}", first());
        match self {
            Effect::EnqueueSweep { dataset, models, trials, anno_percents, sets } => {
                let summary = serde_json::from_str::<SweepSummary>(stdout);
                let message = match summary {
                    Ok(plan) if ok && plan.new == 0 => format!(
                        "nothing queued: the {} runs of this sweep exist already (R in Runs trains one again)",
                        plan.count
                    ),
                    Ok(plan) if ok => {
                        let each =
                            if *trials == 1 { "1 trial each".to_string() } else { format!("{trials} trials each") };
                        let anno = if anno_percents.is_empty() {
                            String::new()
                        } else {
                            let list: Vec<String> = anno_percents.iter().map(u32::to_string).collect();
                            format!(" at {}% labels", list.join(","))
                        };
                        let existing = if plan.existing > 0 {
                            format!(" ({} exist already)", plan.existing)
                        } else {
                            String::new()
                        };
                        format!(
                            "sweep queued: {} new runs of {} on {dataset}{anno}, {each} ({}){existing}",
                            plan.new,
                            models.join(", "),
                            sets.join(" ")
                        )
                    }
                    _ => failed(),
                };
                Action::CommandFinished { ok: ok && message.starts_with("sweep queued"), message }
            }
            Effect::DryRun(_) => match serde_json::from_str::<SweepSummary>(stdout) {
                Ok(plan) if ok => {
                    let message =
                        format!("dry run: {} runs, {} new, {} already exist", plan.count, plan.new, plan.existing);
                    Action::CommandFinished { ok, message }
                }
                _ => Action::CommandFinished { ok: false, message: failed() },
            },
            Effect::Control { control, ids } => {
                // `runs <verb>` reports "ID: outcome" per run on stderr; a refusal starts with "medxfer:".
                let refusals: Vec<&str> = lines().filter(|l| l.starts_with("medxfer:")).collect();
                let message = match (ok, ids.len()) {
                    (true, 1) => lines().next_back().map_or_else(|| format!("{command}: done"), str::to_string),
                    (true, n) => format!("{} {n} runs: done", control.verb()),
                    (false, 1) => failed(),
                    (false, n) => format!(
                        "{} {n} runs: {} refused: {}",
                        control.verb(),
                        refusals.len(),
                        refusals.first().copied().unwrap_or("no message")
                    ),
                };
                Action::CommandFinished { ok, message }
            }
            Effect::ZooPull { id } | Effect::ZooVerify { id } => {
                // `zoo pull` ends with "ID: outcome"; failures start with "medxfer: ID: reason".
                let message = if ok {
                    lines().next_back().map_or_else(|| format!("{command}: done"), str::to_string)
                } else {
                    failed()
                };
                Action::ZooDone { id: id.clone(), ok, message }
            }
            Effect::DataCheck { dataset } => {
                let check = match serde_json::from_str::<serde_json::Value>(stdout) {
                    Ok(report) => check_summary(&report),
                    Err(_) => DataCheck::Failed(first()),
                };
                Action::DataChecked { dataset: dataset.clone(), check }
            }
            Effect::Export { files } => {
                let why = || lines().next().unwrap_or("no message").to_string();
                Effect::exported(if ok { Ok(files.iter().map(|f| f.0.clone().into()).collect()) } else { Err(why()) })
            }
        }
    }
}

/// What `medxfer sweep --json` (and `--dry-run --json`) prints about its plan.
#[derive(Debug, serde::Deserialize)]
struct SweepSummary {
    count: u64,
    new: u64,
    existing: u64,
}

/// Seconds a status-line message stays (the app sends one `Action::Tick` a second).
pub const MESSAGE_TICKS: u32 = 15;

/// Reads `data check --json`'s report: items per split, how many images exist, the problems.
fn check_summary(report: &serde_json::Value) -> DataCheck {
    let splits: Vec<(String, usize)> = report["splits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["split"].as_str().unwrap_or("?").to_string(), s["items"].as_u64().unwrap_or(0) as usize))
        .collect();
    let problems: Vec<String> =
        report["errors"].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect();
    let listed = splits.iter().map(|s| s.1).sum();
    let missing = problems.iter().filter(|p| p.starts_with("image ") && p.contains(" is missing")).count();
    DataCheck::Done { splits, listed, found: listed.saturating_sub(missing), problems }
}

pub fn update(s: &mut State, action: Action) -> Vec<Effect> {
    let before = s.message.clone();
    let effects = apply(s, action);
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
                s.log_scroll = 0;
            }
        }
        Action::ToggleFullLog => {
            if s.detail.is_none() {
                s.detail = s.current_run().map(|r| r.id.clone());
                s.log_full = s.detail.is_some();
            } else {
                s.log_full = !s.log_full;
            }
            s.log_scroll = 0;
        }
        Action::ToggleMessage => {
            if s.message.is_none() && s.last_failure.is_none() {
                s.message = Some("no message to show".into());
            } else {
                s.popup = !s.popup;
            }
        }
        Action::FilterInput(_) | Action::FilterBackspace | Action::FilterDone | Action::Back
            if s.launch.editing.is_some() =>
        {
            edit_launch_field(s, action);
        }
        Action::Back => {
            if s.popup {
                s.popup = false;
            } else if s.help {
                s.help = false;
            } else if s.filter_editing {
                s.filter_editing = false;
                s.filter.clear();
            } else if s.detail.is_some() {
                s.detail = None;
                s.log_full = false;
            } else if !s.filter.is_empty() {
                s.filter.clear();
            } else if !s.selected.is_empty() {
                s.message = Some(format!("cleared the selection of {} runs", s.selected.len()));
                s.selected.clear();
            }
        }
        Action::Select if s.view == View::Launch => {
            if let Row::Model(i) = launch::row(s.cursor())
                && let Some(id) = s.zoo.get(i).map(|m| m.entry.id.clone())
                && !s.launch.models.remove(&id)
            {
                s.launch.models.insert(id);
            }
        }
        Action::Select => {
            if let Some(id) = s.current_run().map(|r| r.id.clone())
                && !s.selected.remove(&id)
            {
                s.selected.insert(id);
            }
        }
        Action::SelectTrials => {
            let Some(run) = s.current_run() else {
                s.message = Some("no run under the cursor".into());
                return Vec::new();
            };
            let group = run.trial_group();
            let ids: BTreeSet<String> =
                s.runs.values().filter(|r| r.trial_group() == group).map(|r| r.id.clone()).collect();
            let message = format!("{} trials of {} on {} ({}%)", ids.len(), group.1, group.0, group.2);
            if ids.is_subset(&s.selected) {
                s.selected.retain(|id| !ids.contains(id));
                s.message = Some(format!("unselected the {message}"));
            } else {
                s.selected.extend(ids);
                s.message = Some(format!("selected the {message} for Compare"));
            }
        }
        Action::ToggleBands => s.compare_each = !s.compare_each,
        Action::ToggleZooDetails => s.zoo_details = !s.zoo_details,
        Action::ToggleHeatMap => s.board_heat = !s.board_heat,
        Action::TogglePublished => {
            s.board_published = !s.board_published;
            clamp_cursors(s);
        }
        Action::Export => return export(s),
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
            let models = demo_models(s);
            s.message = Some(format!(
                "launching demo sweep: {} on {DEMO_DATASET}, {DEMO_TRIALS} trial each ({})",
                models.join(", "),
                DEMO_SETS.join(" ")
            ));
            let sets = DEMO_SETS.iter().map(|s| s.to_string()).collect();
            return vec![Effect::EnqueueSweep {
                dataset: DEMO_DATASET.into(),
                models,
                trials: DEMO_TRIALS,
                anno_percents: Vec::new(),
                sets,
            }];
        }
        Action::More | Action::Less | Action::Edit | Action::Enqueue | Action::DryRun | Action::ChooseConverted => {
            return launch_action(s, action);
        }
        Action::ZooPull | Action::ZooVerify => {
            let pull = action == Action::ZooPull;
            let Some(model) = s.current_model() else {
                s.message = Some("no model under the cursor".into());
                return Vec::new();
            };
            let id = model.entry.id.clone();
            if !model.entry.has_file() {
                s.message =
                    Some(format!("{id} has no checkpoint: nothing to {}", if pull { "pull" } else { "verify" }));
                return Vec::new();
            }
            if let Some(verb) = model.pending {
                s.message = Some(format!("{id} is already {verb}"));
                return Vec::new();
            }
            let downloaded = matches!(
                model.state(),
                Some(ModelState::Downloaded | ModelState::Verified | ModelState::Converted | ModelState::Failed { .. })
            );
            if !pull && !downloaded {
                let key = s.keymap.key_of("zoo_pull");
                s.message = Some(format!("{id} is not downloaded: press {key} to pull it first"));
                return Vec::new();
            }
            let effect = if pull { Effect::ZooPull { id: id.clone() } } else { Effect::ZooVerify { id: id.clone() } };
            if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == id) {
                m.pending = Some(if pull { "pulling" } else { "verifying" });
            }
            s.message = Some(format!("running: {}", effect.describe()));
            return vec![effect];
        }
        Action::DataCheck => {
            let Some(dataset) = s.current_dataset() else {
                s.message = Some("no dataset under the cursor".into());
                return Vec::new();
            };
            let name = dataset.name.clone();
            if dataset.check == Some(DataCheck::Running) {
                s.message = Some(format!("{name} is already being checked"));
                return Vec::new();
            }
            let effect = Effect::DataCheck { dataset: name.clone() };
            if let Some(d) = s.datasets.iter_mut().find(|d| d.name == name) {
                d.check = Some(DataCheck::Running);
            }
            s.message = Some(format!("running: {}", effect.describe()));
            return vec![effect];
        }
        Action::RunControl(control) => {
            let Some(ids) = control_targets(s, control) else { return Vec::new() };
            if control.asks_first() {
                s.message = None;
                s.confirm = Some((control, ids));
                return Vec::new();
            }
            return run_control(s, control, ids);
        }
        Action::Confirm(yes) => {
            if let Some((control, ids)) = s.confirm.take() {
                if yes {
                    return run_control(s, control, ids);
                }
                s.message = Some(format!("{} {}: cancelled", control.verb(), targets_name(&ids)));
            }
        }
        Action::Redraw => {}
        Action::Tick => {
            s.message_age = s.message_age.saturating_add(1);
            let expired = s.message.is_some() && s.message_age >= MESSAGE_TICKS;
            if expired {
                s.message = None;
            }
            s.dirty = was_dirty || expired;
            return Vec::new();
        }
        Action::RunData(delta) => {
            let delta = *delta;
            let run = s.runs.entry(delta.id.clone()).or_insert_with(|| RunView::new(delta.id.clone()));
            if delta.spec.is_some() {
                run.spec = delta.spec;
            }
            if delta.status.is_some() {
                run.status = delta.status;
                run.slot = delta.slot;
            }
            if delta.result.is_some() || delta.result_removed {
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
        Action::CommandFinished { ok, message } => {
            if !ok {
                s.last_failure = Some(message.clone());
            }
            s.message = Some(message);
        }
        Action::ZooStates(statuses) => {
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
        Action::ZooDone { id, message, ok } => {
            if !ok {
                s.last_failure = Some(message.clone());
            }
            if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == id) {
                m.pending = None;
            }
            s.message = Some(message);
        }
        Action::DataChecked { dataset, check } => {
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
    }
    Vec::new()
}

/// The Launch form's keys: more/less on the dataset and trials rows, edit on a text field, choose the
/// converted models, enqueue.
fn launch_action(s: &mut State, action: Action) -> Vec<Effect> {
    let row = launch::row(s.cursor[View::Launch.index()]);
    match action {
        Action::More | Action::Less => {
            let step: isize = if action == Action::More { 1 } else { -1 };
            match row {
                Row::Field(Field::Dataset) if !s.datasets.is_empty() => {
                    let n = s.datasets.len() as isize;
                    let at = s.datasets.iter().position(|d| d.name == s.launch.dataset).unwrap_or(0) as isize;
                    s.launch.dataset = s.datasets[(at + step).rem_euclid(n) as usize].name.clone();
                }
                Row::Field(Field::Trials) => {
                    s.launch.trials = s.launch.trials.saturating_add_signed(step as i32).clamp(1, launch::MAX_TRIALS);
                }
                _ => s.message = Some("more/less change the dataset and the trials".into()),
            }
        }
        Action::Edit => match row {
            Row::Field(field) if field.is_text() => {
                let before = s.launch.text_mut(field).map(|t| t.clone()).unwrap_or_default();
                s.launch.editing = Some((field, before));
            }
            _ => s.message = Some(format!("{} edits the anno % and overrides rows", s.keymap.key_of("edit"))),
        },
        Action::ChooseConverted => {
            let converted: BTreeSet<String> =
                s.zoo.iter().filter(|m| m.is_converted()).map(|m| m.entry.id.clone()).collect();
            if converted.is_empty() {
                s.message =
                    Some(format!("no converted model yet: pull one with {} in Zoo", s.keymap.key_of("zoo_pull")));
            } else if converted.is_subset(&s.launch.models) {
                s.launch.models.clear();
            } else {
                s.launch.models.extend(converted);
            }
        }
        Action::Enqueue | Action::DryRun => match launch::plan(s) {
            Ok(plan) if action == Action::Enqueue && !launch::problems(s, &plan).is_empty() => {
                let problems = launch::problems(s, &plan);
                s.message = Some(format!("nothing enqueued: {}", problems.join("; ")));
            }
            Ok(plan) => {
                let (effect, verb) = match action {
                    Action::DryRun => (Effect::DryRun(Box::new(plan.effect())), "planning"),
                    _ => (plan.effect(), "launching"),
                };
                s.message = Some(format!("{verb} {} runs: {}", plan.runs(), effect.describe()));
                return vec![effect];
            }
            Err(problem) => s.message = Some(problem),
        },
        _ => {}
    }
    Vec::new()
}

/// Typing into the Launch field being edited; Enter keeps the text, Esc puts the old text back.
fn edit_launch_field(s: &mut State, action: Action) {
    let Some((field, before)) = s.launch.editing.clone() else { return };
    let Some(text) = s.launch.text_mut(field) else { return };
    match action {
        Action::FilterInput(c) => text.push(c),
        Action::FilterBackspace => {
            text.pop();
        }
        Action::FilterDone => s.launch.editing = None,
        Action::Back => {
            *text = before;
            s.launch.editing = None;
        }
        _ => {}
    }
}

/// The leaderboard of the dataset under the Leaderboard cursor, as CSV, Markdown and the bars figure (the
/// `medxfer results` exports), with the published rows when they are shown.
fn export(s: &mut State) -> Vec<Effect> {
    let rows = leaderboard_view::rows(s);
    let Some(dataset) = rows.get(s.cursor[View::Leaderboard.index()]).map(|r| r.dataset.clone()) else {
        s.message = Some("nothing to export yet: no finished runs".into());
        return Vec::new();
    };
    let options = leaderboard::Options { published: s.board_published, ..leaderboard::Options::default() };
    let board = match leaderboard::build(&leaderboard_view::results(s), &dataset, &options) {
        Ok(board) => board,
        Err(e) => {
            s.message = Some(format!("export failed: {}", crate::cli::one_sentence(&e)));
            return Vec::new();
        }
    };
    let stem: String = dataset
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let figure = crate::plot::figure::bars(&board, crate::plot::figure::Spread::Std, None)
        .map(|bars| crate::plot::Figure::Bars { bars, p_values: false })
        .and_then(|f| f.render(crate::plot::Format::Svg));
    let svg = match figure {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            s.message = Some(format!("export failed: {}", crate::cli::one_sentence(&e)));
            return Vec::new();
        }
    };
    let files = vec![
        (format!("leaderboard-{stem}.csv"), export::csv(&board)),
        (format!("leaderboard-{stem}.md"), export::markdown(&board)),
        (format!("leaderboard-{stem}.svg"), svg),
    ];
    let effect = Effect::Export { files };
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
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

/// One run by its id, several by their count.
pub fn targets_name(ids: &[String]) -> String {
    match ids {
        [id] => id.clone(),
        _ => format!("{} selected runs", ids.len()),
    }
}

fn run_control(s: &mut State, control: Control, ids: Vec<String>) -> Vec<Effect> {
    let effect = Effect::Control { control, ids };
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
}

fn is_key(action: &Action) -> bool {
    !matches!(
        action,
        Action::RunData(_)
            | Action::RunRemoved(_)
            | Action::Gpus(_)
            | Action::CommandFinished { .. }
            | Action::ZooStates(_)
            | Action::ZooDone { .. }
            | Action::DataChecked { .. }
            | Action::Tick
    )
}

fn show(s: &mut State, view: View) {
    s.view = view;
    s.filter_editing = false;
}

fn move_cursor(s: &mut State, to: impl Fn(usize, usize) -> usize) {
    if s.detail.is_some() && s.view == View::Runs {
        // In a run's detail the keys scroll its log: "up" goes back in time.
        let lines = s.detail.as_ref().and_then(|id| s.runs.get(id)).map_or(0, |r| r.log_tail.len());
        let from_top = lines.saturating_sub(1).saturating_sub(s.log_scroll);
        s.log_scroll = lines.saturating_sub(1).saturating_sub(to(from_top, lines));
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
