//! Everything the TUI shows, rebuilt from run folders: views, cursor, selection, filter, sort, runs.

use super::action::{Control, DataCheck, HostView, ZooStatus};
use super::board::BoardRow;
use super::curve::Series;
use super::env::TuiEnv;
use super::keymap::Keymap;
use super::launch::{Field, LaunchForm};
use crate::runs::leaderboard::PublishedRow;
use crate::runs::record::{MetricLine, RunResult, RunSpec, State as RunState, Status, Task};
use crate::sched::slots::Slot;
use crate::zoo::{Catalog, Entry, ModelState};
use std::collections::{BTreeMap, BTreeSet};

/// Where a typed path starts: relative ones in the folder the TUI was started in, `~/` in the user's home.
/// The app fills it in once, so `update` never asks the process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Places {
    pub cwd: std::path::PathBuf,
    pub user_home: Option<std::path::PathBuf>,
}

impl Places {
    pub fn of_this_process() -> Places {
        Places {
            cwd: std::env::current_dir().unwrap_or_default(),
            user_home: std::env::var_os("HOME").map(std::path::PathBuf::from),
        }
    }
}

/// The path prompt of `zoo import ID FILE`: the model, the path typed so far, the last completion's list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportPrompt {
    pub id: String,
    pub path: String,
    pub candidates: Vec<String>,
    /// Matches of the last completion (0 after one that found nothing).
    pub matches: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    Zoo,
    Datasets,
    Launch,
    Runs,
    Compare,
    Leaderboard,
    Gpus,
}

impl View {
    pub const ALL: [View; 7] =
        [View::Zoo, View::Datasets, View::Launch, View::Runs, View::Compare, View::Leaderboard, View::Gpus];

    /// The view's label in the tab bar, where the labels sit side by side from column 0.
    pub fn tab_label(self) -> String {
        format!(" {} {} ", self.index() + 1, self.title())
    }

    /// The view whose tab covers `column` of the tab bar.
    pub fn at_tab_column(column: u16) -> Option<View> {
        let mut end = 0usize;
        View::ALL.into_iter().find(|v| {
            end += v.tab_label().chars().count();
            usize::from(column) < end
        })
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Zoo => "Zoo",
            View::Datasets => "Datasets",
            View::Launch => "Launch",
            View::Runs => "Runs",
            View::Compare => "Compare",
            View::Leaderboard => "Leaderboard",
            View::Gpus => "GPUs",
        }
    }

    pub fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    State,
    Model,
    ValLoss,
    Metric,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Id => SortKey::State,
            SortKey::State => SortKey::Model,
            SortKey::Model => SortKey::ValLoss,
            SortKey::ValLoss => SortKey::Metric,
            SortKey::Metric => SortKey::Id,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::State => "state",
            SortKey::Model => "model",
            SortKey::ValLoss => "val loss",
            SortKey::Metric => "metric",
        }
    }
}

/// One run as the TUI knows it.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub id: String,
    pub spec: Option<RunSpec>,
    pub status: Option<Status>,
    pub result: Option<RunResult>,
    pub train: Series,
    pub val: Series,
    /// Steps at which the learning rate dropped (between consecutive lines).
    pub lr_drops: Vec<f64>,
    /// Step of each epoch line, by epoch (to place the best-epoch mark).
    pub epoch_steps: BTreeMap<u32, f64>,
    pub last: Option<MetricLine>,
    /// The newest epoch line's validation metric (name, value).
    pub val_metric: Option<(String, f64)>,
    pub log_tail: Vec<String>,
    pub problems: Vec<String>,
    /// Where the agent placed the run (agent.json), if it launched it locally.
    pub slot: Option<Slot>,
    /// Elapsed seconds at the newest epoch line, and that epoch.
    pub epoch_elapsed: Option<(u32, f64)>,
}

impl RunView {
    pub fn new(id: String) -> RunView {
        RunView { id, ..RunView::default() }
    }

