//! The incremental read of every run folder (the TUI's): each `refresh` returns only what changed since the
//! last one (spec, status and the agent's slot, result, log tail, new metric lines), reading at most
//! `READ_BUDGET` bytes of metrics per refresh.

use super::tail::MetricsTail;
use crate::runs::agent_record::{AgentRecord, Slot};
use crate::runs::record::{self, MetricLine, RunResult, RunSpec, Status};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bytes of train.log kept as the log tail (the detail scrolls through them).
const LOG_TAIL_BYTES: u64 = 64 << 10;
/// metrics.jsonl bytes read per refresh, over all runs: a long history loads over several refreshes,
/// with frames drawn in between, and only one chunk of parsed lines is held at a time.
pub const READ_BUDGET: u64 = 4 << 20;

/// What changed in one run folder since the previous refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunDelta {
    pub id: String,
    pub spec: Option<RunSpec>,
    pub status: Option<Status>,
    pub result: Option<RunResult>,
    /// result.json is gone (a restart): forget the result.
    pub result_removed: bool,
    /// New metric lines, in file order.
    pub lines: Vec<MetricLine>,
    /// metrics.jsonl shrank (a resumed run dropped lines), was removed or replaced (a restart): forget earlier
    /// lines before applying `lines`.
    pub reset: bool,
    pub log_tail: Option<Vec<String>>,
    /// The agent's slot for the run (agent.json), read whenever status.json changes.
    pub slot: Option<Slot>,
    /// Unreadable files and skipped lines, one sentence each.
    pub problems: Vec<String>,
}

type Stamp = Option<(u64, SystemTime)>;

#[derive(Debug)]
struct Seen {
    spec_loaded: bool,
    status: Stamp,
    result: Stamp,
    log: Stamp,
    metrics: MetricsTail,
}

/// Tails every run folder under one `runs/` folder.
#[derive(Debug)]
pub struct RunStore {
    dir: PathBuf,
    seen: BTreeMap<String, Seen>,
}

