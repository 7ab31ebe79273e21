//! One HTTP download into a `.part` file: sha256 computed while streaming, Range resume (also across
//! processes: the existing bytes are hashed first), start over when the server ignores Range, retries
//! with backoff, and a stall timeout. Writing and hashing run on their own threads beside the transfer.
//! The caller verifies and installs the result.

use super::progress::Progress;
use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use reqwest::{Client, StatusCode, Url, header};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Time without a byte before the connection counts as stalled.
    pub stall: Duration,
    /// Retries after transient failures (reset whenever an attempt made progress).
    pub retries: u32,
    /// First wait between attempts; doubles each time, at most 30 s.
    pub backoff: Duration,
    /// Refuse plain http (true unless an http mirror is configured).
    pub https_only: bool,
}

/// The completed `.part` (fsynced): its digest and size.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub sha256: String,
    pub size: u64,
}

/// Bytes received are handed to the writer and the hasher in blocks of about `BLOCK`, or sooner when
/// the last hand-over is `HAND_OVER_EVERY` old (a slow connection still reaches the disk steadily).
const BLOCK: usize = 1 << 20;
const HAND_OVER_EVERY: Duration = Duration::from_millis(50);
/// Blocks queued per stage; bounds the memory a fast connection can fill while the disk or the hash lags.
const QUEUE: usize = 8;

/// The `.part` file being written on one thread and hashed on another, beside the transfer: the
/// network loop only hands over shared blocks (no copy), so the slowest of the three sets the pace.
struct Partial {
    path: PathBuf,
    len: u64,
    pending: Vec<Bytes>,
    pending_len: usize,
    /// None until the first bytes of the file went to the disk.
    handed_at: Option<Instant>,
    writer: Stage<PartWriter>,
    hasher: Stage<Sha256>,
}

impl Partial {
    /// Opens `path` and hashes what is already there (a resumed download).
    fn open(path: &Path) -> Result<Partial> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        file.seek(SeekFrom::Start(len))?;
        let writer =
            Stage::spawn("zoo-write", PartWriter { file, at: len, written_back: len }, |w, block| match block {
                Block::Data(chunks) => w.write(&chunks),
                Block::Reset => w.reset(),
            })?;
        let hasher = Stage::spawn("zoo-sha256", hasher, |hasher, block| {
            match block {
                Block::Data(chunks) => chunks.iter().for_each(|c| hasher.update(c)),
                Block::Reset => *hasher = Sha256::new(),
            }
            Ok(())
        })?;
        Ok(Partial {
            path: path.to_path_buf(),
            len,
            pending: Vec::new(),
            pending_len: 0,
            handed_at: None,
            writer,
            hasher,
        })
    }

    async fn reset(&mut self) -> std::io::Result<()> {
        self.pending.clear();
        self.pending_len = 0;
        self.len = 0;
        self.writer.send(Block::Reset).await?;
        self.hasher.send(Block::Reset).await
    }

    async fn append(&mut self, bytes: Bytes) -> std::io::Result<()> {
        self.len += bytes.len() as u64;
        self.pending_len += bytes.len();
        self.pending.push(bytes);
        if self.pending_len >= BLOCK || self.handed_at.is_none_or(|t| t.elapsed() >= HAND_OVER_EVERY) {
            self.hand_over().await
        } else {
            Ok(())
        }
    }

    async fn hand_over(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = Arc::new(std::mem::take(&mut self.pending));
        self.pending_len = 0;
        self.handed_at = Some(Instant::now());
        self.writer.send(Block::Data(block.clone())).await?;
        self.hasher.send(Block::Data(block)).await
    }

    /// Writes out everything received, fsyncs the file and returns its digest and size.
    async fn complete(mut self) -> Result<Fetched> {
        let path = self.path.clone();
        let cannot_write = |e| anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
        self.hand_over().await.map_err(cannot_write)?;
        let file = self.writer.finish().await.map_err(cannot_write)?.file;
        let hasher = self.hasher.finish().await?;
        tokio::task::spawn_blocking(move || file.sync_all())
            .await?
            .with_context(|| format!("cannot fsync {}", path.display()))?;
        Ok(Fetched { sha256: hex::encode(hasher.finalize()), size: self.len })
    }

    /// Writes out everything received and closes the file (a failed download keeps its bytes to resume).
    async fn close(mut self) {
        let _ = self.hand_over().await;
        let _ = self.writer.finish().await;
        let _ = self.hasher.finish().await;
    }
}

