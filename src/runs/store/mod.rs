//! The run store: the one reader that lists the run folders under `<home>/runs`. Here: whole reads (`runs ls`,
//! `results`, the leaderboard) and the agent's queue; `scan`: the TUI's incremental read; `tail`: metrics.jsonl
//! from a byte offset. Readers never lock and never write; a folder that is not a valid run is skipped with a
//! warning, never an error.

pub mod scan;
pub mod tail;

pub use tail::{MetricsTail, TailRead};

use super::record::{RESULT_FILE, RunResult, RunSpec, STATUS_FILE, State, Status};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One run folder as read now. `status` or `result` are None when absent or unreadable (see `warnings`).
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    pub id: String,
    pub dir: PathBuf,
    pub spec: RunSpec,
    pub status: Option<Status>,
    pub result: Option<RunResult>,
}

impl RunEntry {
    /// Reads one run folder; fails only when its spec.toml is missing or invalid.
    pub fn read(dir: &Path, warnings: &mut Vec<String>) -> Result<RunEntry> {
        let spec = RunSpec::load(dir)?;
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if spec.id != name {
            bail!("{}: field id {:?} differs from the folder name {name:?}", dir.join("spec.toml").display(), spec.id);
        }
        let status = read_optional(dir, STATUS_FILE, Status::load, warnings);
        let result = read_optional(dir, RESULT_FILE, RunResult::load, warnings);
        Ok(RunEntry { id: spec.id.clone(), dir: dir.to_path_buf(), spec, status, result })
    }

    /// The state from status.json; None when it is missing or unreadable.
    pub fn state(&self) -> Option<State> {
        self.status.as_ref().map(|s| s.state)
    }

    /// The state as a word, "unknown" without a readable status.json.
    pub fn state_name(&self) -> &'static str {
        self.state().map_or("unknown", State::as_str)
    }

    pub fn epoch(&self) -> u32 {
        self.status.as_ref().map(|s| s.epoch).unwrap_or(0)
    }
}

fn read_optional<T>(
    dir: &Path,
    file: &str,
    load: impl Fn(&Path) -> Result<T>,
    warnings: &mut Vec<String>,
) -> Option<T> {
    if !dir.join(file).exists() {
        return None;
    }
    match load(dir) {
        Ok(v) => Some(v),
        Err(e) => {
            warnings.push(crate::error::one_sentence(&e));
            None
        }
    }
}

/// The names of the folders under `runs_dir`, sorted, without hidden ones (temporaries being written or
/// removed). Names that are not UTF-8 are left out.
fn folder_names(runs_dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(runs_dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && runs_dir.join(name).is_dir())
        .collect();
    names.sort();
    Ok(names)
}

/// Every run under `runs_dir`, sorted by id, and one warning per folder or file that was skipped.
pub fn list_runs(runs_dir: &Path) -> (Vec<RunEntry>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut runs = Vec::new();
    let names = match folder_names(runs_dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (runs, warnings),
        Err(e) => {
            warnings.push(format!("cannot list {}: {e}", runs_dir.display()));
            return (runs, warnings);
        }
    };
    for name in names {
        let path = runs_dir.join(name);
        match RunEntry::read(&path, &mut warnings) {
            Ok(run) => runs.push(run),
            Err(e) => warnings.push(format!("skipping {}: {}", path.display(), crate::error::one_sentence(&e))),
        }
    }
    (runs, warnings)
}

/// The id and status of every run folder whose status.json reads, sorted by id (the agent's view: the
/// spec is not read).
pub fn statuses(runs_dir: &Path) -> Vec<(String, Status)> {
    let names = folder_names(runs_dir).unwrap_or_default();
    names.into_iter().filter_map(|name| Status::load(&runs_dir.join(&name)).ok().map(|s| (name, s))).collect()
}

/// Queued run ids in launch order.
pub fn queued(runs_dir: &Path) -> Vec<String> {
    statuses(runs_dir).into_iter().filter(|(_, s)| s.state == State::Queued).map(|(id, _)| id).collect()
}

/// Finds one run by its id (exactly, or by a unique prefix).
pub fn find_run(runs_dir: &Path, id: &str) -> Result<RunEntry> {
    let exact = runs_dir.join(id);
    if super::record::validate_run_id(id).is_ok() && exact.is_dir() {
        let mut warnings = Vec::new();
        return RunEntry::read(&exact, &mut warnings);
    }
    let (runs, _) = list_runs(runs_dir);
    let matches: Vec<RunEntry> = runs.into_iter().filter(|r| r.id.starts_with(id)).collect();
    match matches.len() {
        1 => Ok(matches.into_iter().next().context("one match")?),
        0 => bail!("no run {id:?} under {}", runs_dir.display()),
        n => bail!("run id {id:?} is ambiguous: {n} runs start with it"),
    }
}

/// Every result.json under `runs_dir` (the leaderboard's input), with warnings for unreadable ones.
pub fn load_results(runs_dir: &Path) -> (Vec<RunResult>, Vec<String>) {
    let (runs, warnings) = list_runs(runs_dir);
    (runs.into_iter().filter_map(|r| r.result).collect(), warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_queued_folders_in_id_order() {
        let t = tempfile::tempdir().unwrap();
        for (id, state) in
            [("b", State::Queued), ("a", State::Queued), ("c", State::Finished), (".tmp-d", State::Queued)]
        {
            std::fs::create_dir(t.path().join(id)).unwrap();
            Status::new(state).save(&t.path().join(id)).unwrap();
        }
        assert_eq!(queued(t.path()), ["a", "b"]);
    }

    #[test]
    fn listing_skips_folders_that_are_not_runs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("junk")).unwrap();
        std::fs::write(dir.path().join("stray.txt"), "x").unwrap();
        let bad = dir.path().join("bad");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("spec.toml"), "id = 3\n").unwrap();
        let (runs, warnings) = list_runs(dir.path());
        assert!(runs.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("bad") && w.contains("spec.toml")), "{warnings:?}");
        assert!(list_runs(&dir.path().join("absent")).0.is_empty());
    }
}
