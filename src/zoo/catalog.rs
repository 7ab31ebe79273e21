//! The model catalog (`assets/zoo.toml`, embedded in the binary): typed entries and their validation.

use anyhow::{Result, bail};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

/// The catalog as shipped, compiled into the binary.
pub const EMBEDDED: &str = include_str!("../../assets/zoo.toml");

/// Conversion recipes the checkpoint converter implements (see `crate::ckpt`).
pub const KNOWN_RECIPES: &[&str] = &[
    "torchvision",
    "zenodo-module",
    "moco",
    "pcl",
    "swav",
    "barlowtwins",
    "pycontrast",
    "simclr-v1",
    "simclr-v2",
    "byol",
    "none",
];

pub const CATEGORIES: &[&str] =
    &["supervised-imagenet", "self-supervised-imagenet", "inat2021", "in-domain", "domain-adapted", "none"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub name: String,
    pub category: String,
    pub dataset: String,
    pub objective: String,
    pub paper: String,
    pub paper_url: String,
    /// Source URLs exactly as the study lists them.
    pub urls: Vec<String>,
    /// The file name in the cache and on a mirror; empty for `random`.
    pub file: String,
    pub recipe: String,
    pub credit: String,
    /// Lower-case hex sha256 when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Needs a person (signed-in browser, Box folder): `steps` say what to do, `zoo import` takes the file.
    #[serde(default)]
    pub manual: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

impl Entry {
    /// True for entries without a checkpoint (`random`).
    pub fn has_file(&self) -> bool {
        !self.file.is_empty()
    }

    /// torchvision names its files `<name>-<first 8+ hex of sha256>.<ext>`: that prefix, when it applies.
    pub fn name_digest_prefix(&self) -> Option<String> {
        let from_torchvision =
            self.urls.iter().any(|u| Url::parse(u).is_ok_and(|u| u.host_str() == Some("download.pytorch.org")));
        if !from_torchvision {
            return None;
        }
        let stem = self.file.split('.').next()?;
        let suffix = stem.rsplit('-').next()?;
        let is_hex = suffix.len() >= 8 && suffix.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        is_hex.then(|| suffix.to_string())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    model: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub entries: Vec<Entry>,
}

impl Catalog {
    /// The embedded catalog (validated).
    pub fn embedded() -> Result<Catalog> {
        Catalog::parse(Path::new("assets/zoo.toml"), EMBEDDED)
    }

    /// Parses and validates a catalog; errors name the file and the entry at fault.
    pub fn parse(path: &Path, text: &str) -> Result<Catalog> {
        let file: CatalogFile = crate::config::parse_toml(path, text)?;
        let catalog = Catalog { entries: file.model };
        catalog.validate(path)?;
        Ok(catalog)
    }

    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// The entry for `id`, or an error listing the known ids.
    pub fn require(&self, id: &str) -> Result<&Entry> {
        match self.get(id) {
            Some(e) => Ok(e),
            None => {
                let ids: Vec<&str> = self.entries.iter().map(|e| e.id.as_str()).collect();
                bail!("unknown zoo id {id:?}; known ids: {}", ids.join(", "))
            }
        }
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let mut seen = HashSet::new();
        for e in &self.entries {
            let at = format!("{}: model {:?}", path.display(), e.id);
            if !seen.insert(e.id.as_str()) {
                bail!("{at} appears twice (ids must be unique)");
            }
            if e.id.is_empty() || !e.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                bail!("{at}: id must be non-empty and use only a-z, 0-9 and '-'");
            }
            if !KNOWN_RECIPES.contains(&e.recipe.as_str()) {
                bail!("{at}: unknown recipe {:?} (known: {})", e.recipe, KNOWN_RECIPES.join(", "));
            }
            if !CATEGORIES.contains(&e.category.as_str()) {
                bail!("{at}: unknown category {:?} (known: {})", e.category, CATEGORIES.join(", "));
            }
            for url in e.urls.iter().chain(std::iter::once(&e.paper_url)) {
                check_url(&at, url)?;
            }
            validate_file(&at, e)?;
            if let Some(sha) = &e.sha256
                && (sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
            {
                bail!("{at}: sha256 {sha:?} is not 64 lower-case hex digits");
            }
            if e.manual && e.steps.is_empty() {
                bail!("{at}: a manual entry needs steps");
            }
        }
        Ok(())
    }
}

fn check_url(at: &str, url: &str) -> Result<()> {
    match Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| h.contains('.')) => Ok(()),
        Ok(_) => bail!("{at}: URL {url:?} must be https with a host name"),
        Err(err) => bail!("{at}: URL {url:?} is malformed ({err})"),
    }
}

