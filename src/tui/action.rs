//! Actions: the one vocabulary of the TUI. Keys, watchers and finished commands all become actions.

use super::state::View;
use super::store::RunDelta;

/// A GPU as the GPUs view shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuInfo {
    pub index: u32,
    pub name: String,
    pub memory_total_mib: u64,
    pub memory_free_mib: u64,
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
    /// Space: add the run under the cursor to (or remove it from) the comparison.
    Select,
    FilterStart,
    FilterInput(char),
    FilterBackspace,
    FilterDone,
    CycleSort,
    DemoSweep,
    StopRun,
    /// The terminal was resized: redraw.
    Redraw,
    RunData(Box<RunDelta>),
    RunRemoved(String),
    Gpus(Vec<GpuInfo>),
    /// A spawned command ended; `message` is what the status line shows.
    CommandFinished {
        ok: bool,
        message: String,
    },
}
