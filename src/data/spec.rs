//! Dataset specs: the `dataset/*.toml` files embedded in the binary, parsed into `DatasetSpec`.

use crate::runs::record::Task;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// (name, toml text) of every built-in spec.
pub const BUILTIN: &[(&str, &str)] = &[
    ("chestxray14", include_str!("../../dataset/chestxray14.toml")),
    ("chexpert", include_str!("../../dataset/chexpert.toml")),
    ("shenzhen", include_str!("../../dataset/shenzhen.toml")),
    ("drive", include_str!("../../dataset/drive.toml")),
    ("siim-acr", include_str!("../../dataset/siim-acr.toml")),
    ("montgomery", include_str!("../../dataset/montgomery.toml")),
    ("folder-csv", include_str!("../../dataset/folder-csv.toml")),
    ("image-mask", include_str!("../../dataset/image-mask.toml")),
    ("demo-cls", include_str!("../../dataset/demo-cls.toml")),
    ("demo-seg", include_str!("../../dataset/demo-seg.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Auc,
    Dice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)
    Imagenet,
    /// mean 0.5056, std 0.252 on every channel
    Chestxray,
    /// pixels / 255
    None,
}

impl Normalization {
    pub fn parse(s: &str) -> Result<Normalization> {
        match s {
            "imagenet" => Ok(Normalization::Imagenet),
            "chestxray" | "chest-xray" | "chestx-ray" => Ok(Normalization::Chestxray),
            "none" => Ok(Normalization::None),
            other => bail!("normalization `{other}` is not one of imagenet, chestxray, none"),
        }
    }

    /// The name `parse` reads back.
    pub fn name(self) -> &'static str {
        match self {
            Normalization::Imagenet => "imagenet",
            Normalization::Chestxray => "chestxray",
            Normalization::None => "none",
        }
    }

    /// Per-channel (mean, std) for RGB.
    pub fn mean_std(self) -> ([f32; 3], [f32; 3]) {
        match self {
            Normalization::Imagenet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            Normalization::Chestxray => ([0.5056; 3], [0.252; 3]),
            Normalization::None => ([0.0; 3], [1.0; 3]),
        }
    }
}

/// How a split list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ListFormat {
    /// `path l1 ... lN`, whitespace-separated (the study's ChestX-ray14 lists).
    Chestxray14,
    /// `path,label` (the study's Shenzhen lists).
    Shenzhen,
    /// CheXpert CSV: header row, path first, labels from the 6th column; -1 uncertain, blank unknown.
    Chexpert,
    /// CSV with a header `path,label1,...`.
    Csv,
    /// A split is a folder holding an image folder and mask folder(s) matched by file name.
    ImageMask,
}

/// What a CheXpert uncertain (-1) label becomes; the LSR values are drawn again at every fetch of the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncertainPolicy {
    Ones,
    Zeros,
    /// Uniform(0.55, 0.85)
    LsrOnes,
    /// Uniform(0, 0.3)
    LsrZeros,
}

impl UncertainPolicy {
    pub fn parse(s: &str) -> Result<UncertainPolicy> {
        match s.to_ascii_lowercase().as_str() {
            "ones" => Ok(UncertainPolicy::Ones),
            "zeros" => Ok(UncertainPolicy::Zeros),
            "lsr-ones" => Ok(UncertainPolicy::LsrOnes),
            "lsr-zeros" => Ok(UncertainPolicy::LsrZeros),
            other => bail!("uncertain policy `{other}` is not one of ones, zeros, lsr-ones, lsr-zeros"),
        }
    }
}

/// Default split list file names (classification) or split folder names (image-mask), relative to the root;
/// `shipped:<file>` names a list shipped with medxfer (`data::shipped`). An empty name means there is no
/// default: the user must pass that list (CheXpert's validation list).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitNames {
    pub train: String,
    #[serde(default)]
    pub val: String,
    pub test: String,
}

impl SplitNames {
    /// (role, default name) for train, val, test.
    pub fn roles(&self) -> [(&'static str, &str); 3] {
        [("train", &self.train), ("val", &self.val), ("test", &self.test)]
    }
}

/// Image-mask layout inside each split folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskLayout {
    pub images: String,
    /// Mask folders; several are merged (union), e.g. Montgomery's left and right lungs.
    pub masks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub task: Task,
    pub metric: Metric,
    pub normalization: Normalization,
    pub list_format: ListFormat,
    /// Folder under the root that list paths are relative to ("" = the root itself).
    #[serde(default)]
    pub images: String,
    /// Output classes (an empty list means "read from the CSV header").
    pub labels: Vec<String>,
    /// Classes scored at test time (default: all labels).
    #[serde(default)]
    pub test_labels: Vec<String>,
    #[serde(default)]
    pub uncertain_policy: Option<UncertainPolicy>,
    pub lists: SplitNames,
    #[serde(default)]
    pub masks: Option<MaskLayout>,
}

