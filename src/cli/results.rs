//! `medxfer results --dataset D`: the leaderboard of one dataset as a table, CSV, Markdown, LaTeX or JSON,
//! or drawn as a figure (`--plot FILE.svg|FILE.png --kind bars|label-efficiency|curves`).

use crate::plot::{self, Figure, figure};
use crate::runs::leaderboard::{self, Leaderboard, Options};
use crate::runs::stats::StdKind;
use crate::runs::{export, store};
use anyhow::Result;
use std::path::{Path, PathBuf};

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
    /// How the leaderboard is printed: table, csv, md (Markdown), latex or json.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Draw a figure into FILE.svg or FILE.png instead of printing the leaderboard.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Which figure --plot draws.
    #[arg(long, value_enum, default_value = "bars", requires = "plot")]
    pub kind: Kind,
    /// What the whiskers (bars) and bands (label-efficiency) span.
    #[arg(long, value_enum, default_value = "std", requires = "plot")]
    pub spread: figure::Spread,
    /// Print each model's p-value against the baseline beside its bar.
    #[arg(long, requires = "plot")]
    pub p_values: bool,
    /// The anno % whose ranking the bars show (default: the largest).
    #[arg(long, requires = "plot")]
    pub anno_percent: Option<u32>,
    /// Runs whose curves are drawn (ids or unique prefixes, comma-separated; default: every run of the dataset).
    #[arg(long, value_delimiter = ',', requires = "plot")]
    pub runs: Vec<String>,
    /// Curves: one file per run, FILE's stem followed by -<run id>.
    #[arg(long, requires = "plot")]
    pub per_run: bool,
    /// Also write the numbers drawn, as JSON, to this file.
    #[arg(long, value_name = "FILE.json", requires = "plot")]
    pub plot_data: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Mean ± spread per model, grouped by category, the baseline's mean as a line, significance marks.
    Bars,
    /// The metric against anno % per model, with the spread over trials as a band.
    LabelEfficiency,
    /// Train and validation loss against epoch per run.
    Curves,
}

pub fn run(args: Args) -> Result<i32> {
    let ctx = crate::home::Ctx::load()?;
    let (results, warnings) = store::load_results(&ctx.home.runs);
    for w in &warnings {
        eprintln!("medxfer: warning: {w}");
    }
    let opts = Options { baseline: args.baseline.clone(), std_kind: args.std, published: args.published };
    let lb = leaderboard::build(&results, &args.dataset, &opts)?;
    if let Some(path) = &args.plot {
        return draw(&ctx, &args, &lb, path);
    }
    if lb.groups.is_empty() && !matches!(args.format, Format::Json | Format::Table) {
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

fn draw(ctx: &crate::home::Ctx, args: &Args, lb: &Leaderboard, path: &Path) -> Result<i32> {
    plot::Format::of(path)?;
    let figures: Vec<(PathBuf, Figure)> = match args.kind {
        Kind::Bars => vec![(
            path.to_path_buf(),
            Figure::Bars { bars: figure::bars(lb, args.spread, args.anno_percent)?, p_values: args.p_values },
        )],
        Kind::LabelEfficiency => {
            vec![(path.to_path_buf(), Figure::LabelEfficiency(figure::efficiency(lb, args.spread)?))]
        }
        Kind::Curves => {
            let runs = if args.runs.is_empty() {
                let (runs, _) = store::list_runs(&ctx.home.runs);
                runs.into_iter().filter(|r| r.spec.dataset == args.dataset).collect()
            } else {
                args.runs.iter().map(|id| store::find_run(&ctx.home.runs, id)).collect::<Result<Vec<_>>>()?
            };
            let curves = figure::curves(&args.dataset, &runs)?;
            if args.per_run {
                curves
                    .runs
                    .iter()
                    .map(|run| {
                        let one = figure::Curves { dataset: curves.dataset.clone(), runs: vec![run.clone()] };
                        (per_run_path(path, &run.run_id), Figure::Curves(one))
                    })
                    .collect()
            } else {
                vec![(path.to_path_buf(), Figure::Curves(curves))]
            }
        }
    };
    if let Some(data) = &args.plot_data {
        match figures.as_slice() {
            [(_, one)] => one.write_data(data)?,
            many => {
                let all: Vec<&Figure> = many.iter().map(|(_, f)| f).collect();
                let text = serde_json::to_string_pretty(&all)? + "\n";
                crate::atomic::write(data, text.as_bytes())
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", data.display()))?;
            }
        }
    }
    for (file, fig) in &figures {
        fig.write(file)?;
        eprintln!("medxfer: wrote {}", file.display());
    }
    Ok(0)
}

/// FILE.svg -> FILE-<run id>.svg
fn per_run_path(path: &Path, run_id: &str) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{stem}-{run_id}.{ext}"))
}
