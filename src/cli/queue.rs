//! `medxfer queue pause|resume` and the run controls `runs stop|kill|resume|restart|rm ID...`,
//! all sent to the agent (started when not running) so that it alone changes the queue.

use crate::runs::store;
use crate::sched::report::{ControlOutcome, ControlReport, QueueReport};
use crate::sched::socket::{self, Request};
use anyhow::{Context, Result};

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub command: QueueCommand,
    /// Print whether the queue is paused afterwards as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum QueueCommand {
    /// Launch no more queued runs (running ones go on).
    Pause,
    /// Launch queued runs again.
    Resume,
}

pub fn run_queue(args: QueueArgs) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    socket::ensure_agent(&ctx.home)?;
    let (req, done) = match args.command {
        QueueCommand::Pause => (Request::Pause, "queue paused"),
        QueueCommand::Resume => (Request::Resume, "queue resumed"),
    };
    socket::request_ok(&ctx.home, &req)?;
    eprintln!("{done}");
    if args.json {
        let status = socket::request_ok(&ctx.home, &Request::Status)?.status;
        let paused = status.context("the agent sent no status after the change")?.paused;
        println!("{}", serde_json::to_string_pretty(&QueueReport { paused })?);
    }
    Ok(0)
}

/// Run controls; a `runs` command group can embed these with `#[command(flatten)]`.
#[derive(clap::Subcommand, Debug)]
pub enum RunControl {
    /// Stop runs (SIGTERM; queued runs just leave the queue). `runs resume` continues them.
    Stop(ControlArgs),
    /// Kill runs at once (SIGKILL to the run's whole session).
    Kill(ControlArgs),
    /// Queue stopped or failed runs again; they resume from last.ckpt.
    Resume(ControlArgs),
    /// Queue runs again from scratch (drops their metrics, checkpoints and result).
    Restart(ControlArgs),
    /// Delete run folders; a finished result only with --force.
    Rm {
        #[command(flatten)]
        args: ControlArgs,
        /// Also delete runs that finished with a result (their result leaves the leaderboard).
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct ControlArgs {
    /// Run ids (or unique prefixes).
    pub ids: Vec<String>,
    /// Print each run's outcome and state afterwards as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl RunControl {
    fn parts(&self) -> (&'static str, &ControlArgs, &'static str) {
        match self {
            RunControl::Stop(a) => ("stop", a, "stopping"),
            RunControl::Kill(a) => ("kill", a, "killed"),
            RunControl::Resume(a) => ("resume", a, "queued"),
            RunControl::Restart(a) => ("restart", a, "queued from scratch"),
            RunControl::Rm { args, .. } => ("rm", args, "removed"),
        }
    }
}

pub fn run_control(ctx: &crate::home::Ctx, cmd: RunControl) -> Result<i32> {
    let (verb, args, done) = cmd.parts();
    if args.ids.is_empty() {
        anyhow::bail!("no run id given");
    }
    socket::ensure_agent(&ctx.home)?;
    let mut runs = Vec::new();
    for id in &args.ids {
        let (outcome, error) = match socket::request_ok(&ctx.home, &request_for(&cmd, id)) {
            Ok(_) => {
                eprintln!("{id}: {done}");
                (Some(done.to_string()), None)
            }
            Err(e) => {
                let why = crate::error::one_sentence(&e);
                eprintln!("medxfer: {why}");
                (None, Some(why))
            }
        };
        // a removed run has no state, even when its id was a prefix that now matches another run
        let removed = verb == "rm" && error.is_none();
        let state = if removed { None } else { store::find_run(&ctx.home.runs, id).ok().and_then(|run| run.state()) };
        runs.push(ControlOutcome { id: id.clone(), ok: error.is_none(), outcome, error, state });
    }
    let code = if runs.iter().all(|r| r.ok) { 0 } else { 1 };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ControlReport { verb: verb.into(), runs })?);
    }
    Ok(code)
}

fn request_for(cmd: &RunControl, id: &str) -> Request {
    let run = id.to_string();
    match cmd {
        RunControl::Stop(_) => Request::Stop { run },
        RunControl::Kill(_) => Request::Kill { run },
        RunControl::Resume(_) => Request::Requeue { run },
        RunControl::Restart(_) => Request::Restart { run },
        RunControl::Rm { force, .. } => Request::Rm { run, force: *force },
    }
}
