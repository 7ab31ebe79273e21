//! `zoo pull`, `zoo import`, `zoo rm`: one model under its lock (download or copy, verify, install,
//! convert), and several at once with a bounded number in flight.

use super::cache::{ModelPaths, Recorded};
use super::catalog::Entry;
use super::download;
use super::lock::IdLock;
use super::progress::{Event, Progress};
use super::source::PullOptions;
use super::verify::{self, Verdict};
use crate::home::Home;
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// How a pull ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `random`: nothing to fetch.
    Builtin,
    /// Already in the cache (`zoo verify` re-checks it).
    Present,
    Installed {
        sha256: String,
        verdict: Verdict,
        converted: bool,
    },
}

/// The conversion run after every successful download or import: the catalog's recipe turns the
/// checkpoint into torchvision-named safetensors at `output`. Returns whether `output` exists afterwards.
pub fn convert_after_download(entry: &Entry, input: &Path, output: &Path) -> Result<bool> {
    match entry.recipe.as_str() {
        "none" => return Ok(output.is_file()),
        recipe if !crate::ckpt::RECIPES.contains(&recipe) => {
            bail!("no converter for recipe {recipe:?} yet (supported: {})", crate::ckpt::RECIPES.join(", "))
        }
        _ => {}
    }
    crate::ckpt::convert_file(&entry.recipe, input, output)?;
    Ok(output.is_file())
}

/// Runs the conversion and records its failure, if any, in the model's state; a failed conversion
/// leaves the verified download in place.
fn convert(entry: &Entry, paths: &ModelPaths) -> bool {
    let outcome = convert_after_download(entry, &paths.file, &paths.converted);
    let mut recorded = Recorded::load(paths).unwrap_or_default();
    let error = outcome.as_ref().err().map(crate::error::one_sentence);
    if recorded.conversion_error != error {
        recorded.conversion_error = error;
        if let Err(e) = recorded.save(paths) {
            tracing::warn!(id = %entry.id, "cannot record the conversion outcome: {e:#}");
        }
    }
    match outcome {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(id = %entry.id, "conversion failed: {e:#}");
            eprintln!("medxfer: {}: conversion failed: {}", entry.id, crate::error::one_sentence(&e));
            false
        }
    }
}

/// Takes the model's lock, telling the progress channel when another process makes it wait.
async fn lock_model(paths: &ModelPaths, progress: &Progress) -> Result<IdLock> {
    if let Some(lock) = IdLock::try_acquire(&paths.lock_file)? {
        return Ok(lock);
    }
    progress.send(Event::Waiting { id: progress.id().to_string() });
    let path = paths.lock_file.clone();
    tokio::task::spawn_blocking(move || IdLock::acquire(&path)).await?
}

/// Fetches, verifies, installs and converts one model; never leaves a half-installed file.
pub async fn pull_one(
    home: &Home,
    entry: &Entry,
    opts: &PullOptions,
    client: Option<&reqwest::Client>,
    tx: Option<UnboundedSender<Event>>,
) -> Result<Outcome> {
    if !entry.has_file() {
        return Ok(Outcome::Builtin);
    }
    let paths = ModelPaths::new(home, entry);
    let mut progress = Progress::new(&entry.id, tx);
    let _lock = lock_model(&paths, &progress).await?;
    if paths.file.is_file() {
        if opts.convert && !paths.converted.is_file() {
            convert(entry, &paths);
        }
        return Ok(Outcome::Present);
    }
    let advice = || super::source::elsewhere_advice(home, entry);
    if opts.offline {
        bail!("offline (MEDXFER_OFFLINE=1): {} is missing from {}; {}", entry.id, paths.dir.display(), advice());
    }
    let url = opts.source(entry)?;
    let Some(client) = client else { bail!("no HTTP client for {}", entry.id) };
    Recorded { state: "downloading".into(), ..Recorded::default() }.save(&paths)?;
    let mut record_total = |total: Option<u64>| {
        let _ = Recorded { state: "downloading".into(), total, ..Recorded::default() }.save(&paths);
    };
    let fetched = download::fetch(client, &url, &paths.part, &opts.fetch, &mut progress, &mut record_total).await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            let e = e.context(format!("cannot download {} from {url}", entry.id));
            let total = Recorded::load(&paths).and_then(|r| r.total);
            let reason = Some(crate::error::one_sentence(&e));
            Recorded { state: "failed".into(), reason, total, ..Recorded::default() }.save(&paths)?;
            return Err(anyhow!("{}; {}", crate::error::one_sentence(&e), advice()));
        }
    };
    let installed = if opts.convert {
        finish(home, entry, &paths, &fetched, url.as_str())
    } else {
        verify::install(home, entry, &paths, &fetched, url.as_str()).map(|verdict| Outcome::Installed {
            sha256: fetched.sha256.clone(),
            verdict,
            converted: false,
        })
    };
    installed.map_err(|e| anyhow!("{}; {}", crate::error::one_sentence(&e), advice()))
}

