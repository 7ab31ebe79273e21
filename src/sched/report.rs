//! What the queue's action commands print with `--json` (`runs stop|kill|resume|restart|rm`, `queue
//! pause|resume`), and what the TUI reads back from them.

use crate::runs::record::State;
use serde::{Deserialize, Serialize};

/// `medxfer runs <verb> ID... --json`: one outcome per id, in the order given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReport {
    /// stop, kill, resume, restart or rm.
    pub verb: String,
    pub runs: Vec<ControlOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlOutcome {
    /// The id as given (a unique prefix is accepted).
    pub id: String,
    pub ok: bool,
    /// What was done when ok: stopping, killed, queued, queued from scratch, removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Why the agent refused, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The run's state afterwards; none once its folder is removed (or has no readable status.json).
    #[serde(default)]
    pub state: Option<State>,
}

impl ControlReport {
    pub fn refused(&self) -> impl Iterator<Item = &ControlOutcome> {
        self.runs.iter().filter(|r| !r.ok)
    }
}

/// `medxfer queue pause|resume --json`: whether the agent launches queued runs now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueReport {
    pub paused: bool,
}
