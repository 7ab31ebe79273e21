//! Follows a run's metrics.jsonl from a byte offset: only complete lines (ending in a newline) are returned;
//! a line that does not parse is skipped and reported; a partial last line waits for the next read.

use crate::runs::record::{METRICS_FILE, MetricLine};
use anyhow::{Context, Result};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What one read found.
#[derive(Debug, Default)]
pub struct TailRead {
    pub lines: Vec<MetricLine>,
    /// The file shrank (a resumed run dropped lines), was removed or replaced (a restart): the reader started
    /// again from the beginning and should drop what it had.
    pub reset: bool,
    /// One sentence per skipped line, naming the file and line.
    pub problems: Vec<String>,
    /// The read budget ran out before the end of the file: read again.
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct MetricsTail {
    path: PathBuf,
    offset: u64,
    /// Lines consumed so far, for the line numbers of problems.
    line: u64,
    skipped: usize,
    /// The identity (inode, creation time) of the file read so far: another one is a new file.
    identity: Option<(u64, Option<std::time::SystemTime>)>,
}

impl MetricsTail {
    pub fn new(run_dir: &Path) -> MetricsTail {
        MetricsTail { path: run_dir.join(METRICS_FILE), offset: 0, line: 0, skipped: 0, identity: None }
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
        let mut unlimited = u64::MAX;
        self.read_within(&mut unlimited)
    }

    /// Like `read_new`, reading at most `budget` bytes and taking what it read from it.
    pub fn read_within(&mut self, budget: &mut u64) -> Result<TailRead> {
        let mut read = TailRead::default();
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.identity.take().is_some() {
                    self.forget(&mut read);
                }
                return Ok(read);
            }
            Err(e) => return Err(e).with_context(|| format!("cannot open {}", self.path.display())),
        };
        let meta = file.metadata().with_context(|| format!("cannot stat {}", self.path.display()))?;
        let identity = Some((meta.ino(), meta.created().ok()));
        if meta.len() < self.offset || (self.identity.is_some() && identity != self.identity) {
            self.forget(&mut read);
        }
        self.identity = identity;
        let unread = meta.len() - self.offset;
        if unread == 0 {
            return Ok(read);
        }
        read.more = unread > *budget;
        if *budget == 0 {
            return Ok(read);
        }
        file.seek(SeekFrom::Start(self.offset)).with_context(|| format!("cannot seek {}", self.path.display()))?;
        let mut bytes = Vec::new();
        file.take(unread.min(*budget))
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else { return Ok(read) };
        for line in bytes[..end].split(|&b| b == b'\n') {
            self.line += 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<MetricLine>(line) {
                Ok(m) => read.lines.push(m),
                Err(e) => {
                    self.skipped += 1;
                    let at = format!("{}:{}", self.path.display(), self.line);
                    read.problems.push(format!("{at}: skipped a line that is not a metric ({e})"));
                }
            }
        }
        self.offset += end as u64 + 1;
        *budget = budget.saturating_sub(end as u64 + 1);
        Ok(read)
    }

    fn forget(&mut self, read: &mut TailRead) {
        self.offset = 0;
        self.line = 0;
        self.skipped = 0;
        read.reset = true;
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
        assert!(r.problems[0].contains("metrics.jsonl:2") && r.problems[1].contains("metrics.jsonl:3"), "{r:?}");
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
    fn a_removed_or_replaced_file_restarts_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &format!("{STEP}\n"));
        let mut tail = MetricsTail::new(dir.path());
        assert_eq!(tail.read_new().unwrap().lines.len(), 1);
        std::fs::remove_file(dir.path().join(METRICS_FILE)).unwrap();
        assert!(tail.read_new().unwrap().reset);
        append(dir.path(), &format!("{STEP}\n"));
        let r = tail.read_new().unwrap();
        assert!(!r.reset, "a new file after a reset is read from its start");
        assert_eq!(r.lines.len(), 1);
        let other = dir.path().join("new.jsonl");
        std::fs::write(&other, format!("{EPOCH}\n{STEP}\n")).unwrap();
        std::fs::rename(&other, dir.path().join(METRICS_FILE)).unwrap();
        let r = tail.read_new().unwrap();
        assert!(r.reset, "a longer file that is another file is read again from its start");
        assert_eq!(r.lines.len(), 2);
    }

    #[test]
    fn a_budget_reads_whole_lines_and_says_when_more_is_left() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &format!("{STEP}\n{STEP}\n{STEP}\n"));
        let mut tail = MetricsTail::new(dir.path());
        let mut budget = STEP.len() as u64 * 2 + 1;
        let r = tail.read_within(&mut budget).unwrap();
        assert_eq!((r.lines.len(), r.more, budget), (1, true, STEP.len() as u64));
        let r = tail.read_within(&mut 0).unwrap();
        assert!(r.lines.is_empty() && r.more);
        let r = tail.read_new().unwrap();
        assert_eq!((r.lines.len(), r.more), (2, false));
    }
}
