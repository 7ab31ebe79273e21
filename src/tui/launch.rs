//! The Launch view's sweep form (dataset, its folders, executor, models, trials, label percentages, `--set`
//! overrides) and the `SweepRequest` it makes: checked as `medxfer sweep` checks it without touching the
//! disk, then by `medxfer sweep --dry-run` itself (the preflight), and enqueued through that same command.

use super::keymap::Bind;
use super::state::State;
use crate::config::DatasetPaths;
use crate::sched::sweep::{self, PlanSummary, SweepRequest};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The form's fields, in the order of their rows; the Zoo models follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Dataset,
    Root,
    TrainList,
    ValList,
    TestList,
    Executor,
    Trials,
    Anno,
    Sets,
}

impl Field {
    pub const ALL: [Field; 9] = [
        Field::Dataset,
        Field::Root,
        Field::TrainList,
        Field::ValList,
        Field::TestList,
        Field::Executor,
        Field::Trials,
        Field::Anno,
        Field::Sets,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Field::Dataset => "dataset",
            Field::Root => "root",
            Field::TrainList => "train list",
            Field::ValList => "val list",
            Field::TestList => "test list",
            Field::Executor => "executor",
            Field::Trials => "trials",
            Field::Anno => "anno %",
            Field::Sets => "overrides",
        }
    }

    /// Typed in as text (the others change with more/less).
    pub fn is_text(self) -> bool {
        self.is_path() || matches!(self, Field::Anno | Field::Sets)
    }

    /// A folder or file: Tab completes it, and it is remembered per dataset in config.toml.
    pub fn is_path(self) -> bool {
        matches!(self, Field::Root | Field::TrainList | Field::ValList | Field::TestList)
    }
}

pub const EXECUTORS: [&str; 2] = ["local", "slurm"];

/// What `medxfer sweep --dry-run` said of a request: the same checks Enter's sweep will make.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Checking,
    Ready(Box<PlanSummary>),
    Refused(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preflight {
    pub request: SweepRequest,
    pub outcome: Outcome,
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
    /// The dataset's folder and lists as typed (empty = not given: the dataset's own lists).
    pub root: String,
    pub train_list: String,
    pub val_list: String,
    pub test_list: String,
    /// local or slurm.
    pub executor: String,
    /// Chosen zoo ids (random included).
    pub models: BTreeSet<String>,
    pub trials: u32,
    /// Comma-separated percentages of the training labels, as `--anno-percent` takes them.
    pub anno: String,
    /// Space-separated `KEY=VALUE`, each one `--set`.
    pub sets: String,
    /// The text field being typed into and its text before (Esc puts it back).
    pub editing: Option<(Field, String)>,
    /// Tab's last matches in a path field (listed beside the text).
    pub candidates: Vec<String>,
    /// The last request given to `medxfer sweep --dry-run` and its answer.
    pub preflight: Option<Preflight>,
}

impl Default for LaunchForm {
    fn default() -> Self {
        LaunchForm {
            dataset: "demo-cls".into(),
            root: String::new(),
            train_list: String::new(),
            val_list: String::new(),
            test_list: String::new(),
            executor: "local".into(),
            models: BTreeSet::new(),
            trials: 1,
            anno: "100".into(),
            sets: String::new(),
            editing: None,
            candidates: Vec::new(),
            preflight: None,
        }
    }
}

impl LaunchForm {
    pub fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        match field {
            Field::Root => Some(&mut self.root),
            Field::TrainList => Some(&mut self.train_list),
            Field::ValList => Some(&mut self.val_list),
            Field::TestList => Some(&mut self.test_list),
            Field::Anno => Some(&mut self.anno),
            Field::Sets => Some(&mut self.sets),
            Field::Dataset | Field::Executor | Field::Trials => None,
        }
    }

    pub fn text(&self, field: Field) -> &str {
        match field {
            Field::Root => &self.root,
            Field::TrainList => &self.train_list,
            Field::ValList => &self.val_list,
            Field::TestList => &self.test_list,
            Field::Anno => &self.anno,
            Field::Sets => &self.sets,
            Field::Dataset => &self.dataset,
            Field::Executor => &self.executor,
            Field::Trials => "",
        }
    }

    /// The folder fields as config.toml's `[datasets.<name>]` keeps them.
    pub fn paths(&self) -> DatasetPaths {
        let path = |t: &str| (!t.trim().is_empty()).then(|| PathBuf::from(t.trim()));
        DatasetPaths {
            root: path(&self.root),
            train_list: path(&self.train_list),
            val_list: path(&self.val_list),
            test_list: path(&self.test_list),
        }
    }

    /// Fills the folder fields from what config.toml remembers for the form's dataset.
    pub fn show_paths(&mut self, paths: &DatasetPaths) {
        let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        self.root = text(&paths.root);
        self.train_list = text(&paths.train_list);
        self.val_list = text(&paths.val_list);
        self.test_list = text(&paths.test_list);
    }

    /// The preflight's answer when it is about `plan`.
    pub fn outcome_for(&self, plan: &SweepRequest) -> Option<&Outcome> {
        self.preflight.as_ref().filter(|p| &p.request == plan).map(|p| &p.outcome)
    }
}

