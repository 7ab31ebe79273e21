//! `medxfer data split chestxray14`: the study-format split lists from the NIH's own files
//! (Data_Entry_2017.csv, train_val_list.txt, test_list.txt), validation patients drawn with a seed.

use super::pyrandom::PyRandom;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// The three lists as text in the ChestX-ray14 format (`name l1 ... l14`), train/val/test.
pub fn chestxray14_lists(nih_dir: &Path, labels: &[String], val_fraction: f64, seed: u64) -> Result<[String; 3]> {
    let entry_path = nih_dir.join("Data_Entry_2017.csv");
    let entries =
        std::fs::read_to_string(&entry_path).with_context(|| format!("cannot read {}", entry_path.display()))?;
    // image name -> (patient, label vector)
    let mut rows: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for (i, line) in entries.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() < 4 {
            bail!("{}:{}: expected image, finding labels, follow-up, patient id columns", entry_path.display(), i + 1);
        }
        let findings: BTreeSet<&str> = fields[1].split('|').map(str::trim).collect();
        let vector = labels.iter().map(|l| u8::from(findings.contains(l.as_str()))).collect();
        rows.insert(fields[0].trim().to_string(), (fields[3].trim().to_string(), vector));
    }
    let read_names = |file: &str| -> Result<Vec<String>> {
        let path = nih_dir.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        for (i, name) in names.iter().enumerate() {
            if !rows.contains_key(name) {
                bail!("{}:{}: image {name} is not in Data_Entry_2017.csv", path.display(), i + 1);
            }
        }
        Ok(names)
    };
    let train_val = read_names("train_val_list.txt")?;
    let test = read_names("test_list.txt")?;
    let mut patients: Vec<&str> =
        train_val.iter().map(|n| rows[n].0.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
    PyRandom::new(seed).shuffle(&mut patients);
    let val_patients: BTreeSet<&str> =
        patients.iter().take((patients.len() as f64 * val_fraction).round() as usize).copied().collect();
    let line = |name: &String| {
        let labels: Vec<String> = rows[name].1.iter().map(|v| v.to_string()).collect();
        format!("{name} {}\n", labels.join(" "))
    };
    let mut out: BTreeMap<u8, String> = BTreeMap::new();
    for name in &train_val {
        let split = if val_patients.contains(rows[name].0.as_str()) { 1 } else { 0 };
        out.entry(split).or_default().push_str(&line(name));
    }
    let test_text: String = test.iter().map(line).collect();
    Ok([out.remove(&0).unwrap_or_default(), out.remove(&1).unwrap_or_default(), test_text])
}

/// File names `data split` writes: never the study's own (`Xray14_*_official.txt`), so the two cannot be confused.
pub fn output_names(extension: &str) -> [String; 3] {
    ["train", "val", "test"].map(|role| format!("medxfer_split_{role}.{extension}"))
}

/// A CheXpert training CSV split by patient (the `patientNNNNN` folder of each path) into train and val CSVs,
/// each with the header; `val_fraction` of the patients, shuffled by `random.Random(seed)`, go to val.
pub fn chexpert_lists(csv: &Path, val_fraction: f64, seed: u64) -> Result<[String; 2]> {
    let text = std::fs::read_to_string(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let mut lines = text.lines();
    let header = lines.next().with_context(|| format!("{}:1: the CSV has no header row", csv.display()))?;
    let mut rows: Vec<(&str, &str)> = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let path = line.split(',').next().unwrap_or_default();
        let patient = path.split('/').find(|part| part.starts_with("patient")).with_context(|| {
            format!("{}:{}: path {path:?} has no patientNNNNN folder to split by", csv.display(), i + 2)
        })?;
        rows.push((patient, line));
    }
    let mut patients: Vec<&str> = rows.iter().map(|(p, _)| *p).collect::<BTreeSet<_>>().into_iter().collect();
    PyRandom::new(seed).shuffle(&mut patients);
    let val_patients: BTreeSet<&str> =
        patients.iter().take((patients.len() as f64 * val_fraction).round() as usize).copied().collect();
    let (mut train, mut val) = (format!("{header}\n"), format!("{header}\n"));
    for (patient, line) in rows {
        let out = if val_patients.contains(patient) { &mut val } else { &mut train };
        out.push_str(line);
        out.push('\n');
    }
    Ok([train, val])
}
