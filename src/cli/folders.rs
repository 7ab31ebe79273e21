//! Where a dataset lives on this machine: the flags `sweep`, `eval`, `data check` and `data cache` share. A
//! flag not given comes from config.toml's `[datasets.<name>]` (which the TUI's Launch view writes).

use crate::config::Config;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default, Clone)]
pub struct DatasetFolders {
    /// Folder the dataset lives in; the split lists' image paths are relative to it (default: root under
    /// [datasets.NAME] in config.toml; for demo-cls / demo-seg, the home's generated copy).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Training split: a list file in the dataset's format (a folder with images/ and masks/ for
    /// segmentation), replacing the spec's default (default: train_list under [datasets.NAME]).
    #[arg(long, value_name = "PATH")]
    pub train_list: Option<PathBuf>,
    /// Validation split, as --train-list (default: val_list under [datasets.NAME]).
    #[arg(long, value_name = "PATH")]
    pub val_list: Option<PathBuf>,
    /// Test split, as --train-list (default: test_list under [datasets.NAME]).
    #[arg(long, value_name = "PATH")]
    pub test_list: Option<PathBuf>,
}

impl DatasetFolders {
    /// These flags, with what config.toml remembers for `dataset` filling the ones not given.
    pub fn or_remembered(mut self, config: &Config, dataset: &str) -> DatasetFolders {
        let f = &mut self;
        config.dataset_paths(dataset).fill(&mut f.root, &mut f.train_list, &mut f.val_list, &mut f.test_list);
        self
    }
}
