//! TensorBoard event files (`events.out.tfevents.*`) beside metrics.jsonl, so that
//! `tensorboard --logdir <home>/runs` shows every run. Each write appends whole TFRecords (length, masked
//! CRC-32C of the length, an `Event` protobuf, masked CRC-32C of the data) in one `write_all`: a crash
//! leaves at most a torn last record, which TensorBoard's reader stops at, keeping everything before it.
//! Every writer writes a file of its own (time, host, pid and a per-process number in the name), as
//! TensorFlow's writers do.

use super::record::{MetricLine, RunResult};
use crate::ckpt::crc32c::mask;
use crate::ckpt::protobuf::{Wire, fields, put_bytes, put_double, put_float, put_varint_field};
use ::crc32c::crc32c;
use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const FILE_VERSION: &str = "brain.Event:2";
/// The prefix TensorBoard looks for.
pub const FILE_PREFIX: &str = "events.out.tfevents.";

/// One scalar: tag and value.
pub type Scalar = (String, f64);

/// The scalars of a metrics.jsonl line and the step they are drawn at: step lines at the global step
/// (`train/loss_step`, `train/lr_step`, `train/images_per_s`), epoch lines at the epoch (`epoch/train_loss`,
/// `epoch/val_loss`, `epoch/lr`, `epoch/images_per_s`, `val/<metric>`).
pub fn scalars_of_line(m: &MetricLine) -> (u64, Vec<Scalar>) {
    let mut out = Vec::new();
    if m.kind == "epoch" {
        out.extend(m.train_loss.map(|v| ("epoch/train_loss".to_string(), v)));
        out.extend(m.val_loss.map(|v| ("epoch/val_loss".to_string(), v)));
        out.push(("epoch/lr".into(), m.lr));
        out.push(("epoch/images_per_s".into(), m.images_per_s));
        out.extend(m.val.iter().map(|(k, v)| (format!("val/{k}"), *v)));
        (u64::from(m.epoch), out)
    } else {
        out.extend(m.train_loss.map(|v| ("train/loss_step".to_string(), v)));
        out.push(("train/lr_step".into(), m.lr));
        out.push(("train/images_per_s".into(), m.images_per_s));
        (m.step, out)
    }
}

/// Whether `tag` is drawn at the global step (the step lines' tags) rather than at the epoch.
fn at_global_step(tag: &str) -> bool {
    tag.starts_with("train/")
}

/// The test results at the run's last epoch: `test/<metric>`, `test/<metric>/<class>`, `test/<extra>`.
pub fn scalars_of_result(r: &RunResult) -> (u64, Vec<Scalar>) {
    let mut out = vec![(format!("test/{}", r.metric), r.mean)];
    out.extend(r.per_class.iter().map(|(c, v)| (format!("test/{}/{c}", r.metric), *v)));
    out.extend(r.extra.iter().map(|(k, v)| (format!("test/{k}"), *v)));
    (u64::from(r.epochs_run), out)
}

/// An `Event` protobuf: wall_time (1), step (2), then `file_version` (3) or a `Summary` (5) of
/// `simple_value` scalars (Summary.Value: tag 1, simple_value 2).
fn event(wall_time: f64, step: u64, file_version: Option<&str>, scalars: &[Scalar]) -> Vec<u8> {
    let mut e = Vec::new();
    put_double(&mut e, 1, wall_time);
    put_varint_field(&mut e, 2, step);
    if let Some(v) = file_version {
        put_bytes(&mut e, 3, v.as_bytes());
    } else {
        let mut summary = Vec::new();
        for (tag, v) in scalars {
            let mut value = Vec::new();
            put_bytes(&mut value, 1, tag.as_bytes());
            put_float(&mut value, 2, *v as f32);
            put_bytes(&mut summary, 1, &value);
        }
        put_bytes(&mut e, 5, &summary);
    }
    e
}

/// Frames `data` as one TFRecord.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&mask(crc32c(&len)).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&mask(crc32c(data)).to_le_bytes());
    out
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
    if name.is_empty() { "localhost".into() } else { name }
}

/// The whole, intact records at the start of `bytes` as (record, event data): like TensorBoard's reader,
/// the first torn or corrupt record ends them.
fn records(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 12) {
        let (len, len_crc) = header.split_at(8);
        if u32::from_le_bytes(len_crc.try_into().unwrap()) != mask(crc32c(len)) {
            break;
        }
        let Some(end) = usize::try_from(u64::from_le_bytes(len.try_into().unwrap()))
            .ok()
            .and_then(|n| (at + 12).checked_add(n)?.checked_add(4))
        else {
            break;
        };
        let Some(record) = bytes.get(at..end) else { break };
        let (data, crc) = record[12..].split_at(record.len() - 16);
        if u32::from_le_bytes(crc.try_into().unwrap()) != mask(crc32c(data)) {
            break;
        }
        out.push((record, data));
        at = end;
    }
    out
}

