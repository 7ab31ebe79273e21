//! The Launch view's sweep form (dataset, models, trials, label percentages, `--set` overrides) and the
//! `SweepRequest` it makes: checked as `medxfer sweep` checks it, without touching the disk, and enqueued
//! through that same command.

use super::keymap::Bind;
use super::state::State;
use crate::sched::sweep::{self, SweepRequest};
use std::collections::BTreeSet;

/// The form's fields, in the order of their rows; the Zoo models follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Dataset,
    Trials,
    Anno,
    Sets,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Dataset, Field::Trials, Field::Anno, Field::Sets];

    pub fn label(self) -> &'static str {
        match self {
            Field::Dataset => "dataset",
            Field::Trials => "trials",
            Field::Anno => "anno %",
            Field::Sets => "overrides",
        }
    }

    /// Typed in as text (the others change with more/less).
    pub fn is_text(self) -> bool {
        matches!(self, Field::Anno | Field::Sets)
    }
}

/// What the Launch cursor is on: a field, or the Zoo model at an index of `State::zoo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Field(Field),
    Model(usize),
}

pub fn row(cursor: usize) -> Row {
    match Field::ALL.get(cursor) {
        Some(field) => Row::Field(*field),
        None => Row::Model(cursor - Field::ALL.len()),
    }
}

pub const MAX_TRIALS: u32 = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct LaunchForm {
    pub dataset: String,
    /// Chosen zoo ids (random included).
    pub models: BTreeSet<String>,
    pub trials: u32,
    /// Comma-separated percentages of the training labels, as `--anno-percent` takes them.
    pub anno: String,
    /// Space-separated `KEY=VALUE`, each one `--set`.
    pub sets: String,
    /// The text field being typed into and its text before (Esc puts it back).
    pub editing: Option<(Field, String)>,
}

impl Default for LaunchForm {
    fn default() -> Self {
        LaunchForm {
            dataset: "demo-cls".into(),
            models: BTreeSet::new(),
            trials: 1,
            anno: "100".into(),
            sets: String::new(),
            editing: None,
        }
    }
}

impl LaunchForm {
    pub fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        match field {
            Field::Anno => Some(&mut self.anno),
            Field::Sets => Some(&mut self.sets),
            Field::Dataset | Field::Trials => None,
        }
    }
}

/// The form as the sweep `medxfer sweep` will be asked for (models in the Zoo view's order; no anno % for
/// 100, the command's default), or the sentence that says what is wrong with it.
pub fn plan(s: &State) -> Result<SweepRequest, String> {
    let form = &s.launch;
    let models: Vec<String> =
        s.zoo.iter().filter(|m| form.models.contains(&m.entry.id)).map(|m| m.entry.id.clone()).collect();
    if models.is_empty() {
        return Err(format!("choose at least one model with {}", s.keymap.key_of(Bind::Select)));
    }
    let mut anno_percents = Vec::new();
    for part in form.anno.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(p) if (1..=100).contains(&p) => anno_percents.push(p),
            _ => return Err(format!("anno %: {part:?} is not a percentage between 1 and 100")),
        }
    }
    if anno_percents == [100] {
        anno_percents.clear();
    }
    let overrides = form.sets.split_whitespace().map(sweep::parse_override).collect::<anyhow::Result<Vec<_>>>();
    let overrides = match overrides.and_then(|o| sweep::check_overrides(&form.dataset, &o).map(|()| o)) {
        Ok(overrides) => overrides,
        Err(e) => return Err(format!("overrides: {e}")),
    };
    Ok(SweepRequest {
        dataset: form.dataset.clone(),
        models,
        trials: form.trials,
        anno_percents,
        overrides,
        ..SweepRequest::default()
    })
}

/// The chosen zoo models whose converted weights are not in the cache yet.
pub fn not_converted(s: &State, plan: &SweepRequest) -> Vec<String> {
    s.zoo
        .iter()
        .filter(|m| plan.models.contains(&m.entry.id) && m.entry.has_file() && !m.is_converted())
        .map(|m| m.entry.id.clone())
        .collect()
}

/// What would make the plan's runs fail: models without converted weights, a dataset whose images are not
/// in the home. Enter refuses while any is left; one sentence each.
pub fn problems(s: &State, plan: &SweepRequest) -> Vec<String> {
    let mut problems = Vec::new();
    let not_converted = not_converted(s, plan);
    if !not_converted.is_empty() {
        problems.push(format!(
            "not converted: {}: pull with {} in Zoo, or unselect",
            not_converted.join(", "),
            s.keymap.key_of(Bind::ZooPull)
        ));
    }
    if s.datasets.iter().any(|d| d.name == plan.dataset && !d.demo) {
        problems.push(format!(
            "{} needs its image folder, which the form cannot set yet: medxfer sweep --dataset {} --root DIR",
            plan.dataset, plan.dataset
        ));
    }
    problems
}
