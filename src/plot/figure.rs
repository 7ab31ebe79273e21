//! The numbers a figure draws, taken from the leaderboard (`runs::leaderboard`) and the runs'
//! metrics.jsonl without recomputing anything; serialised as the figure's numeric side file.

use crate::runs::leaderboard::{Group, Leaderboard};
use crate::runs::stats::Summary;
use crate::runs::store::RunEntry;
use crate::zoo::catalog::Catalog;
use anyhow::{Result, bail};
use serde::Serialize;

/// What the whisker (bars) or the band (label efficiency) spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Spread {
    /// mean ± the leaderboard's std (population by default, as in the study).
    Std,
    /// The 95% confidence interval of the mean.
    Ci95,
}

impl Spread {
    /// (low, high) around the summary's mean; the mean itself where the spread is undefined (one trial).
    pub fn bounds(self, s: &Summary) -> (f64, f64) {
        match self {
            Spread::Std => s.std.map_or((s.mean, s.mean), |d| (s.mean - d, s.mean + d)),
            Spread::Ci95 => s.ci95.unwrap_or((s.mean, s.mean)),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Spread::Std => "std",
            Spread::Ci95 => "95% CI",
        }
    }
}

/// Mean ± spread per model of one leaderboard group.
#[derive(Debug, Clone, Serialize)]
pub struct Bars {
    pub dataset: String,
    pub metric: String,
    pub anno_percent: u32,
    pub spread: Spread,
    pub baseline: String,
    /// The baseline's mean, drawn as a line; None when the group has no baseline runs.
    pub baseline_mean: Option<f64>,
    pub significance_level: f64,
    /// Drawing order: by category (the catalog's order), best mean first within a category.
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub init: String,
    /// The zoo category ("other" for an init outside the catalog, "published" for the study's rows).
    pub category: String,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
    pub p_value: Option<f64>,
    pub significant: Option<bool>,
    /// The study's published number (drawn hollow), not a run of this home.
    pub published: bool,
}

