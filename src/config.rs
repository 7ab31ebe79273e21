//! `config.toml` in the home: typed settings with documented defaults, written on first run.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub scheduler: Scheduler,
    pub zoo: Zoo,
    pub slurm: Slurm,
    pub tui: Tui,
    /// Where each dataset's images and lists are, by dataset name: what `sweep` uses when no flag gives them.
    pub datasets: BTreeMap<String, DatasetPaths>,
}

/// A dataset's folders as `[datasets.<name>]` remembers them (the Launch view writes them; `sweep` reads them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatasetPaths {
    /// The folder the lists' image paths are relative to.
    pub root: Option<PathBuf>,
    pub train_list: Option<PathBuf>,
    pub val_list: Option<PathBuf>,
    pub test_list: Option<PathBuf>,
}

impl DatasetPaths {
    /// Fills each of `root`, `train`, `val`, `test` that no flag gave from these remembered paths.
    pub fn fill(
        &self,
        root: &mut Option<PathBuf>,
        train: &mut Option<PathBuf>,
        val: &mut Option<PathBuf>,
        test: &mut Option<PathBuf>,
    ) {
        for (given, remembered) in
            [(root, &self.root), (train, &self.train_list), (val, &self.val_list), (test, &self.test_list)]
        {
            if given.is_none() {
                given.clone_from(remembered);
            }
        }
    }

