//! The zoo cache on disk: `<cache>/zoo/<id>/` paths, the small state file, and each model's state.

use super::catalog::Entry;
use super::lock::IdLock;
use crate::home::Home;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every path of one model in the cache.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub dir: PathBuf,
    /// The installed checkpoint, named as in the catalog.
    pub file: PathBuf,
    /// The file while it downloads (`<file>.part`).
    pub part: PathBuf,
    /// The converted weights (torchvision names, no fc).
    pub converted: PathBuf,
    pub state_file: PathBuf,
    pub lock_file: PathBuf,
}

impl ModelPaths {
    pub fn new(home: &Home, entry: &Entry) -> ModelPaths {
        let dir = home.zoo_cache().join(&entry.id);
        ModelPaths {
            file: dir.join(&entry.file),
            part: dir.join(format!("{}.part", entry.file)),
            converted: ModelPaths::converted_weights(&home.zoo_cache(), &entry.id),
            state_file: dir.join("state.json"),
            lock_file: dir.join(".lock"),
            dir,
        }
    }

    /// The converted weights of model `id` in the zoo cache `zoo_cache` (`Home::zoo_cache`).
    pub fn converted_weights(zoo_cache: &Path, id: &str) -> PathBuf {
        zoo_cache.join(id).join("resnet50.safetensors")
    }
}

/// What the zoo last recorded about a model (`state.json`, written atomically).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Recorded {
    /// "downloading", "downloaded" (pinned on first use), "verified", "failed".
    pub state: String,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size of the full file, when the server said it.
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Why the last conversion of the installed file failed; cleared when one succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_error: Option<String>,
}

impl Recorded {
    pub fn load(paths: &ModelPaths) -> Option<Recorded> {
        let text = std::fs::read_to_string(&paths.state_file).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save(&self, paths: &ModelPaths) -> Result<()> {
        crate::home::create_private_dir(&paths.dir)?;
        let bytes = serde_json::to_vec_pretty(self)?;
        crate::atomic::write(&paths.state_file, &bytes)
            .with_context(|| format!("cannot write {}", paths.state_file.display()))
    }
}

/// A model's state as `zoo list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ModelState {
    /// No checkpoint needed (`random`).
    Builtin,
    Missing,
    /// A `.part` exists and no attempt failed; `active` when a process holds the model's lock now (not
    /// active: the process was stopped, and the next pull resumes).
    Downloading {
        bytes: u64,
        total: Option<u64>,
        percent: Option<f64>,
        active: bool,
    },
    /// Installed, digest pinned on first use (nothing to check it against yet).
    Downloaded,
    /// Installed and its digest matched the catalog or an earlier pin.
    Verified,
    /// Installed and `resnet50.safetensors` exists.
    Converted,
    /// The last download, its verification or the conversion failed: why, and the next step.
    Failed {
        reason: String,
    },
}

/// One model in `medxfer zoo list --json`: the catalog's id, name, category and manual flag, and its state's
/// fields beside them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ListRow {
    pub id: String,
    pub name: String,
    pub category: String,
    pub manual: bool,
    #[serde(flatten)]
    pub state: ModelState,
}

impl ListRow {
    pub fn of(home: &Home, entry: &Entry) -> ListRow {
        ListRow {
            id: entry.id.clone(),
            name: entry.name.clone(),
            category: entry.category.clone(),
            manual: entry.manual,
            state: state_of(home, entry),
        }
    }
}

impl ModelState {
    /// One short word or phrase for tables.
    pub fn label(&self) -> String {
        match self {
            ModelState::Builtin => "builtin".into(),
            ModelState::Missing => "missing".into(),
            ModelState::Downloading { percent: Some(p), active, .. } => {
                format!("downloading {p:.0}%{}", if *active { "" } else { " (interrupted)" })
            }
            ModelState::Downloading { bytes, active, .. } => {
                format!("downloading {bytes} B{}", if *active { "" } else { " (interrupted)" })
            }
            ModelState::Downloaded => "downloaded".into(),
            ModelState::Verified => "verified".into(),
            ModelState::Converted => "converted".into(),
            ModelState::Failed { reason } => format!("failed: {reason}"),
        }
    }
}

/// Reads a model's state from the cache folder (never blocks on another process).
pub fn state_of(home: &Home, entry: &Entry) -> ModelState {
    if !entry.has_file() {
        return ModelState::Builtin;
    }
    let paths = ModelPaths::new(home, entry);
    let recorded = Recorded::load(&paths).unwrap_or_default();
    if paths.file.is_file() {
        if paths.converted.is_file() {
            return ModelState::Converted;
        }
        if let Some(error) = recorded.conversion_error {
            return ModelState::Failed { reason: format!("installed, but its conversion failed: {error}") };
        }
        return if recorded.state == "verified" { ModelState::Verified } else { ModelState::Downloaded };
    }
    let part_bytes = std::fs::metadata(&paths.part).ok().map(|m| m.len());
    let active = part_bytes.is_some() && IdLock::is_held(&paths.lock_file);
    if recorded.state == "failed" && !active {
        let reason = recorded.reason.unwrap_or_else(|| "unknown".into());
        let resume = match (part_bytes.filter(|b| *b > 0), recorded.total) {
            (Some(bytes), Some(total)) => format!(" (it resumes from byte {bytes} of {total})"),
            (Some(bytes), None) => format!(" (it resumes from byte {bytes})"),
            _ => String::new(),
        };
        let id = &entry.id;
        return ModelState::Failed {
            reason: format!(
                "{reason}; next: `medxfer zoo pull {id}` to retry{resume}, a mirror (MEDXFER_ZOO_MIRROR or [zoo] mirror), or `medxfer zoo import {id} FILE`"
            ),
        };
    }
    if let Some(bytes) = part_bytes {
        let total = recorded.total.filter(|t| *t > 0);
        let percent = total.map(|t| (bytes as f64 * 100.0 / t as f64).min(100.0));
        return ModelState::Downloading { bytes, total, percent, active };
    }
    ModelState::Missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `zoo list --json` keeps its flat rows (the state's fields beside the id) and reads back as the same type.
    #[test]
    fn a_list_row_is_flat_json_and_reads_back() {
        let row = ListRow {
            id: "swav".into(),
            name: "SwAV".into(),
            category: "self-supervised-imagenet".into(),
            manual: false,
            state: ModelState::Downloading { bytes: 10, total: Some(40), percent: Some(25.0), active: true },
        };
        let json: serde_json::Value = serde_json::to_value(&row).unwrap();
        assert_eq!(json["id"], "swav");
        assert_eq!(json["state"], "downloading");
        assert_eq!(json["bytes"], 10);
        assert_eq!(serde_json::from_value::<ListRow>(json).unwrap(), row);
    }
}
