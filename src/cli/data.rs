//! `medxfer data`: demo (write the synthetic datasets), check (validate a dataset's root and split lists).

use crate::cli::Ctx;
use crate::data::{self, DatasetSpec, check};
use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use std::path::PathBuf;

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write the synthetic demo datasets (DIR/demo-cls, DIR/demo-seg).
    Demo { dir: PathBuf },
    /// Check a dataset: missing or unreadable images, label counts, shared patients, prevalence per split.
    Check(CheckArgs),
    /// Build the study-format split lists of a dataset from its publisher's files (chestxray14).
    Split(SplitArgs),
}

#[derive(ClapArgs, Debug)]
pub struct SplitArgs {
    /// Only chestxray14 for now.
    pub dataset: String,
    /// Folder with Data_Entry_2017.csv, train_val_list.txt and test_list.txt.
    #[arg(long)]
    pub nih_dir: PathBuf,
    /// Where to write the three lists (default: the NIH folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fraction of train_val patients moved to validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Seed of the patient shuffle (Python's random.Random(seed)).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(ClapArgs, Debug)]
pub struct CheckArgs {
    /// A built-in dataset name or a spec .toml.
    pub dataset: String,
    /// Folder the dataset lives in (default for demo-cls / demo-seg: the home's generated copy).
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub train_list: Option<PathBuf>,
    #[arg(long)]
    pub val_list: Option<PathBuf>,
    #[arg(long)]
    pub test_list: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<i32> {
    match args.command {
        DataCommand::Demo { dir } => {
            let (cls, seg) = data::demo::write(&dir)?;
            eprintln!("wrote {} and {}", cls.display(), seg.display());
            Ok(0)
        }
        DataCommand::Check(args) => run_check(args),
        DataCommand::Split(args) => run_split(args),
    }
}

fn run_check(args: CheckArgs) -> Result<i32> {
    let spec = DatasetSpec::load(&args.dataset)?;
    let root = match &args.root {
        Some(root) => root.clone(),
        None => data::dataset_root(&spec, None, &Ctx::load()?.home)?,
    };
    let pick = |given: &Option<PathBuf>, default: &str| given.clone().unwrap_or_else(|| root.join(default));
    let lists = [
        pick(&args.train_list, &spec.lists.train),
        pick(&args.val_list, &spec.lists.val),
        pick(&args.test_list, &spec.lists.test),
    ];
    let report = check::check(&spec, &root, &lists);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for split in &report.splits {
            let prevalence: Vec<String> =
                split.prevalence.iter().map(|(label, p)| format!("{label} {:.1}%", p * 100.0)).collect();
            println!(
                "{:<5} {:>7} items  {}  {}",
                split.split,
                split.items,
                split.list.display(),
                prevalence.join(", ")
            );
            if let Some(pattern) = split.mask_pattern {
                println!("      masks matched by pattern `{pattern}`");
            }
        }
    }
    for error in &report.errors {
        eprintln!("error: {error}");
    }
    if report.errors.is_empty() {
        eprintln!("{}: no problems found", spec.name);
        Ok(0)
    } else {
        eprintln!("{}: {} problem(s) found", spec.name, report.errors.len());
        Ok(1)
    }
}

fn run_split(args: SplitArgs) -> Result<i32> {
    if args.dataset != "chestxray14" {
        anyhow::bail!("data split knows only chestxray14, not `{}`", args.dataset);
    }
    if !(0.0..1.0).contains(&args.val_fraction) {
        anyhow::bail!("--val-fraction {} is not in [0, 1)", args.val_fraction);
    }
    let spec = DatasetSpec::load("chestxray14")?;
    let lists = data::split::chestxray14_lists(&args.nih_dir, &spec.labels, args.val_fraction, args.seed)?;
    let out = args.out.unwrap_or(args.nih_dir);
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    for (name, text) in [&spec.lists.train, &spec.lists.val, &spec.lists.test].into_iter().zip(&lists) {
        let path = out.join(name);
        crate::atomic::write(&path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {} ({} images)", path.display(), text.lines().count());
    }
    Ok(0)
}
