//! `config.toml` in the home: typed settings with documented defaults, written on first run.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub scheduler: Scheduler,
    pub zoo: Zoo,
    pub slurm: Slurm,
    pub tui: Tui,
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
"#;

impl Config {
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
    fn values_override_defaults() {
        let cfg: Config = parse_toml(Path::new("c"), "[scheduler]\ncpu_slots = 3\n").unwrap();
        assert_eq!(cfg.scheduler.cpu_slots, 3);
        assert_eq!(cfg.zoo.concurrent_downloads, 3);
    }
}
