//! `medxfer zoo list|show|pull|verify|import|path|rm`: the model zoo from the command line.

use crate::zoo::report::{ZooOutcome, ZooReport};
use crate::zoo::{self, Catalog, Entry, Event, ModelPaths, PullOptions};
use anyhow::{Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: ZooCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ZooCommand {
    /// Every model with its state (missing, downloading, downloaded, verified, converted, failed).
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Everything the catalog says about one model, and its state.
    Show {
        /// A model id, as `zoo list` shows it.
        id: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Download, verify and convert models (resumes interrupted downloads).
    Pull {
        /// Model ids.
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every model that can be downloaded automatically (or from the mirror).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Download and verify only; convert later with `zoo pull` again.
        #[arg(long)]
        no_convert: bool,
        /// Print each model's outcome, state, file and sha256 as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Re-hash downloaded files against the catalog or zoo.lock (all downloaded models by default).
    Verify {
        /// Model ids (default: every downloaded model).
        ids: Vec<String>,
        /// Print each model's outcome and state as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Take a file downloaded by hand (manual entries) into the cache.
    Import {
        /// The model id; the file is checked against its catalog sha256 or zoo.lock pin (or pinned, when
        /// neither exists).
        id: String,
        /// The file downloaded by hand.
        file: PathBuf,
        /// Print the outcome, state, file and sha256 as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of a model's downloaded file (or, with --converted, its safetensors).
    Path {
        /// A model id.
        id: String,
        /// Print the converted .safetensors instead of the downloaded file.
        #[arg(long)]
        converted: bool,
    },
    /// Delete a model's files from the cache (its zoo.lock pin stays).
    Rm {
        /// A model id.
        id: String,
        /// Print the outcome and state as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    let catalog = Catalog::embedded()?;
    let home = &ctx.home;
    match args.command {
        ZooCommand::List { json } => list(home, &catalog, json),
        ZooCommand::Show { id, json } => show(home, catalog.require(&id)?, json),
        ZooCommand::Pull { ids, all, no_convert, json } => {
            let entries: Vec<Entry> = if all {
                let opts = PullOptions::from_env(&ctx.config)?;
                let fetchable = |e: &&Entry| e.has_file() && (!e.manual || opts.mirror.is_some());
                catalog.entries.iter().filter(fetchable).cloned().collect()
            } else {
                ids.iter().map(|id| catalog.require(id).cloned()).collect::<Result<_>>()?
            };
            pull(&ctx, &entries, !no_convert, json)
        }
        ZooCommand::Verify { ids, json } => verify(home, &catalog, &ids, json),
        ZooCommand::Import { id, file, json } => {
            let entry = catalog.require(&id)?;
            let imported = zoo::import(home, entry, &file);
            let done = imported.map(|o| format!("imported, {}", zoo::pull::describe(&o)));
            single(home, entry, "import", done, json)
        }
        ZooCommand::Path { id, converted } => {
            let entry = catalog.require(&id)?;
            let paths = ModelPaths::new(home, entry);
            let path = if converted { &paths.converted } else { &paths.file };
            if !entry.has_file() || !path.is_file() {
                bail!(
                    "{id} has no {} file yet (expected {}); run `medxfer zoo pull {id}`",
                    if converted { "converted" } else { "downloaded" },
                    path.display()
                );
            }
            println!("{}", path.display());
            Ok(0)
        }
        ZooCommand::Rm { id, json } => {
            let entry = catalog.require(&id)?;
            let removed = zoo::remove(home, entry);
            let done = removed.map(|r| if r { "removed from the cache" } else { "nothing in the cache" }.to_string());
            single(home, entry, "rm", done, json)
        }
    }
}

/// Ends a one-model command: "ID: what was done" on stderr (a failure is the command's error), and with
/// `json` the report on stdout first, whether it succeeded or not.
fn single(home: &crate::home::Home, entry: &Entry, verb: &str, done: Result<String>, json: bool) -> Result<i32> {
    if json {
        let result = done.as_ref().cloned().map_err(crate::error::one_sentence);
        print_report(verb, vec![ZooOutcome::of(home, entry, result)])?;
    }
    eprintln!("{}: {}", entry.id, done?);
    Ok(0)
}

fn print_report(verb: &str, models: Vec<ZooOutcome>) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(&ZooReport { verb: verb.into(), models })?);
    Ok(())
}

fn list(home: &crate::home::Home, catalog: &Catalog, json: bool) -> Result<i32> {
    if json {
        let rows: Vec<zoo::cache::ListRow> = catalog.entries.iter().map(|e| zoo::cache::ListRow::of(home, e)).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    println!("{:<22} {:<26} {:<42} state", "id", "category", "name");
    for e in &catalog.entries {
        let manual = if e.manual { " (manual)" } else { "" };
        println!("{:<22} {:<26} {:<42} {}{manual}", e.id, e.category, e.name, zoo::state_of(home, e).label());
    }
    Ok(0)
}

fn show(home: &crate::home::Home, entry: &Entry, json: bool) -> Result<i32> {
    let state = zoo::state_of(home, entry);
    if json {
        let mut value = serde_json::to_value(entry)?;
        value["status"] = serde_json::to_value(&state)?;
        value["path"] = ModelPaths::new(home, entry).file.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    println!("{} — {}", entry.id, entry.name);
    println!("  category   {}\n  dataset    {}\n  objective  {}", entry.category, entry.dataset, entry.objective);
    println!("  paper      {} ({})", entry.paper, entry.paper_url);
    for url in &entry.urls {
        println!("  source     {url}");
    }
    if entry.has_file() {
        println!("  file       {}", ModelPaths::new(home, entry).file.display());
    }
    println!("  recipe     {}\n  credit     {}", entry.recipe, entry.credit);
    println!(
        "  sha256     {}",
        entry.sha256.as_deref().unwrap_or("not in the catalog (pinned in zoo.lock on first download)")
    );
    println!("  state      {}", state.label());
    if entry.manual {
        println!("  manual download:");
        for (i, step) in entry.steps.iter().enumerate() {
            println!("    {}. {step}", i + 1);
        }
    }
    Ok(0)
}

fn pull(ctx: &crate::home::Ctx, entries: &[Entry], convert: bool, json: bool) -> Result<i32> {
    let opts = PullOptions { convert, ..PullOptions::from_env(&ctx.config)? };
    let runtime = tokio::runtime::Runtime::new()?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let home = ctx.home.clone();
    let results = runtime.block_on(async move {
        let bars = tokio::spawn(draw_progress(rx));
        let results = zoo::pull_many(&home, entries, &opts, Some(tx)).await;
        let _ = bars.await;
        results
    });
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for (id, result) in &results {
        let done = match result {
            Ok(outcome) => {
                let done = zoo::pull::describe(outcome);
                eprintln!("{id}: {done}");
                Ok(done)
            }
            Err(e) => {
                let why = crate::error::one_sentence(e);
                eprintln!("medxfer: {id}: {why}");
                failed.push(id.as_str());
                Err(why)
            }
        };
        if let Some(entry) = entries.iter().find(|e| &e.id == id) {
            report.push(ZooOutcome::of(&ctx.home, entry, done));
        }
    }
    if json {
        print_report("pull", report)?;
    }
    if !failed.is_empty() {
        bail!("{} of {} pulls failed: {}", failed.len(), results.len(), failed.join(", "));
    }
    Ok(0)
}

/// Draws one indicatif bar per model from the progress events until the channel closes.
async fn draw_progress(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>22} [{bar:30}] {bytes}/{total_bytes} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: HashMap<String, ProgressBar> = HashMap::new();
    while let Some(event) = rx.recv().await {
        let id = match &event {
            Event::Waiting { id }
            | Event::Started { id, .. }
            | Event::Progress { id, .. }
            | Event::Retrying { id, .. }
            | Event::Finished { id, .. }
            | Event::Failed { id, .. } => id.clone(),
        };
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(id.clone());
            bar
        });
        match event {
            Event::Waiting { id } => {
                multi.suspend(|| eprintln!("{id}: waiting for another medxfer pulling this model"));
                bar.set_message("waiting for another medxfer pulling this model");
            }
            Event::Started { total, resumed_from, .. } => {
                bar.set_length(total.unwrap_or(0));
                bar.set_position(resumed_from);
                if resumed_from > 0 {
                    bar.set_message(format!("resuming at {resumed_from} B"));
                }
            }
            Event::Progress { bytes, total, rate_bps, eta_s, .. } => {
                bar.set_length(total.unwrap_or(bytes));
                bar.set_position(bytes);
                let eta = eta_s.map(|s| format!(", ETA {s:.0} s")).unwrap_or_default();
                bar.set_message(format!("{:.1} MB/s{eta}", rate_bps / 1e6));
            }
            Event::Retrying { attempt, reason, wait_s, .. } => {
                bar.set_message(format!("retry {attempt} in {wait_s:.1} s: {reason}"))
            }
            Event::Finished { .. } => bar.finish_with_message("done"),
            Event::Failed { .. } => bar.abandon_with_message("failed"),
        }
    }
}

fn verify(home: &crate::home::Home, catalog: &Catalog, ids: &[String], json: bool) -> Result<i32> {
    let entries: Vec<&Entry> = if ids.is_empty() {
        catalog.entries.iter().filter(|e| e.has_file() && ModelPaths::new(home, e).file.is_file()).collect()
    } else {
        ids.iter().map(|id| catalog.require(id)).collect::<Result<_>>()?
    };
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for entry in entries {
        let done = verify_one(home, entry);
        match &done {
            Ok(done) => eprintln!("{}: {done}", entry.id),
            Err(why) => {
                eprintln!("medxfer: {}: {why}", entry.id);
                failed.push(entry.id.clone());
            }
        }
        report.push(ZooOutcome::of(home, entry, done));
    }
    if json {
        print_report("verify", report)?;
    }
    if !failed.is_empty() {
        bail!("verification failed for {}", failed.join(", "));
    }
    Ok(0)
}

/// Re-hashes one model's installed file: what was found, or why it failed in one sentence.
fn verify_one(home: &crate::home::Home, entry: &Entry) -> Result<String, String> {
    let paths = ModelPaths::new(home, entry);
    if !entry.has_file() {
        return Ok("no checkpoint".into());
    }
    if !paths.file.is_file() {
        return Err(format!("not downloaded ({} is missing)", paths.file.display()));
    }
    let _lock = zoo::lock::IdLock::acquire(&paths.lock_file).map_err(|e| crate::error::one_sentence(&e))?;
    match zoo::verify::verify_installed(home, entry, &paths) {
        Ok(zoo::verify::Verdict::Verified) => Ok("verified".into()),
        Ok(zoo::verify::Verdict::FirstUse) => Ok("nothing to check against; pinned in zoo.lock".into()),
        Err(e) => Err(crate::error::one_sentence(&e)),
    }
}
