//! What `medxfer zoo pull|verify|import|rm --json` prints, one outcome per model, and the TUI reads back.

use super::cache::{ModelPaths, ModelState, Recorded, state_of};
use super::catalog::Entry;
use crate::home::Home;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooReport {
    /// pull, verify, import or rm.
    pub verb: String,
    pub models: Vec<ZooOutcome>,
}

/// One model: whether the command succeeded for it, and its state afterwards with the fields of
/// `zoo list --json` beside the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZooOutcome {
    pub id: String,
    pub ok: bool,
    #[serde(flatten)]
    pub state: ModelState,
    /// What was done when ok, e.g. "sha256 … (verified, converted)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it failed, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The installed checkpoint, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl ZooOutcome {
    /// The outcome of `entry` (what was done, or why not), with its state, installed file and recorded digest
    /// as the cache holds them now.
    pub fn of(home: &Home, entry: &Entry, done: Result<String, String>) -> ZooOutcome {
        let paths = ModelPaths::new(home, entry);
        let installed = entry.has_file() && paths.file.is_file();
        let (message, error) = match done {
            Ok(message) => (Some(message), None),
            Err(error) => (None, Some(error)),
        };
        ZooOutcome {
            id: entry.id.clone(),
            ok: error.is_none(),
            state: state_of(home, entry),
            message,
            error,
            file: installed.then(|| paths.file.display().to_string()),
            sha256: if installed { Recorded::load(&paths).and_then(|r| r.sha256) } else { None },
        }
    }
}

impl ZooReport {
    /// The outcome for model `id`, when the report has one.
    pub fn model(&self, id: &str) -> Option<&ZooOutcome> {
        self.models.iter().find(|m| m.id == id)
    }
}
