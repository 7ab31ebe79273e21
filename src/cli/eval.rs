//! `medxfer eval`: a finished run's best weights, or a converted zoo model, on a dataset's test split, scored
//! exactly as the trainer's test phase (see crate::train::eval).

use crate::home::Ctx;
use crate::train::eval::{EvalRequest, evaluate};
use anyhow::Result;
use clap::Args as ClapArgs;
use std::path::{Path, PathBuf};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// A run id (or unique prefix) or run folder: its best.safetensors on its own dataset (or --dataset, same task).
    #[arg(long, conflicts_with = "init")]
    pub run: Option<String>,
    /// A converted zoo model (id) or a .safetensors file, head or decoder drawn from seed 1; needs --dataset.
    #[arg(long)]
    pub init: Option<String>,
    /// The dataset whose test split is scored (default: the run's).
    #[arg(long)]
    pub dataset: Option<String>,
    /// Folder the dataset lives in (default: the run's own; with --init or another --dataset, root under
    /// [datasets.NAME] in config.toml).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Test split list replacing the run's or the dataset spec's (default as --root: test_list under
    /// [datasets.NAME]).
    #[arg(long, value_name = "PATH")]
    pub test_list: Option<PathBuf>,
    /// cpu | cuda | cuda:N (default: the run's device, or cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// KEY=VALUE: a setting of the test phase, as `sweep --set` (e.g. image_size=64, threads=2); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = Ctx::load()?;
    let run = match args.run {
        Some(r) if Path::new(&r).is_dir() => Some(PathBuf::from(r)),
        Some(id) => Some(crate::runs::store::find_run(&ctx.home.runs, &id)?.dir),
        None => None,
    };
    let remembered = args.dataset.as_ref().map(|d| ctx.config.dataset_paths(d)).unwrap_or_default();
    let req = EvalRequest {
        run,
        init: args.init,
        dataset: args.dataset,
        root: args.root,
        test_list: args.test_list,
        remembered,
        device: args.device,
        overrides: args.set.iter().map(|kv| crate::sched::sweep::parse_override(kv)).collect::<Result<_>>()?,
    };
    let outcome = evaluate(&req, &ctx.home)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.result)?);
    }
    let r = &outcome.result;
    eprintln!("{} on {} test: {} {:.5}; wrote {}", r.init, r.dataset, r.metric, r.mean, outcome.file.display());
    Ok(0)
}
