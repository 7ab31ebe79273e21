//! The Leaderboard's rows: derived state, rebuilt from the runs' results (and the published rows when they
//! are shown) by `update` when either changes, never while drawing.

use super::state::RunView;
use crate::runs::leaderboard::{self, PublishedRow};
use crate::runs::record::RunResult;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub dataset: String,
    pub anno_percent: u32,
    pub metric: String,
    /// The ranking group (dataset, anno percent, metric, conventions) it belongs to, numbered from 0.
    pub group: usize,
    /// Rank within its group, from 1; 0 for a published reference row.
    pub rank: usize,
    pub init: String,
    pub trials: usize,
    pub mean: f64,
    pub std: f64,
    /// Mean over trials per class (empty for reference rows).
    pub per_class: BTreeMap<String, f64>,
}

impl BoardRow {
    pub fn is_reference(&self) -> bool {
        self.rank == 0
    }
}

/// Every finished run's result.
pub fn results(runs: &BTreeMap<String, RunView>) -> Vec<RunResult> {
    runs.values().filter_map(|run| run.result.clone()).collect()
}

/// The ranking per dataset from `runs::leaderboard` (population std, imagenet baseline), each dataset followed
/// by its `published` reference rows when they are shown (then every dataset with published numbers is
/// listed).
pub fn rows(runs: &BTreeMap<String, RunView>, published: Option<&[PublishedRow]>) -> Vec<BoardRow> {
    let results = results(runs);
    let mut datasets: BTreeSet<&str> = results.iter().map(|r| r.dataset.as_str()).collect();
    datasets.extend(published.into_iter().flatten().map(|p| p.dataset.as_str()));
    let options = leaderboard::Options::default();
    let mut out = Vec::new();
    let mut group_index = 0;
    for dataset in datasets {
        let Ok(board) = leaderboard::build(&results, dataset, &options) else { continue };
        for group in &board.groups {
            for row in &group.rows {
                out.push(BoardRow {
                    dataset: dataset.to_string(),
                    anno_percent: group.anno_percent,
                    metric: group.metric.clone(),
                    group: group_index,
                    rank: row.rank,
                    init: row.init.clone(),
                    trials: row.summary.n,
                    mean: row.summary.mean,
                    std: row.summary.std.unwrap_or(f64::NAN),
                    per_class: row.per_class.clone(),
                });
            }
            group_index += 1;
        }
        if let Some(published) = published {
            for p in published.iter().filter(|p| p.dataset == dataset) {
                out.push(BoardRow {
                    dataset: dataset.to_string(),
                    anno_percent: 100,
                    metric: p.metric.clone(),
                    group: group_index,
                    rank: 0,
                    init: p.init.clone(),
                    trials: 0,
                    mean: p.mean_percent / 100.0,
                    std: p.std_percent / 100.0,
                    per_class: BTreeMap::new(),
                });
            }
            group_index += 1;
        }
    }
    out
}
