//! The files a run writes besides checkpoints: status.json (through `runs::lifecycle::Training`),
//! metrics.jsonl (append-only, truncated to the checkpoint's epoch on resume), the same scalars as a
//! TensorBoard event file, and train.log.

use crate::runs::lifecycle::Training;
use crate::runs::record::{LOG_FILE, METRICS_FILE, MetricLine, RunResult};
use crate::runs::tensorboard::{self, EventWriter};
use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunFiles {
    pub dir: PathBuf,
    pub status: Training,
    log: File,
    events: EventWriter,
    started: std::time::Instant,
}

impl RunFiles {
    pub fn open(dir: &Path) -> Result<RunFiles> {
        let path = dir.join(LOG_FILE);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let status = Training::new(dir);
        let events = EventWriter::new(dir);
        Ok(RunFiles { dir: dir.to_path_buf(), status, log, events, started: std::time::Instant::now() })
    }

    /// Seconds since this process opened the run.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// One line in train.log (best effort: a full disk must not hide the real failure).
    pub fn log(&mut self, message: &str) {
        let _ = writeln!(self.log, "{} {message}", crate::runs::record::now_rfc3339());
        tracing::info!(target: "train", "{message}");
    }

    /// Appends one line to metrics.jsonl, then its scalars to the event file.
    pub fn append_metric(&self, line: &MetricLine) -> Result<()> {
        self.append_metric_line(line)?;
        let (step, scalars) = tensorboard::scalars_of_line(line);
        self.events.write(step, &scalars)
    }

    /// The test results as scalars in the event file (result.json is the record of them).
    pub fn append_result(&self, result: &RunResult) -> Result<()> {
        let (step, scalars) = tensorboard::scalars_of_result(result);
        self.events.write(step, &scalars)
    }

    /// Resuming from the checkpoint after `epoch`: metrics.jsonl keeps the lines of epochs up to it and the
    /// event files the events up to those lines (so the epochs redone show once in TensorBoard). Returns
    /// how many lines and events were dropped.
    pub fn truncate_to_epoch(&self, epoch: u32) -> Result<(usize, usize)> {
        let lines = truncate_metrics(&self.dir, epoch)?;
        let last_step = read_epoch_lines(&self.dir).ok().and_then(|l| l.last().map(|m| m.step)).unwrap_or(0);
        let events = tensorboard::truncate(&self.dir, epoch, last_step)?;
        Ok((lines, events))
    }

    fn append_metric_line(&self, line: &MetricLine) -> Result<()> {
        let path = self.dir.join(METRICS_FILE);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut text = serde_json::to_string(line)?;
        text.push('\n');
        f.write_all(text.as_bytes()).with_context(|| format!("cannot append to {}", path.display()))
    }
}

/// Keeps only the metrics.jsonl lines of epochs up to `epoch` (a resume from that checkpoint), dropping
/// lines that do not parse; rewrites the file atomically. Returns how many lines were dropped.
pub fn truncate_metrics(dir: &Path, epoch: u32) -> Result<usize> {
    let path = dir.join(METRICS_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(0) };
    let mut kept = String::new();
    let mut dropped = 0;
    for line in text.lines() {
        match serde_json::from_str::<MetricLine>(line) {
            Ok(m) if m.epoch <= epoch => {
                kept.push_str(line);
                kept.push('\n');
            }
            _ => dropped += 1,
        }
    }
    if dropped > 0 {
        crate::atomic::write(&path, kept.as_bytes()).with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    Ok(dropped)
}

/// The epoch lines of a run's metrics.jsonl, in file order.
pub fn read_epoch_lines(dir: &Path) -> Result<Vec<MetricLine>> {
    let path = dir.join(METRICS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str::<MetricLine>(l).ok()).filter(|m| m.kind == "epoch").collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: &str, epoch: u32) -> MetricLine {
        MetricLine {
            kind: kind.into(),
            epoch,
            step: u64::from(epoch) * 10,
            train_loss: Some(0.5),
            val_loss: None,
            lr: 1e-3,
            images_per_s: 1.0,
            elapsed_s: 1.0,
            val: Default::default(),
            epoch_batches: None,
        }
    }

    #[test]
    fn resume_drops_lines_past_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let files = RunFiles::open(dir.path()).unwrap();
        for (kind, epoch) in [("step", 1), ("epoch", 1), ("step", 2), ("epoch", 2), ("step", 3)] {
            files.append_metric(&line(kind, epoch)).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(dir.path().join(METRICS_FILE)).unwrap();
        f.write_all(b"{\"kind\":\"ep").unwrap();
        assert_eq!(truncate_metrics(dir.path(), 1).unwrap(), 4);
        let epochs: Vec<u32> = read_epoch_lines(dir.path()).unwrap().iter().map(|m| m.epoch).collect();
        assert_eq!(epochs, vec![1]);
        let text = std::fs::read_to_string(dir.path().join(METRICS_FILE)).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
