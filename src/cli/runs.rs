//! `medxfer runs ...`: the read-only commands (`ls`, `show`) here; the mutating ones (stop, kill, resume,
//! restart, rm) go through the agent and live in `queue`.

use crate::runs::store::{self, MetricsTail, RunEntry};
use anyhow::Result;
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum RunsCommand {
    /// List the runs in the home: id, state, dataset, init, trial, epoch, metric.
    Ls(LsArgs),
    /// Show one run: its spec, status, last epoch metrics and result.
    Show(ShowArgs),
    /// Print a run's train.log; with -f, keep printing what is added until the run ends.
    Logs(LogsArgs),
    /// Push runs to an MLflow tracking server (experiment per dataset, run per run; re-exporting updates).
    Export(ExportArgs),
    #[command(flatten)]
    Control(super::queue::RunControl),
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Print the list as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The run id (or a unique prefix of it).
    pub id: String,
    /// Print the run as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The run id (or a unique prefix of it).
    pub id: String,
    /// Follow the log until the run is finished, failed or stopped.
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The tracking server's URL, e.g. http://127.0.0.1:5000 (MLFLOW_TRACKING_TOKEN is sent if set).
    #[arg(long, value_name = "URL", required = true)]
    pub mlflow: String,
    /// Run ids (or unique prefixes); default: every run in the home.
    #[arg(conflicts_with = "sweep")]
    pub ids: Vec<String>,
    /// Every run of this sweep.
    #[arg(long)]
    pub sweep: Option<String>,
    /// Print what was exported as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    match args.command {
        RunsCommand::Ls(a) => ls(&ctx, a),
        RunsCommand::Show(a) => show(&ctx, a),
        RunsCommand::Logs(a) => logs(&ctx, a),
        RunsCommand::Export(a) => export(&ctx, a),
        RunsCommand::Control(cmd) => super::queue::run_control(&ctx, cmd),
    }
}

/// One line of `runs ls`.
#[derive(Debug, Serialize)]
pub struct RunLine {
    pub id: String,
    /// queued | running | stopped | failed | finished, or unknown without a readable status.json.
    pub state: String,
    pub dataset: String,
    pub init: String,
    pub trial: u32,
    pub anno_percent: u32,
    pub epoch: u32,
    /// The result's metric name and value once finished.
    pub metric: Option<String>,
    pub value: Option<f64>,
}

impl RunLine {
    pub fn of(run: &RunEntry) -> RunLine {
        RunLine {
            id: run.id.clone(),
            state: run.state_name().to_string(),
            dataset: run.spec.dataset.clone(),
            init: run.spec.init.clone(),
            trial: run.spec.trial,
            anno_percent: run.spec.data.anno_percent,
            epoch: run.epoch(),
            metric: run.result.as_ref().map(|r| r.metric.clone()),
            value: run.result.as_ref().map(|r| r.mean),
        }
    }
}

fn ls(ctx: &crate::home::Ctx, args: LsArgs) -> Result<i32> {
    let (runs, warnings) = store::list_runs(&ctx.home.runs);
    for w in &warnings {
        eprintln!("medxfer: warning: {w}");
    }
    let lines: Vec<RunLine> = runs.iter().map(RunLine::of).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(0);
    }
    if lines.is_empty() {
        eprintln!("no runs under {}", ctx.home.runs.display());
        return Ok(0);
    }
    let w = lines.iter().map(|l| l.id.len()).max().unwrap_or(2).max(2);
    println!("{:<w$}  {:<8}  {:<14}  {:<22}  {:>5}  {:>5}  metric", "id", "state", "dataset", "init", "trial", "epoch");
    for l in &lines {
        let metric = match (&l.metric, l.value) {
            (Some(m), Some(v)) => format!("{m} {v:.4}"),
            _ => "-".into(),
        };
        println!(
            "{:<w$}  {:<8}  {:<14}  {:<22}  {:>5}  {:>5}  {metric}",
            l.id, l.state, l.dataset, l.init, l.trial, l.epoch
        );
    }
    Ok(0)
}

#[derive(Serialize)]
struct ShowReport<'a> {
    #[serde(flatten)]
    run: &'a RunEntry,
    last_epoch: Option<crate::runs::record::MetricLine>,
    skipped_metric_lines: usize,
}

