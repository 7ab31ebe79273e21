//! `medxfer data check`: reads every split list to its end and reports every problem in one pass: malformed
//! lines (file:line), missing or unreadable images (header decode), patients shared across splits (from the
//! good lines of broken lists too), with a count per kind; and class prevalence per split.

use super::lists::{Item, read_split_all};
use super::spec::{DatasetSpec, ListFormat};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `data check --json` prints the report; the TUI reads it back with this same type.
#[derive(Debug, Serialize, Deserialize)]
pub struct SplitReport {
    pub split: String,
    pub list: PathBuf,
    pub items: usize,
    /// Label name → fraction of positive items (classification); foreground split for segmentation is skipped.
    pub prevalence: BTreeMap<String, f64>,
    /// Not read back (a pattern is one of the spec module's constants).
    #[serde(skip_deserializing)]
    pub mask_pattern: Option<&'static str>,
}

/// What kind of problem a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A split list (or image-mask folder) that cannot be read at all.
    UnreadableList,
    MalformedLine,
    MissingImage,
    UnreadableImage,
    SharedPatient,
}

impl Kind {
    /// The kind as the JSON report spells it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::UnreadableList => "unreadable_list",
            Kind::MalformedLine => "malformed_line",
            Kind::MissingImage => "missing_image",
            Kind::UnreadableImage => "unreadable_image",
            Kind::SharedPatient => "shared_patient",
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Problem {
    pub kind: Kind,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CheckReport {
    pub dataset: String,
    pub root: PathBuf,
    pub splits: Vec<SplitReport>,
    /// Every problem with its kind, in the order found.
    pub problems: Vec<Problem>,
    /// How many problems of each kind.
    pub counts: BTreeMap<Kind, usize>,
    /// One sentence per problem (the messages of `problems`); empty means the dataset is usable.
    pub errors: Vec<String>,
}

impl CheckReport {
    fn push(&mut self, kind: Kind, message: String) {
        *self.counts.entry(kind).or_default() += 1;
        self.errors.push(message.clone());
        self.problems.push(Problem { kind, message });
    }
}

fn readable(path: &Path) -> Result<(), (Kind, String)> {
    let reader = image::ImageReader::open(path)
        .map_err(|_| (Kind::MissingImage, format!("image {} is missing", path.display())))?;
    let reader = reader
        .with_guessed_format()
        .map_err(|e| (Kind::UnreadableImage, format!("image {} cannot be read: {e}", path.display())))?;
    reader
        .into_dimensions()
        .map(|_| ())
        .map_err(|e| (Kind::UnreadableImage, format!("image {} is not a readable image: {e}", path.display())))
}

/// The patient an image belongs to, where the format encodes it (ChestX-ray14 `<patient>_<n>.png`,
/// CheXpert `.../patientNNNNN/...`).
pub fn patient_id(spec: &DatasetSpec, item: &Item) -> Option<String> {
    match spec.list_format {
        ListFormat::Chestxray14 => {
            let stem = item.image.file_stem()?.to_str()?;
            stem.split_once('_').map(|(p, _)| p.to_string())
        }
        ListFormat::Chexpert => item
            .image
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .find(|c| c.starts_with("patient"))
            .map(str::to_string),
        _ => None,
    }
}

pub fn check(spec: &DatasetSpec, root: &Path, lists: &[PathBuf; 3]) -> CheckReport {
    let mut report = CheckReport {
        dataset: spec.name.clone(),
        root: root.to_path_buf(),
        splits: vec![],
        problems: vec![],
        counts: BTreeMap::new(),
        errors: vec![],
    };
    // patient → (split, where the patient is first listed in it), in split order
    let mut patients: BTreeMap<String, Vec<(&str, String)>> = BTreeMap::new();
    for (name, list) in ["train", "val", "test"].into_iter().zip(lists) {
        let read = match read_split_all(spec, root, list, 0) {
            Ok(read) => read,
            Err(e) => {
                report.push(Kind::UnreadableList, format!("{e:#}"));
                continue;
            }
        };
        for e in &read.bad_lines {
            report.push(Kind::MalformedLine, format!("{e:#}"));
        }
        let items = read.items;
        for item in &items {
            for path in std::iter::once(&item.image).chain(&item.masks) {
                if let Err((kind, e)) = readable(path) {
                    report.push(kind, format!("{e} (listed at {})", item.origin));
                }
            }
        }
        let mut prevalence = BTreeMap::new();
        if !items.is_empty() && !items[0].labels.is_empty() {
            for (c, label) in spec.labels.iter().enumerate() {
                let positive = items.iter().filter(|i| i.labels.get(c).is_some_and(|&v| v >= 0.5)).count();
                prevalence.insert(label.clone(), positive as f64 / items.len() as f64);
            }
        }
        for item in &items {
            if let Some(patient) = patient_id(spec, item) {
                let seen = patients.entry(patient).or_default();
                if seen.last().is_none_or(|(split, _)| *split != name) {
                    seen.push((name, item.origin.clone()));
                }
            }
        }
        report.splits.push(SplitReport {
            split: name.into(),
            list: list.clone(),
            items: items.len(),
            prevalence,
            mask_pattern: read.mask_pattern,
        });
    }
    for (patient, splits) in patients.into_iter().filter(|(_, splits)| splits.len() > 1) {
        let names: Vec<&str> = splits.iter().map(|(split, _)| *split).collect();
        let places: Vec<&str> = splits.iter().map(|(_, origin)| origin.as_str()).collect();
        report.push(
            Kind::SharedPatient,
            format!("patient {patient} appears in the {} splits (at {})", names.join(" and "), places.join(", ")),
        );
    }
    report
}