    pub fn model(&self) -> &str {
        self.spec.as_ref().map_or("?", |s| s.init.as_str())
    }

    /// The runs that are trials of one experiment: dataset, init and label percentage.
    pub fn trial_group(&self) -> (&str, &str, u32) {
        (self.dataset(), self.model(), self.anno_percent())
    }

    pub fn dataset(&self) -> &str {
        self.spec.as_ref().map_or("?", |s| s.dataset.as_str())
    }

    pub fn state(&self) -> Option<RunState> {
        self.status.as_ref().map(|s| s.state)
    }

    /// The state as the TUI names it: a run the user killed reads "killed", not "stopped".
    pub fn state_name(&self) -> &'static str {
        match self.state() {
            Some(RunState::Stopped) if self.was_killed() => "killed",
            state => state.map_or("unknown", RunState::as_str),
        }
    }

    /// Stopped by `runs kill` (the agent records the reason "killed by user").
    pub fn was_killed(&self) -> bool {
        self.status.as_ref().and_then(|s| s.reason.as_deref()).is_some_and(|r| r.starts_with("killed"))
    }

    /// The anno % the run trains with (100 without a spec).
    pub fn anno_percent(&self) -> u32 {
        self.spec.as_ref().map_or(100, |s| s.data.anno_percent)
    }

    /// What `metric()` is: "test auc" once the result is in, else the validation headline's name.
    pub fn metric_label(&self) -> String {
        match (&self.result, &self.val_metric) {
            (Some(r), _) => format!("test {}", r.metric),
            (None, Some((name, _))) => format!("val {}", headline_label(name)),
            (None, None) => "metric".into(),
        }
    }

    /// The headline number: the test result when there is one, else the latest validation metric.
    pub fn metric(&self) -> Option<f64> {
        self.result.as_ref().map(|r| r.mean).or(self.val_metric.as_ref().map(|m| m.1))
    }

    /// Seconds left while running: the mean epoch time so far (metrics' elapsed_s at the newest epoch line)
    /// times the planned epochs, less the time already spent; None before the first epoch ends. Early
    /// stopping (patience) can end a run sooner.
    /// Before the first epoch ends, the step lines' throughput over the batches left (validation not counted).
    pub fn eta_s(&self) -> Option<f64> {
        let hyper = &self.spec.as_ref()?.hyper;
        let planned = hyper.epochs;
        if self.state() != Some(RunState::Running) {
            return None;
        }
        match self.epoch_elapsed {
            Some((epoch, at)) if epoch > 0 => {
                let spent = self.last.as_ref().map_or(at, |l| l.elapsed_s.max(at));
                Some((at / f64::from(epoch) * f64::from(planned.max(epoch)) - spent).max(0.0))
            }
            _ => {
                let last = self.last.as_ref().filter(|l| l.images_per_s > 0.0)?;
                let left = (last.epoch_batches? * u64::from(planned)).saturating_sub(last.step);
                Some(left as f64 * hyper.batch_size as f64 / last.images_per_s)
            }
        }
    }

    /// Batches done in the current epoch and batches per epoch, from the newest step line.
    pub fn epoch_progress(&self) -> Option<(u64, u64)> {
        let last = self.last.as_ref().filter(|l| l.kind == "step")?;
        let batches = last.epoch_batches?;
        let start = self.epoch_steps.range(..last.epoch).next_back().map_or(0.0, |(_, step)| *step) as u64;
        Some((last.step.saturating_sub(start).min(batches), batches))
    }

    /// Where the run trains: the agent's GPU or CPU slot, else the device its spec asks for.
    pub fn device(&self) -> String {
        match self.slot {
            Some(Slot::Gpu(i)) => format!("gpu{i}"),
            Some(Slot::Cpu(_)) => "cpu".into(),
            None => self.spec.as_ref().map_or("-".into(), |s| s.device.device.clone()),
        }
    }

    /// Folds new metric lines into the curves.
    pub fn apply_lines(&mut self, lines: Vec<MetricLine>) {
        for line in lines {
            let x = line.step as f64;
            if let Some(loss) = line.train_loss {
                self.train.push(x, loss);
            }
            if line.kind == "epoch" {
                if let Some(loss) = line.val_loss {
                    self.val.push(x, loss);
                }
                self.epoch_steps.insert(line.epoch, x);
                self.epoch_elapsed = Some((line.epoch, line.elapsed_s));
                self.val_metric = headline(&line.val);
            }
            if let Some(prev) = &self.last
                && line.lr < prev.lr
            {
                self.lr_drops.push(x);
            }
            self.last = Some(line);
        }
    }

    /// Forgets the curves (metrics.jsonl was rewritten).
    pub fn reset_curves(&mut self) {
        self.train = Series::default();
        self.val = Series::default();
        self.lr_drops.clear();
        self.epoch_steps.clear();
        self.last = None;
        self.val_metric = None;
        self.epoch_elapsed = None;
    }
}

