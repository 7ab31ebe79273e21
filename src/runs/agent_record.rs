//! agent.json: what the agent records about the process of a local run (written by the agent only), and
//! the execution slot it runs in. Readers (the TUI's GPU column) get it through `runs::store`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const AGENT_RECORD_FILE: &str = "agent.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "index", rename_all = "lowercase")]
pub enum Slot {
    Cpu(usize),
    /// A GPU index as NVML numbers it.
    Gpu(u32),
}

impl Slot {
    /// CUDA_VISIBLE_DEVICES for a run in this slot ("" hides every GPU).
    pub fn cuda_visible_devices(self) -> String {
        match self {
            Slot::Cpu(_) => String::new(),
            Slot::Gpu(i) => i.to_string(),
        }
    }
}

/// What the agent knows about the process of a run: enough to re-adopt it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub pid: u32,
    /// /proc/PID/stat field 22: tells a live run from a reused pid.
    pub start_time: u64,
    pub slot: Slot,
    /// Launches so far (1 = first).
    pub attempts: u32,
    pub launched: String,
}

impl AgentRecord {
    pub fn load(dir: &Path) -> Option<AgentRecord> {
        let text = std::fs::read_to_string(dir.join(AGENT_RECORD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(AGENT_RECORD_FILE);
        crate::atomic::write(&path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
