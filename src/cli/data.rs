//! `medxfer data`: demo (write the synthetic datasets), check (validate a dataset's root and split lists),
//! split (ChestX-ray14 lists from the NIH files), cache (build the decoded-image cache), prepare (masks from a
//! publisher's annotations: SIIM-ACR's RLE CSV).

use super::folders::DatasetFolders;
use crate::data::{self, DatasetSpec, check};
use crate::home::Ctx;
use anyhow::Result;
use clap::{Args as ClapArgs, Subcommand};
use std::path::{Path, PathBuf};

#[derive(ClapArgs, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write the synthetic demo datasets (DIR/demo-cls, DIR/demo-seg).
    Demo {
        /// The folder the two datasets are written into.
        dir: PathBuf,
    },
    /// Check a dataset: missing or unreadable images, label counts, shared patients, prevalence per split.
    Check(CheckArgs),
    /// Build the study-format split lists of a dataset from its publisher's files (chestxray14).
    Split(SplitArgs),
    /// Decode and resize every image of a dataset once into the home's image cache (val/test: N×N; train:
    /// shorter side 2N), re-decoding only sources changed since the last build. Loaders use it automatically.
    Cache(CacheArgs),
    /// Write a dataset's masks from its publisher's annotations: `siim CSV OUT` turns the Kaggle SIIM-ACR RLE CSV
    /// (ImageId,EncodedPixels) into OUT/<ImageId>.png, 1024x1024, 0/255; rows of one image are united.
    Prepare(PrepareArgs),
}

#[derive(ClapArgs, Debug)]
pub struct PrepareArgs {
    /// Whose annotations: siim (the SIIM-ACR pneumothorax RLE CSV).
    pub what: PrepareWhat,
    /// The annotation file (siim: the RLE CSV, e.g. train-rle.csv).
    pub input: PathBuf,
    /// The folder the masks are written to (created when missing).
    pub out: PathBuf,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PrepareWhat {
    Siim,
}

/// Which dataset, where it lives, and list files that replace its spec's.
#[derive(ClapArgs, Debug)]
pub struct DatasetArgs {
    /// A built-in dataset name or a spec .toml.
    pub dataset: String,
    #[command(flatten)]
    pub folders: DatasetFolders,
}

#[derive(ClapArgs, Debug)]
pub struct CacheArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// The val/test working size N: the Resize before the center crop for classification (default 256, for
    /// image_size 224), the model input for segmentation (default 224). A classification train cache gets a
    /// shorter side of 2N; segmentation uses the N×N file in every mode.
    #[arg(long)]
    pub size: Option<usize>,
    /// Decoding threads (default: every core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Print the build reports as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(ClapArgs, Debug)]
pub struct SplitArgs {
    /// chestxray14 (train/val/test from the NIH files) or chexpert (train/val from train.csv).
    pub dataset: String,
    /// chestxray14: folder with Data_Entry_2017.csv, train_val_list.txt and test_list.txt.
    #[arg(long)]
    pub nih_dir: Option<PathBuf>,
    /// chexpert: the training CSV to split by patient (e.g. ROOT/CheXpert-v1.0-small/train.csv).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Where to write the lists, named medxfer_split_{train,val,test}.* (default: the input's folder).
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
    #[command(flatten)]
    pub data: DatasetArgs,
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
        DataCommand::Cache(args) => run_cache(args),
        DataCommand::Prepare(args) => run_prepare(args),
    }
}

