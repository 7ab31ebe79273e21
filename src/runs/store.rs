//! The run store's read side: list the run folders under `<home>/runs`, read their records, and tail
//! metrics.jsonl from a byte offset. Readers never lock and never write; a folder that is not a valid
//! run is skipped with a warning, never an error.

use super::record::{METRICS_FILE, MetricLine, RESULT_FILE, RunResult, RunSpec, STATUS_FILE, State, Status};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
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
        match self.state() {
            Some(State::Queued) => "queued",
            Some(State::Running) => "running",
            Some(State::Stopped) => "stopped",
            Some(State::Failed) => "failed",
            Some(State::Finished) => "finished",
            None => "unknown",
        }
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

/// Every run under `runs_dir`, sorted by id, and one warning per folder or file that was skipped.
pub fn list_runs(runs_dir: &Path) -> (Vec<RunEntry>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut runs = Vec::new();
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (runs, warnings),
        Err(e) => {
            warnings.push(format!("cannot list {}: {e}", runs_dir.display()));
            return (runs, warnings);
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !path.is_dir() {
            continue;
        }
        match RunEntry::read(&path, &mut warnings) {
            Ok(run) => runs.push(run),
            Err(e) => warnings.push(format!("skipping {}: {}", path.display(), crate::error::one_sentence(&e))),
        }
    }
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    (runs, warnings)
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

/// What one `MetricsTail::read_new` call found.
#[derive(Debug, Default)]
pub struct TailRead {
    pub lines: Vec<MetricLine>,
    /// The file became shorter than the offset (a resumed run dropped lines): the reader started again
    /// from the beginning and should drop what it had.
    pub reset: bool,
}

/// Follows a run's metrics.jsonl from a byte offset: returns only complete lines (ending in a newline);
/// a line that does not parse is skipped and counted; a partial last line waits for the next call.
#[derive(Debug, Clone)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    skipped: usize,
}

impl MetricsTail {
    pub fn new(run_dir: &Path) -> MetricsTail {
        MetricsTail::from_offset(run_dir, 0)
    }

    pub fn from_offset(run_dir: &Path, offset: u64) -> MetricsTail {
        MetricsTail { path: run_dir.join(METRICS_FILE), offset, skipped: 0 }
    }

    /// Bytes consumed so far (complete lines only).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Complete lines skipped because they were not valid metric lines.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// Reads what was appended since the last call. A missing file is not an error (nothing yet).
    pub fn read_new(&mut self) -> Result<TailRead> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TailRead::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", self.path.display())),
        };
        let len = file.metadata().with_context(|| format!("cannot stat {}", self.path.display()))?.len();
        let mut read = TailRead::default();
        if len < self.offset {
            self.offset = 0;
            self.skipped = 0;
            read.reset = true;
        }
        file.seek(SeekFrom::Start(self.offset)).with_context(|| format!("cannot seek {}", self.path.display()))?;
        let mut bytes = Vec::new();
        file.take(len - self.offset)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
        for line in bytes[..complete].split(|&b| b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<MetricLine>(line) {
                Ok(m) => read.lines.push(m),
                Err(_) => self.skipped += 1,
            }
        }
        self.offset += complete as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const STEP: &str =
        r#"{"kind":"step","epoch":1,"step":5,"train_loss":0.7,"lr":0.001,"images_per_s":10.0,"elapsed_s":1.0}"#;
    const EPOCH: &str = r#"{"kind":"epoch","epoch":1,"step":9,"train_loss":0.6,"val_loss":0.5,"lr":0.001,"images_per_s":10.0,"elapsed_s":2.0,"val":{"auc":0.8}}"#;

    fn append(dir: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(METRICS_FILE)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn tail_returns_complete_lines_and_counts_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut tail = MetricsTail::new(dir.path());
        assert!(tail.read_new().unwrap().lines.is_empty());
        append(dir.path(), &format!("{STEP}\nnot json\n{{\"kind\":\"step\"}}\n{}", &EPOCH[..40]));
        let r = tail.read_new().unwrap();
        assert_eq!(r.lines.len(), 1);
        assert_eq!(tail.skipped(), 2);
        assert_eq!(tail.offset() as usize, STEP.len() + 1 + "not json\n".len() + "{\"kind\":\"step\"}\n".len());
        append(dir.path(), &format!("{}\n", &EPOCH[40..]));
        let r = tail.read_new().unwrap();
        assert_eq!(r.lines.len(), 1);
        assert_eq!(r.lines[0].val["auc"], 0.8);
        assert!(tail.read_new().unwrap().lines.is_empty());
    }

    #[test]
    fn a_shortened_file_restarts_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &format!("{STEP}\n{EPOCH}\n"));
        let mut tail = MetricsTail::new(dir.path());
        assert_eq!(tail.read_new().unwrap().lines.len(), 2);
        std::fs::write(dir.path().join(METRICS_FILE), format!("{STEP}\n")).unwrap();
        let r = tail.read_new().unwrap();
        assert!(r.reset);
        assert_eq!(r.lines.len(), 1);
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
