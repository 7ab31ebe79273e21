//! Where medxfer keeps its state: `MEDXFER_HOME=DIR` puts everything under DIR; otherwise the
//! XDG folders (config, data, cache) chosen by the `directories` crate.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Every path medxfer writes to, resolved once at start-up and passed down.
#[derive(Debug, Clone, Serialize)]
pub struct Home {
    /// The root of medxfer's own state (runs, queue, zoo.lock).
    pub root: PathBuf,
    pub config_file: PathBuf,
    /// Downloaded and converted checkpoints, decoded-image caches.
    pub cache: PathBuf,
    pub runs: PathBuf,
    pub logs: PathBuf,
    /// Where the agent's control socket and lock live.
    pub agent_dir: PathBuf,
}

impl Home {
    /// Resolves the home from the environment (`MEDXFER_HOME`, else XDG).
    pub fn from_env() -> Result<Home> {
        match std::env::var_os("MEDXFER_HOME") {
            Some(dir) if !dir.is_empty() => Home::under(Path::new(&dir)),
            _ => Home::xdg(),
        }
    }

    /// Everything under one folder.
    pub fn under(dir: &Path) -> Result<Home> {
        let root = absolute(dir)?;
        Ok(Home {
            config_file: root.join("config.toml"),
            cache: root.join("cache"),
            runs: root.join("runs"),
            logs: root.join("logs"),
            agent_dir: root.join("agent"),
            root,
        })
    }

    fn xdg() -> Result<Home> {
        let dirs = directories::ProjectDirs::from("", "", "medxfer")
            .context("cannot find a home folder for medxfer's state: set MEDXFER_HOME=DIR")?;
        let root = dirs.data_dir().to_path_buf();
        Ok(Home {
            config_file: dirs.config_dir().join("config.toml"),
            cache: dirs.cache_dir().to_path_buf(),
            runs: root.join("runs"),
            logs: root.join("logs"),
            agent_dir: root.join("agent"),
            root,
        })
    }

    /// The zoo's download and conversion cache.
    pub fn zoo_cache(&self) -> PathBuf {
        self.cache.join("zoo")
    }

    /// Creates the folders (private to the user: runs and logs may hold patient-derived data).
    pub fn ensure(&self) -> Result<()> {
        for dir in [&self.root, &self.cache, &self.runs, &self.logs, &self.agent_dir] {
            create_private_dir(dir)?;
        }
        if let Some(parent) = self.config_file.parent() {
            create_private_dir(parent)?;
        }
        Ok(())
    }
}

/// What every command gets: the resolved home and its configuration.
pub struct Ctx {
    pub home: Home,
    pub config: Config,
}

impl Ctx {
    pub fn load() -> Result<Ctx> {
        let home = Home::from_env()?;
        home.ensure()?;
        let config = Config::load_or_init(&home.config_file)?;
        Ok(Ctx { home, config })
    }
}

fn absolute(dir: &Path) -> Result<PathBuf> {
    if dir.as_os_str().to_string_lossy().chars().any(char::is_control) {
        bail!("MEDXFER_HOME {dir:?} contains control characters");
    }
    Ok(std::path::absolute(dir)?)
}

/// mkdir -p with mode 0700 for the folders it creates.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_puts_everything_below_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::under(dir.path()).unwrap();
        home.ensure().unwrap();
        for p in [&home.config_file, &home.cache, &home.runs, &home.logs, &home.agent_dir] {
            assert!(p.starts_with(dir.path()), "{p:?}");
        }
        assert!(home.runs.is_dir());
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(Home::under(Path::new("/tmp/a\nb")).is_err());
    }
}
