//! The Launch view's keys (choose models, more/less, edit a text field, choose the converted models,
//! enqueue or plan the sweep) and the demo sweep.

use super::super::action::Action;
use super::super::demo::{self, DEMO_DATASET, DEMO_TRIALS};
use super::super::effect::Effect;
use super::super::keymap::Bind;
use super::super::launch::{self, Field, Outcome, Preflight, Row};
use super::super::state::{State, View};
use crate::sched::sweep::{PlanSummary, SweepRequest};
use std::collections::BTreeSet;

fn row(s: &State) -> Row {
    launch::row(s.cursor[View::Launch.index()])
}

/// Space on a model row: choose it, or leave it out again.
pub(super) fn select_model(s: &mut State) {
    if let Row::Model(i) = row(s)
        && let Some(id) = s.zoo.get(i).map(|m| m.entry.id.clone())
        && !s.launch.models.remove(&id)
    {
        s.launch.models.insert(id);
    }
}

/// `step` = 1 (more) or -1 (less): the next or previous dataset (with the folders remembered for it) or
/// executor, one trial more or less.
pub(super) fn more_or_less(s: &mut State, step: isize) {
    match row(s) {
        Row::Field(Field::Dataset) if !s.datasets.is_empty() => {
            let n = s.datasets.len() as isize;
            let at = s.datasets.iter().position(|d| d.name == s.launch.dataset).unwrap_or(0) as isize;
            s.launch.dataset = s.datasets[(at + step).rem_euclid(n) as usize].name.clone();
            let paths = s.dataset_paths.get(&s.launch.dataset).cloned().unwrap_or_default();
            s.launch.show_paths(&paths);
        }
        Row::Field(Field::Executor) => {
            let n = launch::EXECUTORS.len() as isize;
            let at = launch::EXECUTORS.iter().position(|e| *e == s.launch.executor).unwrap_or(0) as isize;
            s.launch.executor = launch::EXECUTORS[(at + step).rem_euclid(n) as usize].into();
        }
        Row::Field(Field::Trials) => {
            s.launch.trials = s.launch.trials.saturating_add_signed(step as i32).clamp(1, launch::MAX_TRIALS);
        }
        _ => s.message = Some("more/less change the dataset, the executor and the trials".into()),
    }
}

/// Starts typing into the text field under the cursor.
pub(super) fn edit(s: &mut State) {
    match row(s) {
        Row::Field(field) if field.is_text() => {
            let before = s.launch.text_mut(field).map(|t| t.clone()).unwrap_or_default();
            s.launch.editing = Some((field, before));
            s.launch.candidates.clear();
        }
        _ => s.message = Some(format!("{} edits the folder, anno % and overrides rows", s.keymap.key_of(Bind::Edit))),
    }
}

/// Chooses every converted model, or none when they all are chosen already.
pub(super) fn choose_converted(s: &mut State) {
    let converted: BTreeSet<String> = s.zoo.iter().filter(|m| m.is_converted()).map(|m| m.entry.id.clone()).collect();
    if converted.is_empty() {
        s.message = Some(format!("no converted model yet: pull one with {} in Zoo", s.keymap.key_of(Bind::ZooPull)));
    } else if converted.is_subset(&s.launch.models) {
        s.launch.models.clear();
    } else {
        s.launch.models.extend(converted);
    }
}

/// Enter (enqueue, refused while the plan has problems) or the dry run of the form's sweep.
pub(super) fn enqueue(s: &mut State, dry_run: bool) -> Vec<Effect> {
    let plan = match launch::plan(s) {
        Ok(plan) => plan,
        Err(problem) => {
            s.message = Some(problem);
            return Vec::new();
        }
    };
    let problems = launch::problems(s, &plan);
    if !dry_run && !problems.is_empty() {
        s.message = Some(format!("nothing enqueued: {}", problems.join("; ")));
        return Vec::new();
    }
    if !dry_run && !matches!(s.launch.outcome_for(&plan), Some(Outcome::Ready(_))) {
        s.message = Some("still checking the plan with medxfer sweep --dry-run: Enter again once it is done".into());
        return Vec::new();
    }
    if dry_run {
        s.launch.preflight = Some(Preflight { request: plan.clone(), outcome: Outcome::Checking });
    }
    let runs = plan.run_count();
    let (effect, verb) =
        if dry_run { (Effect::DryRun(plan), "planning") } else { (Effect::EnqueueSweep(plan), "launching") };
    s.message = Some(format!("{verb} {runs} runs: {}", effect.describe()));
    vec![effect]
}

/// Typing into the Launch field being edited; Tab completes a path, Enter keeps the text (a changed folder
/// is made absolute and remembered for the dataset in config.toml), Esc puts the old text back.
pub(super) fn edit_field(s: &mut State, action: Action) -> Vec<Effect> {
    let Some((field, before)) = s.launch.editing.clone() else { return Vec::new() };
    let Some(text) = s.launch.text_mut(field) else { return Vec::new() };
    match action {
        Action::FilterInput(c) => text.push(c),
        Action::FilterBackspace => {
            text.pop();
        }
        Action::PathCompleted(done) if field.is_path() => {
            *text = done.text;
            s.launch.candidates = match done.matches {
                0 => vec!["(no match)".into()],
                _ => done.candidates,
            };
        }
        Action::FilterDone => {
            let changed = *text != before;
            s.launch.editing = None;
            s.launch.candidates.clear();
            if field.is_path() && changed {
                return remember_paths(s, field);
            }
        }
        Action::Back => {
            *text = before;
            s.launch.editing = None;
            s.launch.candidates.clear();
        }
        _ => {}
    }
    Vec::new()
}

fn remember_paths(s: &mut State, field: Field) -> Vec<Effect> {
    let places = s.places.clone();
    if let Some(text) = s.launch.text_mut(field) {
        *text = launch::absolute_path(text, &places.cwd, places.user_home.as_deref());
    }
    let paths = s.launch.paths();
    s.dataset_paths.insert(s.launch.dataset.clone(), paths.clone());
    vec![Effect::RememberPaths { dataset: s.launch.dataset.clone(), paths }]
}

/// `medxfer sweep --dry-run`'s answer: kept when it is about the form's latest request.
pub(super) fn preflighted(
    s: &mut State,
    request: SweepRequest,
    outcome: Result<Box<PlanSummary>, String>,
    announce: bool,
) {
    if announce {
        s.message = Some(match &outcome {
            Ok(plan) => format!("dry run: {} runs, {} new, {} already exist", plan.count, plan.new, plan.existing),
            Err(why) => format!("dry run refused: {why}"),
        });
    }
    if s.launch.preflight.as_ref().is_some_and(|p| p.request == request) {
        let outcome = match outcome {
            Ok(plan) => Outcome::Ready(plan),
            Err(why) => Outcome::Refused(why),
        };
        s.launch.preflight = Some(Preflight { request, outcome });
    }
}

pub(super) fn demo_sweep(s: &mut State) -> Vec<Effect> {
    let request = demo::request(s);
    let sets: Vec<String> = request.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s.message = Some(format!(
        "launching demo sweep: {} on {DEMO_DATASET}, {DEMO_TRIALS} trials each, {} ({})",
        request.models.join(", "),
        demo::concurrency(s),
        sets.join(" ")
    ));
    vec![Effect::EnqueueSweep(request)]
}