    /// The paths by their key in the file, in the form's order.
    pub fn entries(&self) -> [(&'static str, &Option<PathBuf>); 4] {
        [
            ("root", &self.root),
            ("train_list", &self.train_list),
            ("val_list", &self.val_list),
            ("test_list", &self.test_list),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scheduler {
    /// Concurrent runs on a machine without a GPU.
    pub cpu_slots: usize,
    /// Concurrent runs per GPU.
    pub gpu_slots_per_device: usize,
    /// A GPU is offered to a new run only with at least this much free memory (MiB).
    pub min_free_gpu_mib: u64,
    /// CPU threads per run (0 = cores / slots).
    pub threads_per_run: usize,
    /// local or slurm.
    pub executor: String,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            cpu_slots: 1,
            gpu_slots_per_device: 2,
            min_free_gpu_mib: 4096,
            threads_per_run: 0,
            executor: "local".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Zoo {
    /// Downloads at once for `zoo pull --all`.
    pub concurrent_downloads: usize,
    /// A mirror base URL (same as MEDXFER_ZOO_MIRROR; the variable wins).
    pub mirror: String,
    /// Seconds without a byte before a download is called stalled.
    pub stall_timeout_s: u64,
    pub retries: u32,
}

impl Default for Zoo {
    fn default() -> Self {
        Zoo { concurrent_downloads: 3, mirror: String::new(), stall_timeout_s: 30, retries: 5 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Slurm {
    pub partition: String,
    pub account: String,
    /// sbatch --time, e.g. "24:00:00".
    pub time_limit: String,
    /// GPUs per job (--gres=gpu:N); 0 for CPU-only clusters.
    pub gpus_per_job: u32,
    /// Extra sbatch arguments, one per element (never passed through a shell).
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tui {
    /// Clicks select tabs and rows, the wheel scrolls; false leaves the mouse to the terminal (text selection).
    pub mouse: bool,
    /// Key overrides: action name = key (e.g. quit = "ctrl-q").
    pub keymap: BTreeMap<String, String>,
}

impl Default for Tui {
    fn default() -> Tui {
        Tui { mouse: true, keymap: BTreeMap::new() }
    }
}

/// The file written on first run: every setting with its default and what it does.
pub const DEFAULT_CONFIG: &str = r#"# medxfer configuration. Every line shows the default; uncomment to change.

[scheduler]
# Concurrent runs on a machine without a GPU.
# cpu_slots = 1
# Concurrent runs per GPU.
# gpu_slots_per_device = 2
# Admit a run to a GPU only when it has this much free memory (MiB).
# min_free_gpu_mib = 4096
# CPU threads per run; 0 = cores divided by slots.
# threads_per_run = 0
# Where sweeps run by default: "local" or "slurm".
# executor = "local"

[zoo]
# Downloads at once for `medxfer zoo pull --all`.
# concurrent_downloads = 3
# A mirror serving BASE/<model id>/<file name> (MEDXFER_ZOO_MIRROR overrides it).
# mirror = ""
# Seconds without progress before a download is called stalled and retried.
# stall_timeout_s = 30
# retries = 5

[slurm]
# partition = ""
# account = ""
# time_limit = "24:00:00"
# gpus_per_job = 1
# extra_args = []

[tui]
# Click a tab or a row to select it, scroll with the wheel; false leaves the mouse to the terminal.
# mouse = true

[tui.keymap]
# Override any key: action = "key", e.g.
# quit = "ctrl-q"

# Where a dataset's images are: `medxfer sweep` uses these when --root / --train-list / --val-list /
# --test-list are not given, and the TUI's Launch view writes what you type there. A list left out is the
# dataset's own (shipped with medxfer, or its default file under the root).
# [datasets.chestxray14]
# root = "/data/ChestX-ray14/images"
# val_list = "/data/ChestX-ray14/my_val.txt"
"#;

impl Config {
    /// What `[datasets.<name>]` remembers for `dataset` (nothing when it has no section).
    pub fn dataset_paths(&self, dataset: &str) -> DatasetPaths {
        self.datasets.get(dataset).cloned().unwrap_or_default()
    }

    /// Reads `path`, writing the documented defaults there first when it does not exist.
    pub fn load_or_init(path: &Path) -> Result<Config> {
        if !path.exists() {
            crate::atomic::write(path, DEFAULT_CONFIG.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Config::load(path)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        parse_toml(path, &text)
    }
}

/// Writes `paths` as `[datasets.<dataset>]` into the config file at `path` (created with the defaults when
/// missing), keeping every other line and comment as it is; an empty path removes its key. Atomic.
pub fn remember_dataset_paths(path: &Path, dataset: &str, paths: &DatasetPaths) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DEFAULT_CONFIG.to_string(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    parse_toml::<Config>(path, &text)?;
    let mut doc: toml_edit::DocumentMut =
        text.parse().with_context(|| format!("{} is not valid TOML", path.display()))?;
    // Comments after the file's last table are its trailing text, which toml_edit prints after every table:
    // a new table goes after them instead, so they stay under the table they document.
    let trailing = doc.trailing().as_str().unwrap_or_default().to_string();
    let is_new = doc.get("datasets").and_then(|d| d.get(dataset)).is_none();
    let datasets = doc.entry("datasets").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let Some(datasets) = datasets.as_table_mut() else {
        anyhow::bail!("{}: `datasets` must be a table of [datasets.<name>] sections", path.display());
    };
    let table = datasets.entry(dataset).or_insert_with(toml_edit::table);
    let Some(table) = table.as_table_mut() else {
        anyhow::bail!("{}: `datasets.{dataset}` must be a table", path.display());
    };
    if is_new {
        table.decor_mut().set_prefix(format!("{trailing}\n"));
    }
    for (key, value) in paths.entries() {
        match value.as_deref().map(|p| p.to_string_lossy()).filter(|p| !p.is_empty()) {
            Some(p) => table[key] = toml_edit::value(p.as_ref()),
            None => {
                table.remove(key);
            }
        }
    }
    if table.is_empty() {
        datasets.remove(dataset);
    } else if is_new {
        doc.set_trailing("");
    }
    crate::atomic::write(path, doc.to_string().as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// Parses TOML into `T`, with errors as "FILE:LINE: message".
pub fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line =
            e.span().map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
        let msg = e.message().trim().to_string();
        match line {
            Some(l) => anyhow::anyhow!("{}:{l}: {msg}", path.display()),
            None => anyhow::anyhow!("{}: {msg}", path.display()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_defaults() {
        let cfg: Config = parse_toml(Path::new("config.toml"), DEFAULT_CONFIG).unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn the_mouse_is_on_unless_the_file_turns_it_off() {
        assert!(Config::default().tui.mouse);
        let off: Config = parse_toml(Path::new("config.toml"), "[tui]\nmouse = false\n").unwrap();
        assert!(!off.tui.mouse);
        let keys: Config = parse_toml(Path::new("config.toml"), "[tui.keymap]\nquit = \"ctrl-q\"\n").unwrap();
        assert!(keys.tui.mouse, "a [tui] table without `mouse` keeps the default");
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "[scheduler]\ncpu_slots = 2\ngpu_slots = 3\n";
        let err = parse_toml::<Config>(Path::new("/h/config.toml"), text).unwrap_err().to_string();
        assert!(err.starts_with("/h/config.toml:3:"), "{err}");
        assert!(err.contains("gpu_slots"), "{err}");
    }

    #[test]
    fn remembered_paths_keep_the_files_comments_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let edited = DEFAULT_CONFIG.replace("# cpu_slots = 1", "cpu_slots = 2");
        std::fs::write(&path, &edited).unwrap();
        let paths =
            DatasetPaths { root: Some("/data/cxr".into()), val_list: Some("/l/v.txt".into()), ..Default::default() };
        remember_dataset_paths(&path, "chestxray14", &paths).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&edited), "every earlier line is kept:\n{text}");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.datasets["chestxray14"], paths);
        assert_eq!(cfg.scheduler.cpu_slots, 2);

        let root_only = DatasetPaths { root: Some("/data/other".into()), ..Default::default() };
        remember_dataset_paths(&path, "chestxray14", &root_only).unwrap();
        assert_eq!(Config::load(&path).unwrap().datasets["chestxray14"], root_only, "an emptied list is removed");
        remember_dataset_paths(&path, "chestxray14", &DatasetPaths::default()).unwrap();
        assert!(Config::load(&path).unwrap().datasets.is_empty());
    }

    #[test]
    fn a_config_that_does_not_parse_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[scheduler]\ncpu_slot = 2\n").unwrap();
        let err = remember_dataset_paths(&path, "x", &DatasetPaths::default()).unwrap_err().to_string();
        assert!(err.contains("config.toml:2:"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[scheduler]\ncpu_slot = 2\n");
    }

    #[test]
    fn values_override_defaults() {
        let cfg: Config = parse_toml(Path::new("c"), "[scheduler]\ncpu_slots = 3\n").unwrap();
        assert_eq!(cfg.scheduler.cpu_slots, 3);
        assert_eq!(cfg.zoo.concurrent_downloads, 3);
    }
}