/// The validation metric that stands for the run: the mean AUC or the per-image Dice, never one class's AUC.
pub fn headline(val: &BTreeMap<String, f64>) -> Option<(String, f64)> {
    HEADLINE_KEYS.iter().find_map(|k| val.get_key_value(*k)).or_else(|| val.iter().next()).map(|(k, v)| (k.clone(), *v))
}

/// The keys of metrics.jsonl's `val` map that summarise the task, best first.
const HEADLINE_KEYS: [&str; 3] = ["auc_mean", "auc", "dice"];

fn headline_label(key: &str) -> &str {
    if key == "auc_mean" { "auc" } else { key }
}

/// One catalog model in the Zoo view: the catalog entry and what the zoo watcher last reported.
#[derive(Debug, Clone)]
pub struct ZooModel {
    pub entry: Entry,
    /// None until the watcher has looked at the cache.
    pub status: Option<ZooStatus>,
    /// "pulling" / "verifying" while a command for this model runs.
    pub pending: Option<&'static str>,
}

impl ZooModel {
    pub fn state(&self) -> Option<&ModelState> {
        self.status.as_ref().map(|s| &s.state)
    }

    pub fn is_converted(&self) -> bool {
        matches!(self.state(), Some(ModelState::Converted))
    }

    /// The state as the table shows it.
    pub fn label(&self) -> String {
        match (self.state(), self.pending) {
            (Some(state @ ModelState::Downloading { .. }), _) => state.label(),
            (_, Some(verb)) => format!("{verb}..."),
            (Some(state), None) => state.label(),
            (None, None) => "checking...".into(),
        }
    }
}

/// The catalog models in the Zoo view's order: grouped by category (catalog::CATEGORIES order), catalog order
/// within a group.
pub fn zoo_models(catalog: &Catalog) -> Vec<ZooModel> {
    let rank = |e: &Entry| crate::zoo::catalog::CATEGORIES.iter().position(|c| *c == e.category).unwrap_or(usize::MAX);
    let mut entries: Vec<Entry> = catalog.entries.clone();
    entries.sort_by_key(rank);
    entries.into_iter().map(|entry| ZooModel { entry, status: None, pending: None }).collect()
}

/// One dataset spec in the Datasets view.
#[derive(Debug, Clone)]
pub struct DatasetInfo {
    pub name: String,
    pub description: String,
    pub task: Task,
    pub metric: &'static str,
    /// Generated in every home (demo-cls, demo-seg); the others need `--root`.
    pub demo: bool,
    pub check: Option<DataCheck>,
}

