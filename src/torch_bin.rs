//! The sibling binary `medxfer-torch`, which alone links libtorch. `medxfer` (the front) never loads
//! libtorch: it execs the sibling for the commands that need tensors (same argv and pid, so the agent's pid
//! bookkeeping and Slurm see one process), and asks it for `doctor`'s libtorch facts.

use crate::doctor::LibtorchReport;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The sibling's file name, beside the front in the same folder.
pub const SIBLING: &str = "medxfer-torch";
/// The libtorch folder the sibling was linked against (its rpath), set by build.rs.
const BUILT_AGAINST: Option<&str> = option_env!("MEDXFER_LIBTORCH_LIB");
const HOW_TO_GET: &str = "run `make build` (libtorch comes from `make setup`, or from your own torch 2.11 with \
                          MEDXFER_PYTHON=/path/to/python make build)";

/// Where the sibling should be: beside the running executable.
pub fn sibling_path() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the medxfer executable")?;
    Ok(exe.with_file_name(SIBLING))
}

/// Why libtorch cannot be started from `sibling`, in one sentence naming `command`; None when it can.
pub fn missing(command: &str, sibling: &Path) -> Option<String> {
    if !sibling.is_file() {
        return Some(format!(
            "`medxfer {command}` needs libtorch, which medxfer runs in {}, but that file is missing: {HOW_TO_GET}",
            sibling.display()
        ));
    }
    let searched: Vec<PathBuf> = BUILT_AGAINST
        .into_iter()
        .map(PathBuf::from)
        .chain(std::env::var_os("LD_LIBRARY_PATH").iter().flat_map(std::env::split_paths))
        .collect();
    if searched.iter().any(|dir| dir.join("libtorch_cpu.so").is_file()) {
        return None;
    }
    let places: Vec<String> = searched.iter().map(|d| d.display().to_string()).collect();
    Some(format!(
        "`medxfer {command}` needs libtorch, but libtorch_cpu.so is in none of [{}] (the folder {SIBLING} was \
         built against, then LD_LIBRARY_PATH): {HOW_TO_GET}",
        places.join(", ")
    ))
}

/// Replaces this process with the sibling, same arguments and pid; returns only on failure.
pub fn exec(command: &str) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let sibling = sibling_path()?;
    if let Some(sentence) = missing(command, &sibling) {
        bail!(sentence);
    }
    let err = std::process::Command::new(&sibling).args(std::env::args_os().skip(1)).exec();
    bail!("`medxfer {command}` needs libtorch, but {} cannot be started: {err}", sibling.display())
}

/// libtorch as the sibling sees it (`medxfer-torch torch-probe`), or why it could not tell.
pub fn probe() -> Result<LibtorchReport, String> {
    let sibling = sibling_path().map_err(|e| e.to_string())?;
    if let Some(sentence) = missing("doctor", &sibling) {
        return Err(sentence);
    }
    let out = std::process::Command::new(&sibling)
        .arg("torch-probe")
        .output()
        .map_err(|e| format!("{} cannot be started: {e}", sibling.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} failed ({}): {}",
            sibling.display(),
            out.status,
            stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message")
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{} printed no libtorch report: {e}", sibling.display()))
}
