//! The command line: one subcommand per capability; no subcommand opens the TUI.
//! Listings print JSON on stdout with `--json`; messages go to stderr; failures exit non-zero
//! with one sentence naming what is at fault.
//!
//! Two binaries share this parser: `medxfer` (`main`) runs every command that needs no tensor and never
//! loads libtorch; for the others it execs `medxfer-torch` (`main_torch`), see `crate::torch_bin`.

mod agent;
mod bench;
mod ckpt;
mod data;
mod doctor;
mod eval;
mod folders;
mod model;
mod queue;
mod results;
mod runs;
mod sweep;
mod train;
mod tui;
mod zoo;

use crate::home::Home;
use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "medxfer",
    version,
    about = "Transfer-learning benchmarks for medical imaging: model zoo, fine-tuning runs, leaderboard"
)]
pub struct Cli {
    /// Also log to stderr (-vv for debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check libtorch, CUDA, GPUs, paths and disk; say how to fix what is missing.
    Doctor(doctor::Args),
    /// Inspect runs in the home.
    Runs(runs::Args),
    /// The leaderboard of one dataset: mean ± std over trials, CI, p-values vs a baseline, exports.
    Results(results::Args),
    /// Inspect PyTorch checkpoints safely and convert them to torchvision-named safetensors.
    Ckpt(ckpt::Args),
    /// The model zoo: list, download, verify and import pre-trained checkpoints.
    Zoo(zoo::Args),
    /// Expand datasets × models × trials into queued runs and hand them to the agent.
    Sweep(sweep::Args),
    /// The background agent that owns the run queue (foreground without a subcommand).
    Agent(agent::Args),
    /// Pause or resume launching queued runs.
    Queue(queue::QueueArgs),
    /// Run (or resume) one fine-tune in a run folder holding spec.toml.
    Train(train::Args),
    /// Score a finished run's best weights (or a converted zoo model) on a dataset's test split, as training does.
    Eval(eval::Args),
    /// Run the networks: `model eval` checks a conversion against a reference.
    Model(model::Args),
    /// Datasets: write the demo datasets, check a dataset's images and split lists.
    Data(data::Args),
    /// Throughput probes used by `make bench`.
    #[command(hide = true)]
    Bench(bench::Args),
    /// Open the terminal UI (the default with no subcommand).
    Tui(tui::Args),
    /// libtorch's version, folder, threads and CUDA as JSON, for `doctor` (answered by medxfer-torch).
    #[command(hide = true)]
    TorchProbe,
}

impl Command {
    /// The command's name when it needs libtorch (and so runs in medxfer-torch).
    fn needs_libtorch(&self) -> Option<&'static str> {
        match self {
            Command::Train(_) => Some("train"),
            Command::Eval(_) => Some("eval"),
            Command::Model(_) => Some("model"),
            Command::Bench(_) => Some("bench"),
            Command::TorchProbe => Some("torch-probe"),
            _ => None,
        }
    }
}

/// The front binary `medxfer`: runs the CLI without libtorch and returns the process exit status.
pub fn main() -> i32 {
    start(|cli| match cli.command.as_ref().and_then(Command::needs_libtorch) {
        Some(name) => crate::torch_bin::exec(name),
        None => run(cli),
    })
}

/// The sibling binary `medxfer-torch`: every command, libtorch linked.
pub fn main_torch() -> i32 {
    start(|cli| match cli.command {
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Model(args)) => model::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::TorchProbe) => {
            println!("{}", serde_json::to_string(&crate::torch_runtime::probe())?);
            Ok(0)
        }
        _ => run(cli),
    })
}

fn start(dispatch: impl FnOnce(Cli) -> Result<i32>) -> i32 {
    let cli = Cli::parse();
    let logs = Home::from_env().map(|h| h.logs).unwrap_or_else(|_| std::env::temp_dir());
    let _guard = crate::logging::init(&logs, cli.verbose);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("medxfer: {}", crate::error::one_sentence(&e));
            1
        }
    }
}

/// The commands that need no tensor.
fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Some(Command::Doctor(args)) => doctor::run(args),
        Some(Command::Runs(args)) => runs::run(args),
        Some(Command::Results(args)) => results::run(args),
        Some(Command::Ckpt(args)) => ckpt::run(args),
        Some(Command::Zoo(args)) => zoo::run(args),
        Some(Command::Sweep(args)) => sweep::run(args),
        Some(Command::Agent(args)) => agent::run(args),
        Some(Command::Queue(args)) => queue::run_queue(args),
        Some(Command::Data(args)) => data::run(args),
        Some(Command::Tui(args)) => tui::run(args),
        None => tui::run(tui::Args {}),
        Some(command) => {
            anyhow::bail!(
                "`medxfer {}` needs libtorch and runs in medxfer-torch",
                command.needs_libtorch().unwrap_or("?")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is in `--help`.
    #[test]
    fn every_argument_of_every_command_has_help_text() {
        fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version") {
                    found.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                undocumented(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        undocumented(&Cli::command(), "medxfer", &mut found);
        assert!(found.is_empty(), "arguments without help text: {found:#?}");
    }
}
