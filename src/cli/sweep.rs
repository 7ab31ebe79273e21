//! `medxfer sweep`: plan a benchmark sweep, write the missing runs as queued folders, tell the agent,
//! and with `--wait` block until every run of the sweep has ended.

use crate::runs::record::{State, Status};
use crate::sched::socket::{self, Request};
use crate::sched::sweep::{self, PlannedRun, SweepRequest};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
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
    /// Folder the split lists' image paths are relative to.
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub train_list: Option<PathBuf>,
    #[arg(long)]
    pub val_list: Option<PathBuf>,
    #[arg(long)]
    pub test_list: Option<PathBuf>,
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

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    let executor = args.executor.clone().unwrap_or_else(|| ctx.config.scheduler.executor.clone());
    match executor.as_str() {
        "local" | "slurm" => {}
        other => bail!("--executor {other:?}: expected local or slurm"),
    }
    let overrides = args.set.iter().map(|kv| sweep::parse_override(kv)).collect::<Result<Vec<_>>>()?;
    // A Slurm run gets its GPU from the job's --gres; a local one from this machine's GPUs.
    let has_gpu = match executor.as_str() {
        "slurm" => ctx.config.slurm.gpus_per_job > 0,
        _ => !crate::gpu::nvml_gpus().is_empty(),
    };
    let default_device = if has_gpu { "cuda" } else { "cpu" };
    let req = SweepRequest {
        dataset: args.dataset.clone(),
        models: args.models.clone(),
        trials: args.trials,
        anno_percents: args.anno_percent.clone(),
        overrides,
        executor,
        root: args.root.clone(),
        train_list: args.train_list.clone(),
        val_list: args.val_list.clone(),
        test_list: args.test_list.clone(),
        default_device: default_device.into(),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let stamp = crate::runs::record::format_compact(now);
    let mut plan = sweep::plan(&req, &ctx.home.runs, &stamp, &ctx.home.zoo_cache())?;
    let written = if args.dry_run { Vec::new() } else { sweep::write_new(&mut plan, &ctx.home.runs)? };
    print_plan(&plan, args.json, args.dry_run)?;
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

fn print_plan(plan: &[PlannedRun], json: bool, dry_run: bool) -> Result<()> {
    let new = plan.iter().filter(|p| p.existing.is_none()).count();
    if json {
        let runs: Vec<_> = plan
            .iter()
            .map(|p| match &p.existing {
                Some((id, state)) => serde_json::json!({"id": id, "new": false, "state": state}),
                None => serde_json::json!({"id": p.spec.id, "new": true, "state": "queued"}),
            })
            .collect();
        let v = serde_json::json!({"count": plan.len(), "new": new, "existing": plan.len() - new, "runs": runs});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let verb = if dry_run { "would queue" } else { "queued" };
    println!("sweep: {} runs, {new} {verb}, {} already exist", plan.len(), plan.len() - new);
    for p in plan {
        match &p.existing {
            Some((id, state)) => println!("  exists  {id} ({})", crate::sched::control::state_name(*state)),
            None => println!("  new     {}", p.spec.id),
        }
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