/// Writes the `.part` and starts the kernel's writeback every `WRITE_BACK_EVERY` bytes, so the disk
/// works beside the transfer and the one fsync before install has little left to do.
struct PartWriter {
    file: File,
    at: u64,
    written_back: u64,
}

const WRITE_BACK_EVERY: u64 = 8 << 20;

impl PartWriter {
    fn write(&mut self, chunks: &[Bytes]) -> std::io::Result<()> {
        for chunk in chunks {
            self.file.write_all(chunk)?;
            self.at += chunk.len() as u64;
        }
        if self.at - self.written_back >= WRITE_BACK_EVERY {
            start_write_back(&self.file, self.written_back, self.at - self.written_back);
            self.written_back = self.at;
        }
        Ok(())
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        (self.at, self.written_back) = (0, 0);
        Ok(())
    }
}

/// Asks the kernel to start writing this range to disk without waiting for it (a hint: errors surface
/// at the fsync).
#[cfg(target_os = "linux")]
fn start_write_back(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a file descriptor this function borrows; no memory is passed.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), from as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_write_back(_file: &File, _from: u64, _len: u64) {}

/// hyper reads the response into buffers of up to ~400 KiB, allocated on the network thread and freed
/// on the writer's and the hasher's once both are done with them. glibc's defaults give such freed
/// memory back to the kernel and fault fresh pages in for the next ones (measured on a 200 MB loopback
/// download: ~16,000 page faults, about a tenth of the download's CPU); these thresholds keep it in the
/// process for reuse (at most 64 MiB kept free), which takes the faults to ~7,000.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_blocks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: mallopt only changes allocator parameters; glibc makes it safe to call at any time.
    ONCE.call_once(|| unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_blocks() {}

enum Block {
    Data(Arc<Vec<Bytes>>),
    /// The server starts over: drop everything so far.
    Reset,
}

/// A thread that owns `T` and applies the blocks sent to it, in order.
struct Stage<T> {
    tx: Option<mpsc::Sender<Block>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<T>>>,
}

impl<T: Send + 'static> Stage<T> {
    fn spawn(
        name: &str,
        mut owned: T,
        mut apply: impl FnMut(&mut T, Block) -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Stage<T>> {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            while let Some(block) = rx.blocking_recv() {
                apply(&mut owned, block)?;
            }
            Ok(owned)
        })?;
        Ok(Stage { tx: Some(tx), thread: Some(thread) })
    }

    /// Queues `block`; when the thread has stopped on an error, returns that error.
    async fn send(&mut self, block: Block) -> std::io::Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(block).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.finish().await.map(drop)
    }

    /// Lets the thread apply what is queued, then returns what it owns (or the error that stopped it).
    async fn finish(&mut self) -> std::io::Result<T> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Err(std::io::Error::other("the download's writer already stopped"));
        };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result,
            _ => Err(std::io::Error::other("the download's writer thread panicked")),
        }
    }
}

enum Failure {
    /// Worth another attempt (network error, 5xx, stall, cut connection).
    Transient(anyhow::Error),
    Fatal(anyhow::Error),
}

