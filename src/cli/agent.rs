//! `medxfer agent [start|status|stop]`: the queue's owner in the foreground, or detached control of it.

use crate::sched::socket::{self, Request};
use anyhow::Result;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

#[derive(clap::Subcommand, Debug)]
pub enum AgentCommand {
    /// Start the agent detached (own session, output to <home>/agent/agent.log) unless one runs.
    Start,
    /// Is the agent running; what runs and what waits.
    Status {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stop the agent; runs keep going and the next agent re-adopts them.
    Stop,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    match args.command {
        None => {
            crate::sched::agent::run(ctx.home, &ctx.config)?;
            Ok(0)
        }
        Some(AgentCommand::Start) => {
            let started = socket::ensure_agent(&ctx.home)?;
            let pid = socket::request_ok(&ctx.home, &Request::Status)?.status.map(|s| s.pid).unwrap_or(0);
            eprintln!("agent {} (pid {pid})", if started { "started" } else { "already running" });
            Ok(0)
        }
        Some(AgentCommand::Status { json }) => {
            let status = socket::request(&ctx.home, &Request::Status).ok().and_then(|r| r.status);
            if json {
                let report = socket::StatusReport { running: status.is_some(), agent: status };
                println!("{}", serde_json::to_string_pretty(&report)?);
                return Ok(0);
            }
            match status {
                None => println!("agent: not running for {}", ctx.home.root.display()),
                Some(s) => {
                    let paused = if s.paused { ", queue paused" } else { "" };
                    println!("agent: pid {}{paused}; {} running, {} queued", s.pid, s.running.len(), s.queued.len());
                    for r in &s.running {
                        println!("  running {} (pid {}, {:?})", r.id, r.pid, r.slot);
                    }
                }
            }
            Ok(0)
        }
        Some(AgentCommand::Stop) => {
            if !socket::agent_answers(&ctx.home) {
                eprintln!("no agent is running for {}", ctx.home.root.display());
                return Ok(0);
            }
            socket::request_ok(&ctx.home, &Request::Shutdown)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while socket::agent_answers(&ctx.home) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!("agent stopped; running runs go on and the next agent re-adopts them");
            Ok(0)
        }
    }
}