/// The ids of the run folders under `dir` (sorted; folders whose name is not a run id are ignored).
pub fn run_ids(dir: &Path) -> Vec<String> {
    let mut ids = super::folder_names(dir).unwrap_or_default();
    ids.retain(|name| record::validate_run_id(name).is_ok());
    ids
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// A cheap summary of every file the TUI reads: it changes whenever any of them does.
pub fn fingerprint(dir: &Path) -> Vec<(String, [Stamp; 4])> {
    run_ids(dir)
        .into_iter()
        .map(|id| {
            let run = dir.join(&id);
            let files = [record::STATUS_FILE, record::METRICS_FILE, record::RESULT_FILE, record::SPEC_FILE];
            (id, files.map(|f| stamp(&run.join(f))))
        })
        .collect()
}

impl RunStore {
    pub fn new(dir: PathBuf) -> RunStore {
        RunStore { dir, seen: BTreeMap::new() }
    }

    /// Reads what changed, handing each changed run's delta to `each`; returns the ids of runs whose
    /// folder is gone and whether metrics are left to read (call again) because `READ_BUDGET` ran out.
    pub fn refresh(&mut self, mut each: impl FnMut(RunDelta)) -> (Vec<String>, bool) {
        let ids = run_ids(&self.dir);
        let removed: Vec<String> = self.seen.keys().filter(|k| ids.binary_search(k).is_err()).cloned().collect();
        for id in &removed {
            self.seen.remove(id);
        }
        let mut budget = READ_BUDGET;
        let mut more = false;
        for id in ids {
            let run = self.dir.join(&id);
            let seen = self.seen.entry(id.clone()).or_insert_with(|| Seen {
                spec_loaded: false,
                status: None,
                result: None,
                log: None,
                metrics: MetricsTail::new(&run),
            });
            let delta = read_changes(&run, id, seen, &mut budget, &mut more);
            if delta != (RunDelta { id: delta.id.clone(), ..RunDelta::default() }) {
                each(delta);
            }
        }
        (removed, more)
    }
}

fn read_changes(run: &Path, id: String, seen: &mut Seen, budget: &mut u64, more: &mut bool) -> RunDelta {
    let mut delta = RunDelta { id, ..RunDelta::default() };
    if !seen.spec_loaded && run.join(record::SPEC_FILE).exists() {
        seen.spec_loaded = true;
        match RunSpec::load(run) {
            Ok(spec) => delta.spec = Some(spec),
            Err(e) => delta.problems.push(crate::error::one_sentence(&e)),
        }
    }
    if changed(&run.join(record::STATUS_FILE), &mut seen.status) {
        match Status::load(run) {
            Ok(status) => delta.status = Some(status),
            Err(e) => delta.problems.push(crate::error::one_sentence(&e)),
        }
        delta.slot = AgentRecord::load(run).map(|r| r.slot);
    }
    let result_file = run.join(record::RESULT_FILE);
    if seen.result.is_some() && !result_file.exists() {
        seen.result = None;
        delta.result_removed = true;
    }
    if changed(&result_file, &mut seen.result) {
        match RunResult::load(run) {
            Ok(result) => delta.result = Some(result),
            Err(e) => delta.problems.push(crate::error::one_sentence(&e)),
        }
    }
    if changed(&run.join(record::LOG_FILE), &mut seen.log) {
        delta.log_tail = Some(log_tail(&run.join(record::LOG_FILE)));
    }
    if let Ok(read) = seen.metrics.read_within(budget) {
        for problem in &read.problems {
            tracing::warn!("{problem}");
        }
        delta.lines = read.lines;
        delta.reset = read.reset;
        delta.problems.extend(read.problems);
        *more |= read.more;
    }
    delta
}

/// Updates `seen` and says whether the file exists and differs from what was seen.
fn changed(path: &Path, seen: &mut Stamp) -> bool {
    let now = stamp(path);
    if now.is_none() || now == *seen {
        return false;
    }
    *seen = now;
    true
}

fn log_tail(path: &Path) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<String> = text.lines().map(|l| l.chars().filter(|c| !c.is_control()).collect()).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(epoch: u32, step: u64) -> String {
        format!(
            "{{\"kind\":\"step\",\"epoch\":{epoch},\"step\":{step},\"train_loss\":0.5,\"lr\":0.1,\"images_per_s\":10.0,\"elapsed_s\":1.0}}\n"
        )
    }

    #[test]
    fn metrics_are_tailed_from_an_offset_skipping_bad_and_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("20261126-081200-demo-cls-random-t1");
        std::fs::create_dir(&run).unwrap();
        let metrics = run.join(record::METRICS_FILE);
        std::fs::write(&metrics, format!("{}not json\n{}{{\"kind\":", line(0, 1), line(0, 2))).unwrap();
        let mut store = RunStore::new(dir.path().to_path_buf());
        let deltas = refresh(&mut store);
        assert_eq!(deltas.len(), 1);
        assert_eq!(deltas[0].lines.iter().map(|l| l.step).collect::<Vec<_>>(), [1, 2]);
        assert!(deltas[0].problems[0].contains("metrics.jsonl:2"), "{:?}", deltas[0].problems);

        let mut f = std::fs::OpenOptions::new().append(true).open(&metrics).unwrap();
        f.write_all(
            b"\"step\",\"epoch\":0,\"step\":3,\"train_loss\":0.4,\"lr\":0.1,\"images_per_s\":1,\"elapsed_s\":2}\n",
        )
        .unwrap();
        let deltas = refresh(&mut store);
        assert_eq!(deltas[0].lines.iter().map(|l| l.step).collect::<Vec<_>>(), [3]);
        assert!(!deltas[0].reset);
        assert!(refresh(&mut store).is_empty(), "nothing changed, nothing reported");

        std::fs::write(&metrics, line(0, 1)).unwrap();
        let deltas = refresh(&mut store);
        assert!(deltas[0].reset);
        assert_eq!(deltas[0].lines.len(), 1);

        std::fs::remove_dir_all(&run).unwrap();
        assert_eq!(store.refresh(|_| ()).0, ["20261126-081200-demo-cls-random-t1"]);
    }

    fn refresh(store: &mut RunStore) -> Vec<RunDelta> {
        let mut deltas = Vec::new();
        let (_, more) = store.refresh(|d| deltas.push(d));
        assert!(!more);
        deltas
    }

    #[test]
    fn a_long_history_is_read_in_budgeted_chunks_without_losing_lines() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("20261126-081200-demo-cls-random-t1");
        std::fs::create_dir(&run).unwrap();
        let lines = READ_BUDGET as usize / line(0, 1).len() * 2 + 10;
        std::fs::write(run.join(record::METRICS_FILE), (0..lines as u64).map(|s| line(0, s)).collect::<String>())
            .unwrap();
        let mut store = RunStore::new(dir.path().to_path_buf());
        let (mut steps, mut rounds) = (Vec::new(), 0);
        loop {
            rounds += 1;
            let (_, more) = store.refresh(|d| steps.extend(d.lines.iter().map(|l| l.step)));
            if !more {
                break;
            }
        }
        assert_eq!(rounds, 3);
        assert_eq!(steps, (0..lines as u64).collect::<Vec<_>>());
    }
}