fn run_prepare(args: PrepareArgs) -> Result<i32> {
    let PrepareWhat::Siim = args.what;
    let report = data::prepare::siim_masks(&args.input, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    eprintln!(
        "wrote {} masks ({} with pneumothorax) from {} rows of {} into {}",
        report.masks,
        report.positive,
        report.rows,
        args.input.display(),
        args.out.display()
    );
    Ok(0)
}

fn run_check(args: CheckArgs) -> Result<i32> {
    let ctx = Ctx::load()?;
    let folders = args.data.folders.or_remembered(&ctx.config, &args.data.dataset);
    let spec = DatasetSpec::load(&args.data.dataset)?;
    let root = match &folders.root {
        Some(root) => root.clone(),
        None => data::dataset_root(&spec, None, &ctx.home)?,
    };
    let lists = [
        spec.list_for(&root, "train", folders.train_list.as_deref())?,
        spec.list_for(&root, "val", folders.val_list.as_deref())?,
        spec.list_for(&root, "test", folders.test_list.as_deref())?,
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
        let counts: Vec<String> = report.counts.iter().map(|(kind, n)| format!("{n} {}", kind.name())).collect();
        eprintln!("{}: {} problem(s) found ({})", spec.name, report.errors.len(), counts.join(", "));
        Ok(1)
    }
}

fn run_split(args: SplitArgs) -> Result<i32> {
    if !(0.0..1.0).contains(&args.val_fraction) {
        anyhow::bail!("--val-fraction {} is not in [0, 1)", args.val_fraction);
    }
    let (lists, names, input): (Vec<String>, _, PathBuf) = match (args.dataset.as_str(), args.nih_dir, args.csv) {
        ("chestxray14", Some(nih_dir), _) => {
            let spec = DatasetSpec::load("chestxray14")?;
            let lists = data::split::chestxray14_lists(&nih_dir, &spec.labels, args.val_fraction, args.seed)?;
            (lists.to_vec(), data::split::output_names("txt"), nih_dir)
        }
        ("chexpert", _, Some(csv)) => {
            let lists = data::split::chexpert_lists(&csv, args.val_fraction, args.seed)?;
            let folder = csv.parent().map(Path::to_path_buf).unwrap_or_default();
            (lists.to_vec(), data::split::output_names("csv"), folder)
        }
        ("chestxray14", None, _) => anyhow::bail!("data split chestxray14 needs --nih-dir DIR (the NIH's files)"),
        ("chexpert", _, None) => anyhow::bail!("data split chexpert needs --csv FILE (CheXpert's train.csv)"),
        (other, _, _) => anyhow::bail!("data split knows chestxray14 and chexpert, not `{other}`"),
    };
    let out = args.out.unwrap_or(input);
    std::fs::create_dir_all(&out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    for (name, text) in names.iter().zip(&lists) {
        let path = out.join(name);
        crate::atomic::write(&path, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {} ({} images)", path.display(), text.lines().count());
    }
    Ok(0)
}

fn run_cache(args: CacheArgs) -> Result<i32> {
    use crate::data::cache::{self, Resize};
    let ctx = Ctx::load()?;
    let folders = args.data.folders.or_remembered(&ctx.config, &args.data.dataset);
    let home = ctx.home;
    let spec = crate::runs::record::DataSpec {
        root: folders.root,
        train_list: folders.train_list,
        val_list: folders.val_list,
        test_list: folders.test_list,
        ..Default::default()
    };
    let splits = data::resolve(&args.data.dataset, &spec, &home, 0)?;
    let size = args.size.unwrap_or_else(|| Resize::square_size(splits.task, spec.image_size as usize));
    if !(16..=8192).contains(&size) {
        anyhow::bail!("--size {size} is not in 16..=8192");
    }
    let sources = splits.all_sources();
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let mut reports = Vec::new();
    for resize in Resize::all_for(splits.task, size) {
        let bar = indicatif::ProgressBar::new(sources.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_message(resize.file_name());
        let report = cache::build(&splits.cache_dir, &splits.spec.name, &sources, resize, workers, &|done, _| {
            bar.set_position(done as u64)
        })?;
        bar.finish_and_clear();
        eprintln!(
            "wrote {} ({} images: {} reused, {} decoded; {:.1} MiB in {:.1} s)",
            report.file.display(),
            report.images,
            report.reused,
            report.decoded,
            report.bytes as f64 / (1 << 20) as f64,
            report.seconds
        );
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(0)
}
