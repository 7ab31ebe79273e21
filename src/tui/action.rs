//! Actions: the one vocabulary of the TUI. Keys, watchers and finished commands all become actions.

use super::path_complete::Completion;
use super::state::View;
use super::store::RunDelta;
use crate::host::HostInfo;
use crate::sched::socket::AgentStatus;
use crate::sched::sweep::{PlanSummary, SweepRequest};
use crate::zoo::ModelState;
use std::path::PathBuf;

/// One zoo model as the zoo module reports it (`zoo::state_of`, the state `zoo list --json` shows).
#[derive(Debug, Clone, PartialEq)]
pub struct ZooStatus {
    pub id: String,
    pub state: ModelState,
    /// The downloaded checkpoint's path in the cache (None for `random`).
    pub file: Option<PathBuf>,
    /// The sha256 pinned in zoo.lock on first download, for entries without a catalog digest.
    pub pinned: Option<String>,
}

/// What `medxfer data check` found for one dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum DataCheck {
    /// The command is running.
    Running,
    /// The check ran: images listed per split, how many of them exist, and the problems it named.
    Done { splits: Vec<(String, usize)>, listed: usize, found: usize, problems: Vec<String> },
    /// The check could not run (e.g. a dataset that needs `--root`): the command's sentence.
    Failed(String),
}

/// The machine and the agent, as the GPUs view shows them beside (or instead of) the GPUs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    pub host: Option<HostInfo>,
    /// None while no agent answers on the home's socket.
    pub agent: Option<AgentStatus>,
}

/// A control of one run, performed by `medxfer runs stop|kill|resume|restart ID` (the agent makes the change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Stop,
    Kill,
    Resume,
    Restart,
}

impl Control {
    /// The `medxfer runs` subcommand.
    pub fn verb(self) -> &'static str {
        match self {
            Control::Stop => "stop",
            Control::Kill => "kill",
            Control::Resume => "resume",
            Control::Restart => "restart",
        }
    }

    /// Kill loses the current epoch and restart every epoch: both ask first.
    pub fn asks_first(self) -> bool {
        matches!(self, Control::Kill | Control::Restart)
    }
}

/// The runs a control acts on, as a message names them: one by its id, several by their count.
pub fn targets_name(ids: &[String]) -> String {
    match ids {
        [id] => id.clone(),
        _ => format!("{} selected runs", ids.len()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    ToggleHelp,
    NextView,
    PrevView,
    Show(View),
    Up,
    Down,
    Top,
    Bottom,
    /// Enter: open the run under the cursor.
    Open,
    /// Esc: close the help, the filter or the run detail.
    Back,
    /// Space: add the run under the cursor to (or remove it from) the selection (Compare, run controls).
    Select,
    /// `T` in Runs: select every trial of the run's model (or unselect them all).
    SelectTrials,
    /// `L` in Runs: the open run's log over the whole screen (again: back to curves and log).
    ToggleFullLog,
    /// `M`: a pop-up with the whole text of the status line's message, or of the last failure.
    ToggleMessage,
    /// Enter in Zoo: the full details of the model under the cursor, or the one-line summary (narrow terminals).
    ToggleZooDetails,
    /// `m` in Compare: every run, or trials as mean and band.
    ToggleBands,
    /// `c` in Leaderboard: the per-class heat map or the ranking.
    ToggleHeatMap,
    /// `r` in Leaderboard: show or hide the published reference rows.
    TogglePublished,
    /// `e` in Leaderboard: write the dataset's leaderboard as CSV and Markdown under the home.
    Export,
    FilterStart,
    /// Typing: into the Runs filter, or into the Launch field being edited.
    FilterInput(char),
    FilterBackspace,
    FilterDone,
    CycleSort,
    DemoSweep,
    /// `+`/`-` in Launch: the next/previous dataset, one trial more/less.
    More,
    Less,
    /// `e` in Launch: type into the text field under the cursor.
    Edit,
    /// Enter in Launch: enqueue the sweep the form describes.
    Enqueue,
    /// `p` in Launch: plan that sweep with `medxfer sweep --dry-run` (which runs exist already).
    DryRun,
    /// `a` in Launch: choose every converted model (again: choose none).
    ChooseConverted,
    /// Stop, kill, resume or restart the selected runs, or the run under the cursor when none is selected
    /// (kill and restart ask first).
    RunControl(Control),
    /// The answer to a pending question (y: go ahead; any other key: cancel).
    Confirm(bool),
    /// `e` in Runs: `medxfer eval` of the selected runs that have a best checkpoint, or of the run under the
    /// cursor, one after the other.
    EvalRuns,
    /// `p` in Zoo: download, verify and convert the model under the cursor.
    ZooPull,
    /// `v` in Zoo: re-hash the model under the cursor.
    ZooVerify,
    /// `i` in Zoo: import a manually downloaded file for the model under the cursor (opens a path prompt).
    ZooImport,
    /// A left click at a screen cell (column, row): a tab on the top row, else a list row.
    Click {
        column: u16,
        row: u16,
    },
    /// Tab while a path is typed: the app completes it from the file system.
    Complete,
    /// The app's completion of the typed path.
    PathCompleted(Completion),
    /// `c` in Datasets: `medxfer data check` for the dataset under the cursor.
    DataCheck,
    /// The terminal was resized: redraw.
    Redraw,
    /// One second passed (the app's clock): status-line messages age and expire.
    Tick,
    RunData(Box<RunDelta>),
    RunRemoved(String),
    Gpus(Vec<crate::gpu::Gpu>),
    /// The host probe's reading: CPUs, memory, load and the agent's status.
    Host(Box<HostView>),
    /// The zoo watcher's reading of every catalog model.
    ZooStates(Vec<ZooStatus>),
    /// A `zoo pull` or `zoo verify` of `id` ended.
    ZooDone {
        id: String,
        ok: bool,
        message: String,
    },
    /// `medxfer sweep --dry-run` answered for `request`: its plan, or the sentence it refused with.
    /// `announce`: asked for with the dry-run key (the status line says the outcome).
    Preflighted {
        request: Box<SweepRequest>,
        outcome: Result<Box<PlanSummary>, String>,
        announce: bool,
    },
    /// A `data check` ended.
    DataChecked {
        dataset: String,
        check: DataCheck,
    },
    /// A `medxfer eval` ended; `rest` are the runs still to evaluate, one after the other.
    EvalDone {
        ok: bool,
        message: String,
        rest: Vec<String>,
    },
    /// A spawned command ended; `message` is what the status line shows.
    CommandFinished {
        ok: bool,
        message: String,
    },
}