#[derive(Debug, Clone)]
pub struct State {
    pub view: View,
    pub runs: BTreeMap<String, RunView>,
    /// Cursor row per view.
    pub cursor: [usize; 7],
    pub filter: String,
    pub filter_editing: bool,
    pub sort: SortKey,
    /// Runs chosen for the Compare view.
    pub selected: BTreeSet<String>,
    /// Compare draws every selected run instead of each model's trials as mean and band.
    pub compare_each: bool,
    /// The run whose detail is open.
    pub detail: Option<String>,
    pub help: bool,
    /// A control of these runs waiting for y (kill and restart ask first); the status line asks the question.
    pub confirm: Option<(Control, Vec<String>)>,
    /// The status line: the last command's outcome or a problem.
    pub message: Option<String>,
    /// The newest failure's whole text (kept after the status line moves on), for the `M` pop-up.
    pub last_failure: Option<String>,
    /// The `M` pop-up is open.
    pub popup: bool,
    /// The open run's log: lines scrolled up from its end (0 follows the end).
    pub log_scroll: usize,
    /// The open run's log over the whole view.
    pub log_full: bool,
    /// Ticks (seconds) since `message` last changed: it is cleared after `MESSAGE_TICKS`.
    pub message_age: u32,
    /// None until NVML has been asked.
    pub gpus: Option<Vec<crate::gpu::Gpu>>,
    /// None until the host probe has reported.
    pub host: Option<HostView>,
    /// The whole zoo catalog, in the Zoo view's order.
    pub zoo: Vec<ZooModel>,
    /// The dataset specs known to the data module.
    pub datasets: Vec<DatasetInfo>,
    /// The Launch view's sweep form.
    pub launch: LaunchForm,
    /// Each dataset's folders as config.toml remembers them (the Launch form fills and updates them).
    pub dataset_paths: BTreeMap<String, crate::config::DatasetPaths>,
    pub places: Places,
    /// The Zoo's path prompt for `zoo import`, while it is open.
    pub import: Option<ImportPrompt>,
    /// The run `medxfer eval` is evaluating now (`e` in Runs evaluates one run at a time).
    pub evaluating: Option<String>,
    pub color: bool,
    /// The terminal has 256 colours or more (else the 16 basic ones).
    pub rich_color: bool,
    /// Zoo on a narrow terminal: the model's full details instead of a one-line summary under the list.
    pub zoo_details: bool,
    /// Leaderboard: the per-class heat map instead of the ranking.
    pub board_heat: bool,
    /// Leaderboard: the study's published numbers as reference rows.
    pub board_published: bool,
    /// The study's published numbers (`TuiEnv::published`).
    pub published: Vec<PublishedRow>,
    /// The Leaderboard's rows, derived from `runs` and `published`: `refresh_board` after either changes.
    pub board: Vec<BoardRow>,
    pub keymap: Keymap,
    pub quit: bool,
    /// Something visible changed since the last frame.
    pub dirty: bool,
    /// The list rows on screen after the last frame, as (screen row, item index in the view), for clicks.
    pub rows_on_screen: std::cell::RefCell<Vec<(u16, usize)>>,
}

impl State {
    /// The state before any run or watcher report: `env`'s models, datasets and published numbers.
    pub fn new(env: TuiEnv, keymap: Keymap, color: bool) -> State {
        State {
            view: View::Runs,
            runs: BTreeMap::new(),
            cursor: [0; 7],
            filter: String::new(),
            filter_editing: false,
            sort: SortKey::Id,
            selected: BTreeSet::new(),
            compare_each: false,
            detail: None,
            help: false,
            confirm: None,
            message: None,
            message_age: 0,
            last_failure: None,
            popup: false,
            log_scroll: 0,
            log_full: false,
            gpus: None,
            host: None,
            zoo: zoo_models(&env.catalog),
            datasets: env.datasets,
            launch: LaunchForm::default(),
            dataset_paths: BTreeMap::new(),
            places: Places::default(),
            import: None,
            evaluating: None,
            color,
            rich_color: false,
            zoo_details: false,
            board_heat: false,
            board_published: false,
            published: env.published,
            board: Vec::new(),
            keymap,
            quit: false,
            dirty: true,
            rows_on_screen: Default::default(),
        }
    }