/// Whether an event belongs before the cut: scalars of epoch-indexed tags at or before `epoch`, of
/// global-step tags at or before `step`; events without scalars (the file version) always.
fn before_cut(event: &[u8], epoch: u32, step: u64) -> bool {
    let Ok(event) = fields(event) else { return false };
    let at = event.iter().find_map(|f| if let (2, Wire::Varint(s)) = f { Some(*s) } else { None }).unwrap_or(0);
    let Some(summary) = event.iter().find_map(|f| if let (5, Wire::Bytes(b)) = f { Some(*b) } else { None }) else {
        return true;
    };
    let tag = fields(summary)
        .ok()
        .and_then(|values| values.into_iter().find_map(|f| if let (1, Wire::Bytes(v)) = f { Some(v) } else { None }))
        .and_then(|value| fields(value).ok())
        .and_then(|value| value.into_iter().find_map(|f| if let (1, Wire::Bytes(t)) = f { Some(t) } else { None }));
    let limit = match tag {
        Some(tag) if at_global_step(&String::from_utf8_lossy(tag)) => step,
        _ => u64::from(epoch),
    };
    at <= limit
}

/// A run resumed from the checkpoint after `epoch`, whose last kept step line is at global step `step`:
/// rewrites each event file in `dir` (atomically) without the events after that point, and without a torn
/// tail, so that the epochs the resumed trainer redoes appear once in TensorBoard. Returns how many events
/// were dropped.
pub fn truncate(dir: &Path, epoch: u32, step: u64) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut dropped = 0;
    for path in entries.flatten().map(|e| e.path()) {
        if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(FILE_PREFIX)) || !path.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let all = records(&bytes);
        let kept: Vec<&[u8]> = all.iter().filter(|(_, e)| before_cut(e, epoch, step)).map(|(r, _)| *r).collect();
        let kept_len: usize = kept.iter().map(|r| r.len()).sum();
        if kept_len == bytes.len() {
            continue;
        }
        dropped += all.len() - kept.len();
        crate::atomic::write(&path, &kept.concat()).with_context(|| format!("cannot rewrite {}", path.display()))?;
    }
    Ok(dropped)
}

/// This process's event file in one run folder; created on the first write.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    started: AtomicBool,
}

impl EventWriter {
    pub fn new(dir: &Path) -> EventWriter {
        // The last part numbers the writers of one process, as TensorFlow's do: two writers opened in the
        // same second (a trainer that reopens its run) never share a file.
        static WRITERS: AtomicU64 = AtomicU64::new(0);
        let uid = WRITERS.fetch_add(1, Ordering::SeqCst);
        let name = format!("{FILE_PREFIX}{}.{}.{}.{uid}", now() as u64, host(), std::process::id());
        EventWriter { path: dir.join(name), started: AtomicBool::new(false) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event of `scalars` at `step` (the file's version event first, on the first call).
    pub fn write(&self, step: u64, scalars: &[Scalar]) -> Result<()> {
        let wall_time = now();
        let mut bytes = Vec::new();
        let started = self.started.load(Ordering::SeqCst);
        if !started {
            bytes.extend(record(&event(wall_time, 0, Some(FILE_VERSION), &[])));
        }
        bytes.extend(record(&event(wall_time, step, None, scalars)));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        f.write_all(&bytes).with_context(|| format!("cannot append to {}", self.path.display()))?;
        self.started.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ckpt::protobuf::{Wire, fields};

    #[test]
    fn records_frame_events_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let w = EventWriter::new(dir.path());
        w.write(7, &[("val/auc".into(), 0.75)]).unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        let mut at = 0;
        let mut events = Vec::new();
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
            assert_eq!(
                u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
                mask(crc32c(&bytes[at..at + 8]))
            );
            let data = &bytes[at + 12..at + 12 + len];
            let crc = u32::from_le_bytes(bytes[at + 12 + len..at + 16 + len].try_into().unwrap());
            assert_eq!(crc, mask(crc32c(data)));
            events.push(fields(data).unwrap());
            at += 16 + len;
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0][2], (3, Wire::Bytes(FILE_VERSION.as_bytes())));
        assert_eq!(events[1][1], (2, Wire::Varint(7)));
        let Wire::Bytes(summary) = events[1][2].1 else { panic!("{:?}", events[1]) };
        let Wire::Bytes(value) = fields(summary).unwrap()[0].1 else { panic!() };
        assert_eq!(fields(value).unwrap(), vec![(1, Wire::Bytes(b"val/auc")), (2, Wire::Fixed32(0.75f32.to_bits()))]);
    }
}
