//! `medxfer queue pause|resume` and the run controls `runs stop|kill|resume|restart|rm ID...`,
//! all sent to the agent (started when not running) so that it alone changes the queue.

use crate::sched::socket::{self, Request};
use anyhow::Result;

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub command: QueueCommand,
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
    Ok(0)
}

/// Run controls; a `runs` command group can embed these with `#[command(flatten)]`.
#[derive(clap::Subcommand, Debug)]
pub enum RunControl {
    /// Stop runs (SIGTERM; queued runs just leave the queue). `runs resume` continues them.
    Stop { ids: Vec<String> },
    /// Kill runs at once (SIGKILL to the run's whole session).
    Kill { ids: Vec<String> },
    /// Queue stopped or failed runs again; they resume from last.ckpt.
    Resume { ids: Vec<String> },
    /// Queue runs again from scratch (drops their metrics, checkpoints and result).
    Restart { ids: Vec<String> },
    /// Delete run folders; a finished result only with --force.
    Rm {
        ids: Vec<String>,
        #[arg(long)]
        force: bool,
    },
}

pub fn run_control(ctx: &crate::home::Ctx, cmd: RunControl) -> Result<i32> {
    let (ids, verb) = match &cmd {
        RunControl::Stop { ids } => (ids, "stopping"),
        RunControl::Kill { ids } => (ids, "killed"),
        RunControl::Resume { ids } => (ids, "queued"),
        RunControl::Restart { ids } => (ids, "queued from scratch"),
        RunControl::Rm { ids, .. } => (ids, "removed"),
    };
    if ids.is_empty() {
        anyhow::bail!("no run id given");
    }
    socket::ensure_agent(&ctx.home)?;
    let mut code = 0;
    for id in ids {
        match socket::request_ok(&ctx.home, &request_for(&cmd, id)) {
            Ok(_) => eprintln!("{id}: {verb}"),
            Err(e) => {
                eprintln!("medxfer: {}", crate::error::one_sentence(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

fn request_for(cmd: &RunControl, id: &str) -> Request {
    let run = id.to_string();
    match cmd {
        RunControl::Stop { .. } => Request::Stop { run },
        RunControl::Kill { .. } => Request::Kill { run },
        RunControl::Resume { .. } => Request::Requeue { run },
        RunControl::Restart { .. } => Request::Restart { run },
        RunControl::Rm { force, .. } => Request::Rm { run, force: *force },
    }
}