/// A typed path as the command needs it: `~/` is the user's home, a relative path is from where the TUI
/// was started (its commands run there too, but config.toml must not depend on it).
pub fn absolute_path(typed: &str, cwd: &std::path::Path, user_home: Option<&std::path::Path>) -> String {
    let typed = typed.trim();
    if typed.is_empty() {
        return String::new();
    }
    let path = match (typed.strip_prefix("~/"), user_home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => cwd.join(typed),
    };
    path.display().to_string()
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
    let paths = form.paths();
    Ok(SweepRequest {
        dataset: form.dataset.clone(),
        models,
        trials: form.trials,
        anno_percents,
        overrides,
        executor: Some(form.executor.clone()),
        root: paths.root,
        train_list: paths.train_list,
        val_list: paths.val_list,
        test_list: paths.test_list,
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

/// What the form itself shows would make the plan's runs fail: models without converted weights, a dataset
/// whose image folder is not given. One sentence each; the preflight is not asked while any is left.
pub fn form_problems(s: &State, plan: &SweepRequest) -> Vec<String> {
    let mut problems = Vec::new();
    let not_converted = not_converted(s, plan);
    if !not_converted.is_empty() {
        problems.push(format!(
            "not converted: {}: pull with {} in Zoo, or unselect",
            not_converted.join(", "),
            s.keymap.key_of(Bind::ZooPull)
        ));
    }
    if plan.root.is_none() && s.datasets.iter().any(|d| d.name == plan.dataset && !d.demo) {
        problems.push(format!(
            "root: type the folder {}'s images are under ({} on the root row; Tab completes)",
            plan.dataset,
            s.keymap.key_of(Bind::Edit)
        ));
    }
    problems
}

/// Everything that blocks Enter: the form's problems, then the preflight's refusal of this very plan.
pub fn problems(s: &State, plan: &SweepRequest) -> Vec<String> {
    let mut problems = form_problems(s, plan);
    if let Some(Outcome::Refused(why)) = s.launch.outcome_for(plan) {
        problems.push(why.clone());
    }
    problems
}

/// The preflight to start now: the form makes a plan with no problem of its own that `medxfer sweep
/// --dry-run` has not been asked about yet (while typing, only once the field is done).
pub fn preflight_due(s: &mut State) -> Option<SweepRequest> {
    if s.launch.editing.is_some() {
        return None;
    }
    let plan = plan(s).ok()?;
    if !form_problems(s, &plan).is_empty() || s.launch.preflight.as_ref().is_some_and(|p| p.request == plan) {
        return None;
    }
    s.launch.preflight = Some(Preflight { request: plan.clone(), outcome: Outcome::Checking });
    Some(plan)
}