    /// Rebuilds the Leaderboard's rows (a run's result came or went, or the published rows were toggled).
    pub fn refresh_board(&mut self) {
        self.board = super::board::rows(&self.runs, self.board_published.then_some(&self.published[..]));
    }

    /// What config.toml sets for the TUI's forms: the folders remembered per dataset, the default executor.
    pub fn apply_config(&mut self, config: &crate::config::Config) {
        self.dataset_paths = config.datasets.clone();
        self.launch.executor = config.scheduler.executor.clone();
        let paths = self.dataset_paths.get(&self.launch.dataset).cloned().unwrap_or_default();
        self.launch.show_paths(&paths);
    }

    /// The path being typed (the import prompt's, or a Launch folder field's): what Tab completes.
    pub fn path_being_typed(&self) -> Option<&str> {
        if let Some(prompt) = &self.import {
            return Some(&prompt.path);
        }
        match &self.launch.editing {
            Some((field, _)) if field.is_path() => Some(self.launch.text(*field)),
            _ => None,
        }
    }

    /// Keys type text (the Runs filter or a Launch field) instead of acting.
    pub fn typing(&self) -> bool {
        self.filter_editing || self.launch.editing.is_some() || self.import.is_some()
    }

    /// Remembers that item `index` of the current view's list is drawn on screen row `y`.
    pub fn row_drawn(&self, y: u16, index: usize) {
        self.rows_on_screen.borrow_mut().push((y, index));
    }

    pub fn cursor(&self) -> usize {
        self.cursor[self.view.index()]
    }

    /// The Runs table's rows: filtered (substring of id, model, dataset or state) and sorted.
    pub fn visible_runs(&self) -> Vec<&RunView> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<&RunView> = self
            .runs
            .values()
            .filter(|r| {
                needle.is_empty()
                    || [r.id.as_str(), r.model(), r.dataset(), r.state_name()].iter().any(|f| f.contains(&needle))
            })
            .collect();
        let key = |v: Option<f64>| v.unwrap_or(f64::INFINITY);
        match self.sort {
            SortKey::Id => {}
            SortKey::State => rows.sort_by_key(|r| r.state_name()),
            SortKey::Model => rows.sort_by(|a, b| a.model().cmp(b.model())),
            SortKey::ValLoss => rows.sort_by(|a, b| key(a.val.last()).total_cmp(&key(b.val.last()))),
            SortKey::Metric => rows.sort_by(|a, b| key(a.metric().map(|m| -m)).total_cmp(&key(b.metric().map(|m| -m)))),
        }
        rows
    }

    /// The run under the cursor in the Runs view (or the open detail's run).
    pub fn current_run(&self) -> Option<&RunView> {
        if let Some(id) = &self.detail {
            return self.runs.get(id);
        }
        self.visible_runs().get(self.cursor[View::Runs.index()]).copied()
    }

    /// The zoo model under the Zoo view's cursor.
    pub fn current_model(&self) -> Option<&ZooModel> {
        self.zoo.get(self.cursor[View::Zoo.index()])
    }

    /// The dataset under the Datasets view's cursor.
    pub fn current_dataset(&self) -> Option<&DatasetInfo> {
        self.datasets.get(self.cursor[View::Datasets.index()])
    }

    /// Rows the cursor moves over in the current view.
    pub fn rows_in_view(&self) -> usize {
        match self.view {
            View::Runs => self.visible_runs().len(),
            View::Zoo => self.zoo.len(),
            View::Datasets => self.datasets.len(),
            View::Leaderboard => self.board.len(),
            View::Gpus => self.gpus.as_ref().map_or(0, Vec::len),
            View::Launch => Field::ALL.len() + self.zoo.len(),
            View::Compare => 0,
        }
    }
}