fn show(ctx: &crate::home::Ctx, args: ShowArgs) -> Result<i32> {
    let run = store::find_run(&ctx.home.runs, &args.id)?;
    let mut tail = MetricsTail::new(&run.dir);
    let lines = tail.read_new()?.lines;
    if tail.skipped() > 0 {
        eprintln!(
            "medxfer: warning: {} lines of {} are not valid metric lines and were skipped",
            tail.skipped(),
            run.dir.join(crate::runs::record::METRICS_FILE).display()
        );
    }
    let last_epoch = lines.into_iter().rev().find(|l| l.kind == "epoch");
    let report = ShowReport { run: &run, last_epoch, skipped_metric_lines: tail.skipped() };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let s = &run.spec;
    println!("id        {}", run.id);
    println!("folder    {}", run.dir.display());
    println!("state     {}", run.state_name());
    println!("dataset   {} ({:?}, {}% labels)", s.dataset, s.task, s.data.anno_percent);
    println!("init      {}", s.init);
    println!("trial     {} (seed {})", s.trial, s.seed);
    println!(
        "hyper     epochs {} batch {} lr {} {} {}",
        s.hyper.epochs, s.hyper.batch_size, s.hyper.lr, s.hyper.optimizer, s.hyper.scheduler
    );
    println!("device    {} {}", s.device.device, s.device.precision);
    if let Some(st) = &run.status {
        let best = st.best_epoch.map(|e| e.to_string()).unwrap_or_else(|| "-".into());
        let loss = st.best_val_loss.map(|l| format!("{l:.4}")).unwrap_or_else(|| "-".into());
        println!("epoch     {} (best {best}, best val loss {loss})", st.epoch);
        if let Some(reason) = &st.reason {
            println!("reason    {reason}");
        }
        println!("updated   {}", st.updated);
    }
    if let Some(l) = &report.last_epoch {
        let val: Vec<String> = l.val.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        println!(
            "last      epoch {} train loss {:?} val loss {:?} {}",
            l.epoch,
            l.train_loss,
            l.val_loss,
            val.join(" ")
        );
    }
    if let Some(r) = &run.result {
        println!("result    {} {:.4} (best epoch {}, {} epochs)", r.metric, r.mean, r.best_epoch, r.epochs_run);
        for (class, v) in &r.per_class {
            println!("          {class:<24} {v:.4}");
        }
    }
    Ok(0)
}

fn logs(ctx: &crate::home::Ctx, args: LogsArgs) -> Result<i32> {
    use crate::runs::record::{LOG_FILE, State, Status};
    let run = store::find_run(&ctx.home.runs, &args.id)?;
    let path = run.dir.join(LOG_FILE);
    let mut offset = 0;
    loop {
        // Read the state before the log, so that lines written just before the end are still printed.
        let ended =
            matches!(Status::load(&run.dir).map(|s| s.state), Ok(State::Finished | State::Failed | State::Stopped));
        offset += print_from(&path, offset)?;
        if !args.follow || ended {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Copies `path` from byte `offset` to stdout; a log not written yet counts as empty.
fn print_from(path: &std::path::Path, offset: u64) -> Result<u64> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    };
    file.seek(SeekFrom::Start(offset))?;
    let mut out = std::io::stdout().lock();
    let copied = std::io::copy(&mut file, &mut out)?;
    out.flush()?;
    Ok(copied)
}

fn export(ctx: &crate::home::Ctx, args: ExportArgs) -> Result<i32> {
    let client = crate::runs::mlflow::Client::new(&args.mlflow)?;
    let runs: Vec<RunEntry> = if args.ids.is_empty() {
        let (runs, warnings) = store::list_runs(&ctx.home.runs);
        for w in &warnings {
            eprintln!("medxfer: warning: {w}");
        }
        runs.into_iter().filter(|r| args.sweep.is_none() || r.spec.sweep == args.sweep).collect()
    } else {
        args.ids.iter().map(|id| store::find_run(&ctx.home.runs, id)).collect::<Result<_>>()?
    };
    if runs.is_empty() {
        let which = args.sweep.map_or_else(|| "no runs".to_string(), |s| format!("no runs of sweep {s:?}"));
        anyhow::bail!("{which} under {} to export", ctx.home.runs.display());
    }
    let mut done = Vec::new();
    for run in &runs {
        let e = client.export(run)?;
        let verb = if e.created { "created" } else { "updated" };
        eprintln!("medxfer: {verb} MLflow run {} for {} ({} metrics)", e.mlflow_run_id, e.run_id, e.metrics);
        if !e.kept_params.is_empty() {
            eprintln!(
                "medxfer: warning: {}: MLflow keeps params once; these differ from spec.toml and were left as they were: {}",
                e.run_id,
                e.kept_params.join(", ")
            );
        }
        done.push(e);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    }
    Ok(0)
}
