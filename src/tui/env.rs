//! What the TUI's `State` is built from besides the runs: the zoo catalog, the dataset specs and the study's
//! published numbers. The app passes the embedded assets (`TuiEnv::embedded`); tests pass small fixtures.
//! Time is not part of it: it reaches `update` only as `Action::Tick`.

use super::state::DatasetInfo;
use crate::data::DatasetSpec;
use crate::runs::leaderboard::PublishedRow;
use crate::zoo::Catalog;

#[derive(Debug, Clone)]
pub struct TuiEnv {
    /// Every model the Zoo view lists (and the Launch form offers).
    pub catalog: Catalog,
    /// The datasets of the Datasets view and the Launch form.
    pub datasets: Vec<DatasetInfo>,
    /// The study's numbers, the Leaderboard's reference rows.
    pub published: Vec<PublishedRow>,
}

impl TuiEnv {
    /// The embedded catalog (`assets/zoo.toml`), dataset specs (`dataset/*.toml`) and published results
    /// (`assets/paper_results.toml`); an asset that does not parse leaves its list empty.
    pub fn embedded() -> TuiEnv {
        TuiEnv {
            catalog: Catalog::embedded().unwrap_or(Catalog { entries: Vec::new() }),
            datasets: dataset_infos(),
            published: crate::runs::leaderboard::paper_results().unwrap_or_default(),
        }
    }
}

/// The built-in dataset specs (`dataset/*.toml`, embedded), demos included.
pub fn dataset_infos() -> Vec<DatasetInfo> {
    crate::data::spec::BUILTIN
        .iter()
        .filter_map(|(name, _)| DatasetSpec::load(name).ok())
        .map(|spec| DatasetInfo {
            demo: spec.is_demo(),
            metric: match spec.metric {
                crate::data::Metric::Auc => "auc",
                crate::data::Metric::Dice => "dice",
            },
            name: spec.name,
            description: spec.description,
            task: spec.task,
            check: None,
        })
        .collect()
}
