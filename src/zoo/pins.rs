//! `<home>/zoo.lock`: sha256 pinned on first download for entries without a catalog digest
//! (trust on first use); later downloads and `zoo verify` are checked against it.

use super::lock::IdLock;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pin {
    pub file: String,
    pub sha256: String,
    pub size: u64,
    /// Where the pinned bytes came from (URL, mirror URL or imported path).
    pub source: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinFile {
    #[serde(default)]
    models: BTreeMap<String, Pin>,
}

/// The pin store at one path.
#[derive(Debug, Clone)]
pub struct Pins {
    path: PathBuf,
}

impl Pins {
    pub fn new(path: &Path) -> Pins {
        Pins { path: path.to_path_buf() }
    }

    pub fn get(&self, id: &str) -> Result<Option<Pin>> {
        Ok(self.read()?.models.remove(id))
    }

    /// Records a pin (read-modify-write under a lock so concurrent pulls of other ids keep theirs).
    pub fn set(&self, id: &str, pin: Pin) -> Result<()> {
        let guard_path = self.path.with_file_name(".zoo.lock.flock");
        let _guard = IdLock::acquire(&guard_path)?;
        let mut file = self.read()?;
        file.models.insert(id.to_string(), pin);
        let text = format!(
            "# sha256 of zoo downloads without a catalog digest, pinned on first download (trust on first use).\n{}",
            toml::to_string(&file)?
        );
        crate::atomic::write(&self.path, text.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn read(&self) -> Result<PinFile> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => crate::config::parse_toml(&self.path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PinFile::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        }
    }
}