/// Downloads `url` into `part`, resuming what is there. `on_total` learns the full size once known.
pub async fn fetch(
    client: &Client,
    url: &Url,
    part: &Path,
    opts: &FetchOptions,
    progress: &mut Progress,
    on_total: &mut (dyn FnMut(Option<u64>) + Send),
) -> Result<Fetched> {
    keep_freed_blocks();
    let mut partial = Partial::open(part)?;
    let mut failures = 0u32;
    loop {
        let before = partial.len;
        match attempt(client, url, &mut partial, opts, progress, on_total).await {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => {
                partial.close().await;
                return Err(e);
            }
            Err(Failure::Transient(e)) => {
                failures = if partial.len > before { 1 } else { failures + 1 };
                if failures > opts.retries {
                    partial.close().await;
                    return Err(e.context(format!("gave up after {} retries", opts.retries)));
                }
                let wait = opts.backoff.saturating_mul(1 << (failures - 1).min(16)).min(Duration::from_secs(30));
                tracing::warn!(url = %url, attempt = failures, "download retry: {e:#}");
                progress.send(super::Event::Retrying {
                    id: progress.id().to_string(),
                    attempt: failures,
                    reason: format!("{e:#}"),
                    wait_s: wait.as_secs_f64(),
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
    partial.complete().await
}

async fn attempt(
    client: &Client,
    url: &Url,
    partial: &mut Partial,
    opts: &FetchOptions,
    progress: &mut Progress,
    on_total: &mut (dyn FnMut(Option<u64>) + Send),
) -> Result<(), Failure> {
    let host = url.host_str().unwrap_or("the server").to_string();
    let stall_s = opts.stall.as_secs_f64();
    let from = partial.len;
    if url.scheme() != "https" && opts.https_only {
        return Err(Failure::Fatal(anyhow!(
            "refusing {url}: plain http is allowed only for an explicitly configured mirror"
        )));
    }
    let mut request = client.get(url.clone());
    if from > 0 {
        request = request.header(header::RANGE, format!("bytes={from}-"));
    }
    let mut response = match timeout(opts.stall, request.send()).await {
        Err(_) => return Err(transient(anyhow!("no answer from {host} within {stall_s} s"))),
        Ok(Err(e)) if e.is_redirect() || e.is_builder() => return Err(Failure::Fatal(e.into())),
        Ok(Err(e)) => return Err(transient(anyhow::Error::new(e).context(format!("cannot reach {host}")))),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let io_fatal = |e: std::io::Error| Failure::Fatal(anyhow::Error::new(e).context("cannot write the .part file"));
    let total = match status {
        StatusCode::PARTIAL_CONTENT => {
            let (start, total) = content_range(&response).unwrap_or((u64::MAX, None));
            if start != from {
                partial.reset().await.map_err(io_fatal)?;
                return Err(transient(anyhow!("{host} answered a range starting at {start}, not {from}")));
            }
            total
        }
        StatusCode::OK => {
            if from > 0 {
                tracing::info!(url = %url, "server ignored Range; starting over");
                partial.reset().await.map_err(io_fatal)?;
            }
            response.content_length()
        }
        StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
            let total = content_range_total(&response);
            if total == Some(from) {
                on_total(total);
                return Ok(());
            }
            partial.reset().await.map_err(io_fatal)?;
            return Err(transient(anyhow!("{host} refused the range from byte {from}; starting over")));
        }
        s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS => {
            return Err(transient(anyhow!("{host} answered {s} for {url}")));
        }
        s => return Err(Failure::Fatal(anyhow!("{host} answered {s} for {url}"))),
    };
    if is_html(&response) && !url.path().ends_with(".html") {
        return Err(Failure::Fatal(anyhow!(
            "{url} served an HTML page, not the checkpoint (a login, preview or error page)"
        )));
    }
    on_total(total);
    progress.started(total, partial.len);
    loop {
        match timeout(opts.stall, response.chunk()).await {
            Err(_) => {
                return Err(transient(anyhow!(
                    "download stalled: no data from {host} for {stall_s} s at byte {}",
                    partial.len
                )));
            }
            Ok(Err(e)) => return Err(transient(anyhow::Error::new(e).context(format!("connection to {host} broke")))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(bytes))) => {
                partial.append(bytes).await.map_err(io_fatal)?;
                progress.bytes(partial.len, total);
            }
        }
    }
    match total {
        Some(t) if partial.len != t => {
            Err(transient(anyhow!("{host} closed the connection at byte {} of {t}", partial.len)))
        }
        _ => Ok(()),
    }
}

fn transient(e: anyhow::Error) -> Failure {
    Failure::Transient(e)
}

fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"))
}

/// `Content-Range: bytes START-END/TOTAL` → (START, TOTAL).
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// `Content-Range: bytes */TOTAL` (a 416 answer) → TOTAL.
fn content_range_total(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(header::CONTENT_RANGE)?.to_str().ok()?;
    value.rsplit_once('/')?.1.trim().parse().ok()
}
