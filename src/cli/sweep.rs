//! `medxfer sweep`: plan a benchmark sweep, write the missing runs as queued folders, tell the agent,
//! and with `--wait` block until every run of the sweep has ended.

use super::folders::DatasetFolders;
use crate::runs::record::{State, Status};
use crate::sched::socket::{self, Request};
use crate::sched::sweep::{self, PlanSummary, PlannedRun, SweepRequest};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset name (dataset/<name>.toml, demo-cls, demo-seg).
    #[arg(long)]
    pub dataset: String,
    /// Comma-separated zoo ids, "random", .safetensors files, or "all" (the 21 benchmark models).
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Trials per model; trial N gets seed N unless --set seed=...
    #[arg(long, default_value_t = 1)]
    pub trials: u32,
    /// Percent of training labels, comma-separated (e.g. 10,50,100).
    #[arg(long, value_delimiter = ',')]
    pub anno_percent: Vec<u32>,
    /// Override a setting: epochs, batch_size, lr, patience, image_size, workers, device, precision, seed...
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// local or slurm (default: config's scheduler.executor).
    #[arg(long)]
    pub executor: Option<String>,
    #[command(flatten)]
    pub folders: DatasetFolders,
    /// Print the plan and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Block until every run of the sweep has ended; exit 1 unless all finished.
    #[arg(long)]
    pub wait: bool,
    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The sweep these arguments ask for (`SweepRequest::args` gives them back); the executor stays None
    /// without `--executor` and the default device empty: `run` fills both in from the config and the machine.
    pub fn request(&self) -> Result<SweepRequest> {
        Ok(SweepRequest {
            dataset: self.dataset.clone(),
            models: self.models.clone(),
            trials: self.trials,
            anno_percents: self.anno_percent.clone(),
            overrides: self.set.iter().map(|kv| sweep::parse_override(kv)).collect::<Result<Vec<_>>>()?,
            executor: self.executor.clone(),
            root: self.folders.root.clone(),
            train_list: self.folders.train_list.clone(),
            val_list: self.folders.val_list.clone(),
            test_list: self.folders.test_list.clone(),
            default_device: String::new(),
        })
    }
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    let executor = args.executor.clone().unwrap_or_else(|| ctx.config.scheduler.executor.clone());
    match executor.as_str() {
        "local" | "slurm" => {}
        other => bail!("--executor {other:?}: expected local or slurm"),
    }
    let mut req = args.request()?;
    req.executor = Some(executor.clone());
    ctx.config.dataset_paths(&req.dataset).fill(
        &mut req.root,
        &mut req.train_list,
        &mut req.val_list,
        &mut req.test_list,
    );
    // A Slurm run gets its GPU from the job's --gres; a local one from this machine's GPUs.
    let local_gpus = (executor == "local").then(|| crate::gpu::nvml_gpus().len() as u32);
    let has_gpu = match local_gpus {
        None => ctx.config.slurm.gpus_per_job > 0,
        Some(count) => count > 0,
    };
    req.default_device = if has_gpu { "cuda" } else { "cpu" }.into();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let stamp = crate::runs::record::format_compact(now);
    let mut plan = sweep::plan(&req, &ctx.home.runs, &stamp, &ctx.home.zoo_cache())?;
    if let Some(count) = local_gpus {
        sweep::check_local_devices(&plan, count)?;
    }
    let written = if args.dry_run { Vec::new() } else { sweep::write_new(&mut plan, &ctx.home.runs)? };
    let summary = PlanSummary::of(&plan).estimated(crate::sched::estimate::for_plan(&plan, &ctx.home));
    print_plan(&plan, &summary, args.json, args.dry_run)?;
    if args.dry_run {
        return Ok(0);
    }
    if !written.is_empty() || args.wait {
        socket::ensure_agent(&ctx.home)?;
        socket::request_ok(&ctx.home, &Request::EnqueueNotify)?;
    }
    if !args.wait {
        return Ok(0);
    }
    let ids: Vec<String> = plan.iter().map(|p| p.existing.as_ref().map_or(&p.spec.id, |e| &e.0).clone()).collect();
    wait_for(&ctx.home, &ids)
}

fn print_plan(plan: &[PlannedRun], summary: &PlanSummary, json: bool, dry_run: bool) -> Result<()> {
    let new = plan.iter().filter(|p| p.existing.is_none()).count();
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(());
    }
    let verb = if dry_run { "would queue" } else { "queued" };
    println!("sweep: {} runs, {new} {verb}, {} already exist", plan.len(), plan.len() - new);
    for p in plan {
        match &p.existing {
            Some((id, state)) => println!("  exists  {id} ({state})"),
            None => println!("  new     {}", p.spec.id),
        }
    }
    if new > 0
        && let Some(time) = summary.time_text()
    {
        println!("{time}");
    }
    Ok(())
}

/// Polls the runs' status files until each has ended; restarts the agent if it goes away meanwhile.
fn wait_for(home: &crate::home::Home, ids: &[String]) -> Result<i32> {
    let mut last_agent_check = Instant::now();
    loop {
        let states = ids.iter().map(|id| state_of(&home.runs.join(id))).collect::<Result<Vec<_>>>()?;
        if states.iter().all(|s| s.is_terminal() || *s == State::Stopped) {
            let failed: Vec<&String> =
                ids.iter().zip(&states).filter(|(_, s)| **s != State::Finished).map(|(id, _)| id).collect();
            eprintln!("sweep ended: {} finished, {} not", ids.len() - failed.len(), failed.len());
            for id in &failed {
                eprintln!("  not finished: {id}");
            }
            return Ok(if failed.is_empty() { 0 } else { 1 });
        }
        if last_agent_check.elapsed() > Duration::from_secs(5) {
            socket::ensure_agent(home)?;
            last_agent_check = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn state_of(dir: &Path) -> Result<State> {
    Status::load(dir).map(|s| s.state).with_context(|| format!("run {} vanished while waiting", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use crate::sched::sweep::SweepRequest;
    use clap::Parser;

    fn parsed(args: &[String]) -> super::Args {
        match Cli::try_parse_from(std::iter::once("medxfer".to_string()).chain(args.iter().cloned())) {
            Ok(Cli { command: Some(Command::Sweep(args)), .. }) => args,
            other => panic!("{args:?} is not a sweep command line: {other:?}"),
        }
    }

    /// `SweepRequest::args` is the one way a request becomes a command line: clap reads back the very request.
    #[test]
    fn a_request_survives_its_command_line() {
        let full = SweepRequest {
            dataset: "chestxray14".into(),
            models: vec!["imagenet".into(), "random".into(), "/w/my model.safetensors".into()],
            trials: 3,
            anno_percents: vec![10, 50],
            overrides: vec![("epochs".into(), "3".into()), ("lr".into(), "1e-3".into())],
            executor: Some("slurm".into()),
            root: Some("/data/cxr 14".into()),
            train_list: Some("/l/train.txt".into()),
            val_list: Some("/l/val.txt".into()),
            test_list: Some("/l/test.txt".into()),
            default_device: String::new(),
        };
        let least =
            SweepRequest { dataset: "demo-cls".into(), models: vec!["random".into()], trials: 1, ..full.clone() };
        let least = SweepRequest {
            anno_percents: Vec::new(),
            overrides: Vec::new(),
            executor: None,
            root: None,
            train_list: None,
            val_list: None,
            test_list: None,
            ..least
        };
        for request in [full, least] {
            let args = parsed(&request.args());
            assert!(!args.json && !args.dry_run && !args.wait);
            assert_eq!(args.request().unwrap(), request);
        }
    }
}