impl DatasetSpec {
    /// A built-in spec by name, or a spec file when `name` is a path to a .toml.
    pub fn load(name: &str) -> Result<DatasetSpec> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            return DatasetSpec::parse(text, name);
        }
        let path = Path::new(name);
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            return DatasetSpec::parse(&text, &path.display().to_string());
        }
        let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        bail!("dataset {name:?} is not a built-in spec ({}) nor a .toml spec file", known.join(", "))
    }

    pub fn parse(text: &str, origin: &str) -> Result<DatasetSpec> {
        // Errors read "FILE:LINE: message".
        let spec: DatasetSpec = crate::config::parse_toml(Path::new(origin), text)?;
        if spec.list_format == ListFormat::ImageMask && spec.masks.is_none() {
            bail!("dataset spec {origin}: list_format image-mask needs a [masks] table");
        }
        Ok(spec)
    }

    /// Indices (into `labels`) of the classes scored at test time.
    pub fn test_label_indices(&self) -> Result<Vec<usize>> {
        if self.test_labels.is_empty() {
            return Ok((0..self.labels.len()).collect());
        }
        self.test_labels
            .iter()
            .map(|t| {
                self.labels
                    .iter()
                    .position(|l| l == t)
                    .with_context(|| format!("dataset {}: test label `{t}` is not one of its labels", self.name))
            })
            .collect()
    }

    pub fn is_demo(&self) -> bool {
        self.name == "demo-cls" || self.name == "demo-seg"
    }

    /// The default list of a split (`SplitNames`): a shipped list as `shipped:<file>`, else the name under
    /// `root`; None when the spec has no default for it.
    pub fn default_list(&self, root: &Path, name: &str) -> Option<PathBuf> {
        if name.is_empty() {
            None
        } else if name.starts_with(super::shipped::PREFIX) {
            Some(PathBuf::from(name))
        } else {
            Some(root.join(name))
        }
    }

    /// The list of the split `role` (train, val, test): the one given, else the spec's default; one sentence
    /// when there is neither.
    pub fn list_for(&self, root: &Path, role: &str, given: Option<&Path>) -> Result<PathBuf> {
        if let Some(given) = given {
            return Ok(given.to_path_buf());
        }
        let name = self.lists.roles().into_iter().find(|(r, _)| *r == role).map_or("", |(_, n)| n);
        match self.default_list(root, name) {
            Some(path) => Ok(path),
            None if self.list_format == ListFormat::Chexpert && role == "val" => bail!(
                "dataset {} needs a validation list: its valid.csv is the test set (choosing the checkpoint on it \
                 selects on the test set), so make a patient-disjoint one with `medxfer data split chexpert --csv \
                 ROOT/CheXpert-v1.0-small/train.csv --out DIR` and pass --train-list DIR/medxfer_split_train.csv \
                 --val-list DIR/medxfer_split_val.csv",
                self.name
            ),
            None => bail!("dataset {} has no default {role} list: pass --{role}-list", self.name),
        }
    }

    /// The folder list paths are relative to.
    pub fn image_dir(&self, root: &Path) -> PathBuf {
        if self.images.is_empty() { root.to_path_buf() } else { root.join(&self.images) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_spec_parses() {
        for (name, _) in BUILTIN {
            let spec = DatasetSpec::load(name).unwrap();
            assert_eq!(&spec.name, name);
            spec.test_label_indices().unwrap();
        }
        let cx = DatasetSpec::load("chestxray14").unwrap();
        assert_eq!(cx.labels.len(), 14);
        assert_eq!(cx.labels[13], "Hernia");
        let chexpert = DatasetSpec::load("chexpert").unwrap();
        assert_eq!(chexpert.test_label_indices().unwrap(), vec![8, 2, 6, 5, 10]);
        assert_eq!(DatasetSpec::load("drive").unwrap().task, Task::Segmentation);
        assert!(DatasetSpec::load("nope").unwrap_err().to_string().contains("nope"));
    }

    /// study-protocol.md §2.1-2.4, 2.7-2.9 (main_classification.py:31,92-94,107-111,124; main_segmentation.py:54;
    /// dataloader.py:325,356,432).
    #[test]
    fn classes_and_normalisation_are_the_studys() {
        let load = |name: &str| DatasetSpec::load(name).unwrap();
        let cx14 = "Atelectasis Cardiomegaly Effusion Infiltration Mass Nodule Pneumonia Pneumothorax Consolidation \
                    Edema Emphysema Fibrosis Pleural_Thickening Hernia";
        assert_eq!(load("chestxray14").labels, cx14.split_whitespace().collect::<Vec<_>>());
        assert_eq!(load("chestxray14").test_label_indices().unwrap(), (0..14).collect::<Vec<_>>());
        let chexpert = [
            "No Finding",
            "Enlarged Cardiomediastinum",
            "Cardiomegaly",
            "Lung Opacity",
            "Lung Lesion",
            "Edema",
            "Consolidation",
            "Pneumonia",
            "Atelectasis",
            "Pneumothorax",
            "Pleural Effusion",
            "Pleural Other",
            "Fracture",
            "Support Devices",
        ];
        assert_eq!(load("chexpert").labels, chexpert);
        assert_eq!(load("shenzhen").labels, ["TB"]);
        for (name, normalization) in [
            ("chestxray14", Normalization::Imagenet),
            ("chexpert", Normalization::Imagenet),
            ("shenzhen", Normalization::Imagenet),
            ("montgomery", Normalization::None),
            ("siim-acr", Normalization::None),
            ("drive", Normalization::Imagenet),
        ] {
            assert_eq!(load(name).normalization, normalization, "{name}");
        }
        assert_eq!(Normalization::Imagenet.mean_std(), ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]));
        assert_eq!(Normalization::Chestxray.mean_std(), ([0.5056; 3], [0.252; 3]));
    }
}
