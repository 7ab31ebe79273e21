//! The leaderboard: result.json files of one dataset aggregated by (init, anno_percent, metric, conventions),
//! ranked within groups of equal conventions only, with Welch p-values against a baseline, per-class means,
//! label-efficiency rows, and the study's published numbers as unranked reference rows.

use super::record::RunResult;
use super::stats::{self, StdKind, Summary};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

pub const DEFAULT_BASELINE: &str = "imagenet";
pub const SIGNIFICANCE_LEVEL: f64 = 0.05;

#[derive(Debug, Clone)]
pub struct Options {
    pub baseline: String,
    pub std_kind: StdKind,
    pub published: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { baseline: DEFAULT_BASELINE.into(), std_kind: StdKind::Population, published: false }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    pub dataset: String,
    pub baseline: String,
    pub std_kind: StdKind,
    pub significance_level: f64,
    /// One ranking per (anno_percent, metric, conventions); 100% labels first.
    pub groups: Vec<Group>,
    /// Metric against anno_percent per init, when the dataset has results at several fractions.
    pub label_efficiency: Vec<EfficiencyTable>,
    /// The study's numbers (never ranked); empty unless asked for.
    pub published: Vec<PublishedRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub anno_percent: u32,
    pub metric: String,
    pub conventions: BTreeMap<String, Value>,
    /// `key=value` of the conventions that differ from another group at the same anno_percent and metric.
    pub differs: Vec<String>,
    pub baseline_present: bool,
    /// Best first.
    pub rows: Vec<Row>,
    /// The union of per-class names over the group's runs (columns of the per-class table).
    pub classes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Competition ranking by mean, higher is better (ties share a rank).
    pub rank: usize,
    pub init: String,
    pub summary: Summary,
    /// Welch's two-sided p-value against the baseline; None for the baseline itself or when undefined.
    pub p_value: Option<f64>,
    pub significant: Option<bool>,
    pub trials: Vec<Trial>,
    /// Mean over trials of each class's value.
    pub per_class: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    pub run_id: String,
    pub trial: u32,
    pub seed: u64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EfficiencyTable {
    pub metric: String,
    pub conventions: BTreeMap<String, Value>,
    pub anno_percents: Vec<u32>,
    pub rows: Vec<EfficiencyRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EfficiencyRow {
    pub init: String,
    /// One entry per `anno_percents`, None where that init has no result.
    pub points: Vec<Option<Summary>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedRow {
    pub dataset: String,
    pub init: String,
    pub metric: String,
    pub mean_percent: f64,
    pub std_percent: f64,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishedFile {
    result: Vec<PublishedRow>,
}

const PAPER_RESULTS: &str = include_str!("../../assets/paper_results.toml");

/// The study's published numbers (assets/paper_results.toml, built into the binary).
pub fn paper_results() -> Result<Vec<PublishedRow>> {
    let file: PublishedFile = toml::from_str(PAPER_RESULTS).context("assets/paper_results.toml is not valid")?;
    Ok(file.result)
}

/// Conventions as one canonical string (BTreeMap keeps keys sorted), used as a grouping key.
fn conventions_key(c: &BTreeMap<String, Value>) -> String {
    serde_json::to_string(c).unwrap_or_default()
}

pub fn build(results: &[RunResult], dataset: &str, opts: &Options) -> Result<Leaderboard> {
    type Key = (u32, String, String);
    let mut buckets: BTreeMap<Key, BTreeMap<String, Vec<&RunResult>>> = BTreeMap::new();
    for r in results.iter().filter(|r| r.dataset == dataset) {
        let key = (r.anno_percent, r.metric.clone(), conventions_key(&r.conventions));
        buckets.entry(key).or_default().entry(r.init.clone()).or_default().push(r);
    }
    let mut groups: Vec<Group> = buckets.into_values().map(|by_init| build_group(by_init, opts)).collect();
    mark_differences(&mut groups);
    groups.sort_by(|a, b| b.anno_percent.cmp(&a.anno_percent).then_with(|| a.metric.cmp(&b.metric)));
    let label_efficiency = label_efficiency(&groups);
    let published = if opts.published {
        paper_results()?.into_iter().filter(|p| p.dataset == dataset).collect()
    } else {
        Vec::new()
    };
    Ok(Leaderboard {
        dataset: dataset.to_string(),
        baseline: opts.baseline.clone(),
        std_kind: opts.std_kind,
        significance_level: SIGNIFICANCE_LEVEL,
        groups,
        label_efficiency,
        published,
    })
}

fn build_group(by_init: BTreeMap<String, Vec<&RunResult>>, opts: &Options) -> Group {
    let first = by_init.values().flatten().next();
    let (anno_percent, metric, conventions) =
        first.map(|r| (r.anno_percent, r.metric.clone(), r.conventions.clone())).unwrap_or_default();
    let values_of = |runs: &[&RunResult]| runs.iter().map(|r| r.mean).collect::<Vec<f64>>();
    let baseline_values = by_init.get(&opts.baseline).map(|runs| values_of(runs));
    let mut classes = BTreeSet::new();
    let mut rows = Vec::new();
    for (init, mut runs) in by_init {
        runs.sort_by(|a, b| a.trial.cmp(&b.trial).then_with(|| a.run_id.cmp(&b.run_id)));
        let values = values_of(&runs);
        let Some(summary) = stats::summarize(&values, opts.std_kind) else { continue };
        let p_value = match &baseline_values {
            Some(base) if init != opts.baseline => stats::welch_p_value(&values, base),
            _ => None,
        };
        let mut per_class_values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &runs {
            for (class, v) in &r.per_class {
                per_class_values.entry(class.clone()).or_default().push(*v);
            }
        }
        classes.extend(per_class_values.keys().cloned());
        let per_class = per_class_values.into_iter().filter_map(|(c, v)| Some((c, stats::mean(&v)?))).collect();
        let trials = runs
            .iter()
            .map(|r| Trial { run_id: r.run_id.clone(), trial: r.trial, seed: r.seed, value: r.mean })
            .collect();
        let significant = p_value.map(|p| p < SIGNIFICANCE_LEVEL);
        rows.push(Row { rank: 0, init, summary, p_value, significant, trials, per_class });
    }
    rows.sort_by(|a, b| b.summary.mean.total_cmp(&a.summary.mean).then_with(|| a.init.cmp(&b.init)));
    for i in 0..rows.len() {
        rows[i].rank = if i > 0 && rows[i].summary.mean == rows[i - 1].summary.mean { rows[i - 1].rank } else { i + 1 };
    }
    Group {
        anno_percent,
        metric,
        conventions,
        differs: Vec::new(),
        baseline_present: baseline_values.is_some(),
        rows,
        classes: classes.into_iter().collect(),
    }
}

/// For groups sharing anno_percent and metric, names the convention values that set each apart.
fn mark_differences(groups: &mut [Group]) {
    let snapshot: Vec<(u32, String, BTreeMap<String, Value>)> =
        groups.iter().map(|g| (g.anno_percent, g.metric.clone(), g.conventions.clone())).collect();
    for g in groups.iter_mut() {
        let peers: Vec<&BTreeMap<String, Value>> =
            snapshot.iter().filter(|(a, m, _)| *a == g.anno_percent && *m == g.metric).map(|(_, _, c)| c).collect();
        if peers.len() < 2 {
            continue;
        }
        let keys: BTreeSet<&String> = peers.iter().flat_map(|c| c.keys()).collect();
        g.differs = keys
            .into_iter()
            .filter(|k| peers.iter().any(|c| c.get(*k) != g.conventions.get(*k)))
            .map(|k| format!("{k}={}", g.conventions.get(k).map(Value::to_string).unwrap_or_else(|| "absent".into())))
            .collect();
    }
}

fn label_efficiency(groups: &[Group]) -> Vec<EfficiencyTable> {
    let mut by_conventions: BTreeMap<(String, String), Vec<&Group>> = BTreeMap::new();
    for g in groups {
        // The training subset, and so the split hash, differs by anno % by design.
        let mut conventions = g.conventions.clone();
        conventions.remove("split_hash");
        by_conventions.entry((g.metric.clone(), conventions_key(&conventions))).or_default().push(g);
    }
    let mut tables = Vec::new();
    for ((metric, _), mut gs) in by_conventions {
        if gs.len() < 2 {
            continue;
        }
        gs.sort_by_key(|g| g.anno_percent);
        let inits: BTreeSet<&String> = gs.iter().flat_map(|g| g.rows.iter().map(|r| &r.init)).collect();
        let rows = inits
            .into_iter()
            .map(|init| EfficiencyRow {
                init: init.clone(),
                points: gs.iter().map(|g| g.rows.iter().find(|r| &r.init == init).map(|r| r.summary.clone())).collect(),
            })
            .collect();
        tables.push(EfficiencyTable {
            metric,
            conventions: gs[0].conventions.clone(),
            anno_percents: gs.iter().map(|g| g.anno_percent).collect(),
            rows,
        });
    }
    tables
}

/// "key=value, ..." of a conventions map, for headers.
pub fn describe_conventions(c: &BTreeMap<String, Value>) -> String {
    if c.is_empty() {
        return "none recorded".into();
    }
    c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::record::Task;

    fn r(init: &str, trial: u32, mean: f64, conventions: &[(&str, Value)]) -> RunResult {
        RunResult {
            run_id: format!("x-{init}-t{trial}"),
            dataset: "d".into(),
            init: init.into(),
            trial,
            seed: 0,
            anno_percent: 100,
            task: Task::Segmentation,
            metric: "dice".into(),
            mean,
            per_class: BTreeMap::new(),
            extra: BTreeMap::new(),
            best_epoch: 1,
            epochs_run: 1,
            conventions: conventions.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }
    }

    #[test]
    fn ties_share_a_rank_and_missing_conventions_are_named() {
        let empty = [("empty_mask_dice", Value::from(1.0))];
        let results = vec![
            r("a", 1, 0.7, &empty),
            r("b", 1, 0.7, &empty),
            r("c", 1, 0.6, &empty),
            r("a", 2, 0.9, &[]),
            r("other", 1, 0.5, &empty),
        ];
        let lb = build(&results, "d", &Options::default()).unwrap();
        assert_eq!(lb.groups.len(), 2);
        let g = lb.groups.iter().find(|g| !g.conventions.is_empty()).unwrap();
        let ranks: Vec<(usize, &str)> = g.rows.iter().map(|r| (r.rank, r.init.as_str())).collect();
        assert_eq!(ranks, [(1, "a"), (1, "b"), (3, "c"), (4, "other")]);
        assert!(!g.baseline_present && g.rows.iter().all(|r| r.p_value.is_none()));
        assert_eq!(g.differs, ["empty_mask_dice=1.0"]);
        let other = lb.groups.iter().find(|g| g.conventions.is_empty()).unwrap();
        assert_eq!(other.differs, ["empty_mask_dice=absent"]);
        assert!(lb.label_efficiency.is_empty());
        assert!(build(&results, "nothing", &Options::default()).unwrap().groups.is_empty());
    }

    #[test]
    fn label_efficiency_joins_anno_percents_whose_training_subsets_differ() {
        let at = |anno: u32, trial: u32, mean: f64| RunResult {
            anno_percent: anno,
            ..r("random", trial, mean, &[("split_hash", Value::from(format!("subset-{anno}"))), ("tta", "none".into())])
        };
        let results = vec![at(25, 1, 0.5), at(25, 2, 0.6), at(100, 1, 0.8), at(100, 2, 0.9)];
        let lb = build(&results, "d", &Options::default()).unwrap();
        assert_eq!(lb.groups.len(), 2, "each anno % keeps its own group (and split)");
        assert_eq!(lb.label_efficiency.len(), 1);
        let table = &lb.label_efficiency[0];
        assert_eq!(table.anno_percents, [25, 100]);
        let means: Vec<f64> = table.rows[0].points.iter().map(|p| p.as_ref().unwrap().mean).collect();
        assert!((means[0] - 0.55).abs() < 1e-12 && (means[1] - 0.85).abs() < 1e-12, "{means:?}");
        let other_tta = RunResult {
            anno_percent: 50,
            ..r("random", 1, 0.7, &[("split_hash", "subset-50".into()), ("tta", "tencrop".into())])
        };
        let lb = build(&[results, vec![other_tta]].concat(), "d", &Options::default()).unwrap();
        assert_eq!(lb.label_efficiency[0].anno_percents, [25, 100], "other conventions still stay apart");
    }

    #[test]
    fn published_numbers_load_and_are_only_given_on_request() {
        let rows = paper_results().unwrap();
        assert_eq!(rows.len(), 11);
        let shenzhen = rows.iter().find(|p| p.dataset == "shenzhen" && p.init == "imagenet-chestxray14").unwrap();
        assert_eq!((shenzhen.mean_percent, shenzhen.std_percent), (98.47, 0.26));
        let opts = Options { published: true, ..Options::default() };
        assert_eq!(build(&[], "siim-acr", &opts).unwrap().published.len(), 3);
        assert!(build(&[], "siim-acr", &Options::default()).unwrap().published.is_empty());
    }
}
