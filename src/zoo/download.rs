//! One HTTP download into a `.part` file: sha256 computed while streaming, Range resume (also across
//! processes: the existing bytes are hashed first), start over when the server ignores Range, retries
//! with backoff, and a stall timeout. The caller verifies and installs the result.

use super::progress::Progress;
use anyhow::{Context, Result, anyhow};
use reqwest::{Client, StatusCode, Url, header};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;
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

/// The `.part` file with the running digest of its bytes.
struct Partial {
    file: File,
    hasher: Sha256,
    len: u64,
}

impl Partial {
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
        Ok(Partial { file, hasher, len })
    }

    fn reset(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.hasher = Sha256::new();
        self.len = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
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
    let mut partial = Partial::open(part)?;
    let mut failures = 0u32;
    loop {
        let before = partial.len;
        match attempt(client, url, &mut partial, opts, progress, on_total).await {
            Ok(()) => break,
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(e)) => {
                failures = if partial.len > before { 1 } else { failures + 1 };
                if failures > opts.retries {
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
    partial.file.sync_all().with_context(|| format!("cannot fsync {}", part.display()))?;
    Ok(Fetched { sha256: hex::encode(partial.hasher.finalize()), size: partial.len })
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
                partial.reset().map_err(io_fatal)?;
                return Err(transient(anyhow!("{host} answered a range starting at {start}, not {from}")));
            }
            total
        }
        StatusCode::OK => {
            if from > 0 {
                tracing::info!(url = %url, "server ignored Range; starting over");
                partial.reset().map_err(io_fatal)?;
            }
            response.content_length()
        }
        StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
            let total = content_range_total(&response);
            if total == Some(from) {
                on_total(total);
                return Ok(());
            }
            partial.reset().map_err(io_fatal)?;
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
                partial.append(&bytes).map_err(io_fatal)?;
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
