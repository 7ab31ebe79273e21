//! `medxfer data check`: reads every split list, finds missing or unreadable images (header decode), label
//! count errors (file:line), patients shared across splits, and class prevalence per split.

use super::lists::{Item, read_split};
use super::spec::{DatasetSpec, ListFormat};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize)]
pub struct SplitReport {
    pub split: String,
    pub list: PathBuf,
    pub items: usize,
    /// Label name → fraction of positive items (classification); foreground split for segmentation is skipped.
    pub prevalence: BTreeMap<String, f64>,
    pub mask_pattern: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub dataset: String,
    pub root: PathBuf,
    pub splits: Vec<SplitReport>,
    /// One sentence per problem; empty means the dataset is usable.
    pub errors: Vec<String>,
}

fn readable(path: &Path) -> Result<(), String> {
    let reader = image::ImageReader::open(path).map_err(|_| format!("image {} is missing", path.display()))?;
    let reader = reader.with_guessed_format().map_err(|e| format!("image {} cannot be read: {e}", path.display()))?;
    reader.into_dimensions().map(|_| ()).map_err(|e| format!("image {} is not a readable image: {e}", path.display()))
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
    let mut report =
        CheckReport { dataset: spec.name.clone(), root: root.to_path_buf(), splits: vec![], errors: vec![] };
    let mut patients: Vec<(&str, BTreeSet<String>)> = Vec::new();
    for (name, list) in ["train", "val", "test"].into_iter().zip(lists) {
        let (items, mask_pattern) = match read_split(spec, root, list, 0) {
            Ok(read) => read,
            Err(e) => {
                report.errors.push(format!("{e:#}"));
                continue;
            }
        };
        for item in &items {
            for path in std::iter::once(&item.image).chain(&item.masks) {
                if let Err(e) = readable(path) {
                    report.errors.push(format!("{e} (listed at {})", item.origin));
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
        patients.push((name, items.iter().filter_map(|i| patient_id(spec, i)).collect()));
        report.splits.push(SplitReport {
            split: name.into(),
            list: list.clone(),
            items: items.len(),
            prevalence,
            mask_pattern,
        });
    }
    for a in 0..patients.len() {
        for b in a + 1..patients.len() {
            let shared: Vec<&String> = patients[a].1.intersection(&patients[b].1).collect();
            if let Some(first) = shared.first() {
                report.errors.push(format!(
                    "{} patients (e.g. {first}) appear in both the {} and {} splits",
                    shared.len(),
                    patients[a].0,
                    patients[b].0
                ));
            }
        }
    }
    report
}
