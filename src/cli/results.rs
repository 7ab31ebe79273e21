//! `medxfer results --dataset D`: the leaderboard of one dataset as a table, CSV, Markdown, LaTeX or JSON.

use crate::runs::leaderboard::{self, Options};
use crate::runs::stats::StdKind;
use crate::runs::{export, store};
use anyhow::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Md,
    Latex,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dataset name as in the runs' result.json (e.g. chestxray14, demo-cls).
    #[arg(long)]
    pub dataset: String,
    /// The init every other init is tested against (Welch's t-test).
    #[arg(long, default_value = leaderboard::DEFAULT_BASELINE)]
    pub baseline: String,
    /// population = numpy's default, ddof 0 (the study's); sample = ddof 1.
    #[arg(long, value_enum, default_value = "population")]
    pub std: StdKind,
    /// Also show the study's published numbers (reference rows, never ranked).
    #[arg(long)]
    pub published: bool,
    /// Also show per-class tables (table format).
    #[arg(long)]
    pub per_class: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = super::Ctx::load()?;
    let (results, warnings) = store::load_results(&ctx.home.runs);
    for w in &warnings {
        eprintln!("medxfer: warning: {w}");
    }
    let opts = Options { baseline: args.baseline, std_kind: args.std, published: args.published };
    let lb = leaderboard::build(&results, &args.dataset, &opts)?;
    if lb.groups.is_empty() && args.format != Format::Json {
        eprintln!("medxfer: no results for dataset {:?} under {}", args.dataset, ctx.home.runs.display());
    }
    let text = match args.format {
        Format::Table => export::table(&lb, args.per_class),
        Format::Csv => export::csv(&lb),
        Format::Md => export::markdown(&lb),
        Format::Latex => export::latex(&lb),
        Format::Json => serde_json::to_string_pretty(&lb)? + "\n",
    };
    print!("{text}");
    Ok(0)
}