fn finish(
    home: &Home,
    entry: &Entry,
    paths: &ModelPaths,
    fetched: &download::Fetched,
    source: &str,
) -> Result<Outcome> {
    let verdict = verify::install(home, entry, paths, fetched, source)?;
    let converted = convert(entry, paths);
    Ok(Outcome::Installed { sha256: fetched.sha256.clone(), verdict, converted })
}

/// Pulls several models, at most `opts.concurrency` at once; results in the order given.
pub async fn pull_many(
    home: &Home,
    entries: &[Entry],
    opts: &PullOptions,
    tx: Option<UnboundedSender<Event>>,
) -> Vec<(String, Result<Outcome>)> {
    let client = if opts.offline { None } else { Some(opts.client()) };
    let client = match client {
        Some(Err(e)) => {
            let reason = format!("{e:#}");
            return entries.iter().map(|e| (e.id.clone(), Err(anyhow::anyhow!("{reason}")))).collect();
        }
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(opts.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, entry) in entries.iter().cloned().enumerate() {
        let (home, opts, client, tx, slots) = (home.clone(), opts.clone(), client.clone(), tx.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let result = pull_one(&home, &entry, &opts, client.as_ref(), tx.clone()).await;
            let event = match &result {
                Ok(outcome) => Event::Finished { id: entry.id.clone(), message: describe(outcome) },
                Err(e) => Event::Failed { id: entry.id.clone(), reason: crate::error::one_sentence(e) },
            };
            if let Some(tx) = &tx {
                let _ = tx.send(event);
            }
            (index, entry.id, result)
        });
    }
    let mut results: Vec<(usize, String, Result<Outcome>)> = tasks.join_all().await.into_iter().collect();
    results.sort_by_key(|r| r.0);
    results.into_iter().map(|(_, id, r)| (id, r)).collect()
}

/// One line for an outcome.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Builtin => "no checkpoint needed".into(),
        Outcome::Present => "already in the cache".into(),
        Outcome::Installed { sha256, verdict, converted } => {
            let how = match verdict {
                Verdict::Verified => "verified",
                Verdict::FirstUse => "pinned in zoo.lock",
            };
            let conv = if *converted { ", converted" } else { "" };
            format!("sha256 {sha256} ({how}{conv})")
        }
    }
}

/// `zoo import ID FILE`: copies a hand-downloaded file in, then verifies and installs it like a download.
pub fn import(home: &Home, entry: &Entry, src: &Path) -> Result<Outcome> {
    if !entry.has_file() {
        bail!("{} has no checkpoint to import", entry.id);
    }
    if !src.is_file() {
        bail!("cannot import {}: {} is not a file", entry.id, src.display());
    }
    let paths = ModelPaths::new(home, entry);
    let _lock = IdLock::acquire(&paths.lock_file)?;
    let fetched = verify::copy_to_part(src, &paths.part)?;
    let source = std::path::absolute(src).unwrap_or_else(|_| src.to_path_buf());
    finish(home, entry, &paths, &fetched, &source.display().to_string())
}

/// `zoo rm ID`: deletes the model's files (its zoo.lock pin stays, so a new download is still checked).
pub fn remove(home: &Home, entry: &Entry) -> Result<bool> {
    let paths = ModelPaths::new(home, entry);
    if !paths.dir.is_dir() {
        return Ok(false);
    }
    let _lock = IdLock::acquire(&paths.lock_file)?;
    for item in std::fs::read_dir(&paths.dir).with_context(|| format!("cannot read {}", paths.dir.display()))? {
        let path = item?.path();
        if path == paths.lock_file {
            continue;
        }
        let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        removed.with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(true)
}