fn validate_file(at: &str, e: &Entry) -> Result<()> {
    if e.recipe == "none" {
        if e.has_file() || !e.urls.is_empty() {
            bail!("{at}: recipe \"none\" takes no file and no URL");
        }
        return Ok(());
    }
    if e.urls.is_empty() {
        bail!("{at}: needs at least one URL");
    }
    let bad_name = e.file.is_empty() || e.file.starts_with('.') || e.file.contains('/') || e.file.ends_with(".part");
    if bad_name {
        bail!("{at}: file {:?} must be a plain file name", e.file);
    }
    if !e.manual {
        let last = Url::parse(&e.urls[0])
            .ok()
            .and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_string)));
        if last.as_deref() != Some(e.file.as_str()) {
            bail!("{at}: file {:?} is not the last path segment of {}", e.file, e.urls[0]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_has_the_21_models_and_random() {
        let c = Catalog::embedded().unwrap();
        let ids = [
            "imagenet",
            "barlowtwins",
            "swav",
            "deepcluster-v2",
            "sela-v2",
            "insdis",
            "moco-v1",
            "moco-v2",
            "pcl-v1",
            "pcl-v2",
            "simclr-v1",
            "simclr-v2",
            "infomin",
            "pirl",
            "byol",
            "inat2021",
            "inat2021-mini",
            "chestxray14",
            "chexpert",
            "imagenet-chestxray14",
            "imagenet-chexpert",
            "random",
        ];
        let got: Vec<&str> = c.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(got, ids);
        let manual: Vec<&str> = c.entries.iter().filter(|e| e.manual).map(|e| e.id.as_str()).collect();
        assert_eq!(manual, ["simclr-v1", "simclr-v2", "inat2021", "inat2021-mini"]);
        assert_eq!(c.get("imagenet").unwrap().name_digest_prefix().as_deref(), Some("19c8e357"));
        assert_eq!(c.get("moco-v1").unwrap().name_digest_prefix(), None);
        assert_eq!(c.get("chexpert").unwrap().recipe, "zenodo-module");
    }

    fn one(fields: &str) -> String {
        format!(
            "[[model]]\nid = \"x\"\nname = \"X\"\ncategory = \"in-domain\"\ndataset = \"d\"\nobjective = \"o\"\n\
             paper = \"p\"\npaper_url = \"https://arxiv.org/abs/1\"\ncredit = \"c\"\n{fields}\n"
        )
    }

    fn err(text: &str) -> String {
        Catalog::parse(Path::new("zoo.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn validation_names_the_entry_and_the_fault() {
        let ok = "urls = [\"https://h.org/a/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"moco\"";
        assert!(Catalog::parse(Path::new("z"), &one(ok)).is_ok());
        let twice = format!("{}{}", one(ok), one(ok));
        assert!(err(&twice).contains("appears twice"), "{}", err(&twice));
        let e = err(&one("urls = [\"https://h.org/a/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"keras\""));
        assert!(e.contains("zoo.toml: model \"x\": unknown recipe \"keras\""), "{e}");
        let e = err(&one("urls = [\"http://h.org/a/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"moco\""));
        assert!(e.contains("must be https"), "{e}");
        let e = err(&one("urls = [\"https://h org/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"moco\""));
        assert!(e.contains("malformed"), "{e}");
        let e = err(&one("urls = [\"https://h.org/a/m.pth\"]\nfile = \"n.pth\"\nrecipe = \"moco\""));
        assert!(e.contains("not the last path segment"), "{e}");
        let e = err(&one("urls = [\"https://h.org/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"moco\"\nmanual = true"));
        assert!(e.contains("needs steps"), "{e}");
        let e = err(&one("urls = [\"https://h.org/m.pth\"]\nfile = \"m.pth\"\nrecipe = \"moco\"\nsha256 = \"AB\""));
        assert!(e.contains("64 lower-case hex"), "{e}");
    }
}