/// The metric against anno % per model, with its spread over trials as a band.
#[derive(Debug, Clone, Serialize)]
pub struct Efficiency {
    pub dataset: String,
    pub metric: String,
    pub spread: Spread,
    pub lines: Vec<EfficiencyLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EfficiencyLine {
    pub init: String,
    pub points: Vec<EfficiencyPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EfficiencyPoint {
    pub anno_percent: u32,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub n: usize,
}

/// Train and validation loss per epoch of some runs.
#[derive(Debug, Clone, Serialize)]
pub struct Curves {
    pub dataset: String,
    pub runs: Vec<RunCurve>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunCurve {
    pub run_id: String,
    pub init: String,
    pub trial: u32,
    pub epochs: Vec<EpochLoss>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochLoss {
    pub epoch: u32,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
}

const OTHER: &str = "other";
const PUBLISHED: &str = "published";

/// The zoo category of `init` and its place in the catalog's category order ("other" last).
fn category_of(catalog: Option<&Catalog>, init: &str) -> (usize, String) {
    let categories = crate::zoo::catalog::CATEGORIES;
    let category = catalog.and_then(|c| c.entries.iter().find(|e| e.id == init)).map(|e| e.category.clone());
    match category {
        Some(c) => (categories.iter().position(|k| *k == c).unwrap_or(categories.len()), c),
        None => (categories.len(), OTHER.into()),
    }
}

/// The group of `anno_percent` (default: the largest, the leaderboard's first group).
fn group(lb: &Leaderboard, anno_percent: Option<u32>) -> Result<&Group> {
    let found = match anno_percent {
        Some(a) => lb.groups.iter().find(|g| g.anno_percent == a),
        None => lb.groups.first(),
    };
    match (found, anno_percent) {
        (Some(g), _) => Ok(g),
        (None, Some(a)) => bail!("dataset {:?} has no results at {a}% labels", lb.dataset),
        (None, None) => bail!("dataset {:?} has no results to draw", lb.dataset),
    }
}

pub fn bars(lb: &Leaderboard, spread: Spread, anno_percent: Option<u32>) -> Result<Bars> {
    // A dataset with only the study's numbers (published rows shown, no runs yet) draws those alone.
    let only_published = lb.groups.is_empty() && anno_percent.is_none() && !lb.published.is_empty();
    let g = if only_published { None } else { Some(group(lb, anno_percent)?) };
    let (metric, anno) = match g {
        Some(g) => (g.metric.clone(), g.anno_percent),
        None => (lb.published[0].metric.clone(), 100),
    };
    let rows = g.map(|g| g.rows.as_slice()).unwrap_or_default();
    let catalog = Catalog::embedded().ok();
    let mut keyed: Vec<(usize, Bar)> = rows
        .iter()
        .map(|r| {
            let (order, category) = category_of(catalog.as_ref(), &r.init);
            let (low, high) = spread.bounds(&r.summary);
            let bar = Bar {
                init: r.init.clone(),
                category,
                mean: r.summary.mean,
                low,
                high,
                n: r.summary.n,
                p_value: r.p_value,
                significant: r.significant,
                published: false,
            };
            (order, bar)
        })
        .collect();
    let published_order = crate::zoo::catalog::CATEGORIES.len() + 1;
    for p in lb.published.iter().filter(|p| p.metric == metric && anno == 100) {
        let (mean, std) = (p.mean_percent / 100.0, p.std_percent / 100.0);
        let bar = Bar {
            init: p.init.clone(),
            category: PUBLISHED.into(),
            mean,
            low: mean - std,
            high: mean + std,
            n: 0,
            p_value: None,
            significant: None,
            published: true,
        };
        keyed.push((published_order, bar));
    }
    keyed.sort_by(|(ca, a), (cb, b)| ca.cmp(cb).then(b.mean.total_cmp(&a.mean)).then_with(|| a.init.cmp(&b.init)));
    let baseline_mean = rows.iter().find(|r| r.init == lb.baseline).map(|r| r.summary.mean);
    Ok(Bars {
        dataset: lb.dataset.clone(),
        metric,
        anno_percent: anno,
        spread,
        baseline: lb.baseline.clone(),
        baseline_mean,
        significance_level: lb.significance_level,
        bars: keyed.into_iter().map(|(_, b)| b).collect(),
    })
}

pub fn efficiency(lb: &Leaderboard, spread: Spread) -> Result<Efficiency> {
    let Some(table) = lb.label_efficiency.first() else {
        bail!("dataset {:?} has results at only one anno % (label efficiency needs two or more)", lb.dataset)
    };
    let lines = table
        .rows
        .iter()
        .map(|row| EfficiencyLine {
            init: row.init.clone(),
            points: table
                .anno_percents
                .iter()
                .zip(&row.points)
                .filter_map(|(&anno_percent, s)| {
                    let s = s.as_ref()?;
                    let (low, high) = spread.bounds(s);
                    Some(EfficiencyPoint { anno_percent, mean: s.mean, low, high, n: s.n })
                })
                .collect(),
        })
        .collect();
    Ok(Efficiency { dataset: lb.dataset.clone(), metric: table.metric.clone(), spread, lines })
}

/// The epoch losses of `runs` (those without any epoch line are left out).
pub fn curves(dataset: &str, runs: &[RunEntry]) -> Result<Curves> {
    let mut out = Vec::new();
    for run in runs {
        let lines = crate::train::files::read_epoch_lines(&run.dir).unwrap_or_default();
        if lines.is_empty() {
            continue;
        }
        let epochs = lines
            .iter()
            .map(|m| EpochLoss { epoch: m.epoch, train_loss: m.train_loss, val_loss: m.val_loss })
            .collect();
        out.push(RunCurve { run_id: run.id.clone(), init: run.spec.init.clone(), trial: run.spec.trial, epochs });
    }
    if out.is_empty() {
        bail!("no run of dataset {dataset:?} has epoch metrics to draw");
    }
    Ok(Curves { dataset: dataset.to_string(), runs: out })
}
