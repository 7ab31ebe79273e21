//! Readers for the study's split lists (ChestX-ray14, Shenzhen, CheXpert, CSV) and image/mask folder pairs.
//! Every error names the file and line at fault.

use super::spec::{DatasetSpec, ListFormat, UncertainPolicy};
use super::transform::Rng;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// One sample: an image, its target vector (classification) or its mask files (segmentation, merged by union).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub image: PathBuf,
    pub labels: Vec<f32>,
    pub masks: Vec<PathBuf>,
    /// Where the item came from, "file:line" or the folder, for error messages.
    pub origin: String,
}

/// A list's text: a shipped list (`shipped:<file>`) from the binary, else the file.
pub fn read_text(path: &Path) -> Result<String> {
    if let Some(text) = super::shipped::text(path) {
        return Ok(text.to_string());
    }
    if super::shipped::is_shipped(path) {
        let known: Vec<&str> = super::shipped::LISTS.iter().map(|(n, _)| *n).collect();
        bail!("split list {} is not one of the shipped lists ({})", path.display(), known.join(", "));
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read split list {}", path.display()))
}

fn parse_label(field: &str, path: &Path, line: usize) -> Result<f32> {
    field
        .trim()
        .parse::<f32>()
        .ok()
        .filter(|v| v.is_finite())
        .with_context(|| format!("{}:{line}: label `{field}` is not a number", path.display()))
}

/// A split read to its end: the items of its good lines and one error (file:line) per malformed line.
#[derive(Debug, Default)]
pub struct SplitRead {
    pub items: Vec<Item>,
    pub bad_lines: Vec<anyhow::Error>,
    pub mask_pattern: Option<&'static str>,
}

impl SplitRead {
    /// The items, or the first malformed line's error.
    fn strict(self) -> Result<Vec<Item>> {
        match self.bad_lines.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(self.items),
        }
    }
}

/// Parses every line (1-based numbers, blank lines skipped), keeping going past malformed ones.
fn parse_lines<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    mut parse: impl FnMut(usize, &'a str) -> Result<Item>,
) -> SplitRead {
    let mut read = SplitRead::default();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        match parse(i + 1, line) {
            Ok(item) => read.items.push(item),
            Err(e) => read.bad_lines.push(e),
        }
    }
    read
}

/// `path l1 ... lN`, whitespace-separated; blank lines are skipped.
pub fn read_chestxray14(list: &Path, image_dir: &Path, n_labels: usize) -> Result<Vec<Item>> {
    chestxray14_lines(&read_text(list)?, list, image_dir, n_labels).strict()
}

fn chestxray14_lines(text: &str, list: &Path, image_dir: &Path, n_labels: usize) -> SplitRead {
    parse_lines(text.lines().enumerate(), |line_no, line| {
        let mut fields = line.split_whitespace();
        let name = fields.next().unwrap_or_default();
        let labels = fields.map(|f| parse_label(f, list, line_no)).collect::<Result<Vec<f32>>>()?;
        if labels.len() != n_labels {
            bail!(
                "{}:{line_no}: expected {n_labels} labels after the image name, found {}",
                list.display(),
                labels.len()
            );
        }
        Ok(Item { image: image_dir.join(name), labels, masks: vec![], origin: format!("{}:{line_no}", list.display()) })
    })
}

/// `path,label`; blank lines are skipped.
pub fn read_shenzhen(list: &Path, image_dir: &Path) -> Result<Vec<Item>> {
    shenzhen_lines(&read_text(list)?, list, image_dir).strict()
}

fn shenzhen_lines(text: &str, list: &Path, image_dir: &Path) -> SplitRead {
    parse_lines(text.lines().enumerate(), |line_no, line| {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 2 {
            bail!("{}:{line_no}: expected `image,label`, found {} fields", list.display(), fields.len());
        }
        let label = parse_label(fields[1], list, line_no)?;
        Ok(Item {
            image: image_dir.join(fields[0].trim()),
            labels: vec![label],
            masks: vec![],
            origin: format!("{}:{line_no}", list.display()),
        })
    })
}

/// Marker of a CheXpert uncertain label in `Item::labels`; the loader replaces it at every fetch
/// (`resolve_uncertain`).
pub const UNCERTAIN: f32 = -1.0;

/// CheXpert CSV: a header row, the image path first, labels from the 6th column: 1 → 1, 0 → 0, -1 stays
/// `UNCERTAIN`, blank → `unknown_label` (the study's blank-cell value; -1 makes blanks uncertain too).
pub fn read_chexpert(list: &Path, image_dir: &Path, n_labels: usize, unknown_label: i8) -> Result<Vec<Item>> {
    chexpert_lines(&read_text(list)?, list, image_dir, n_labels, unknown_label).strict()
}

fn chexpert_lines(text: &str, list: &Path, image_dir: &Path, n_labels: usize, unknown_label: i8) -> SplitRead {
    parse_lines(text.lines().enumerate().skip(1), |line_no, line| {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 5 + n_labels {
            bail!(
                "{}:{line_no}: expected {} columns (path, 4 metadata, {n_labels} labels), found {}",
                list.display(),
                5 + n_labels,
                fields.len()
            );
        }
        let labels = fields[5..]
            .iter()
            .map(|field| match field.trim() {
                "" => Ok(f32::from(unknown_label)),
                _ => {
                    let v = parse_label(field, list, line_no)?;
                    if ![UNCERTAIN, 0.0, 1.0].contains(&v) {
                        bail!("{}:{line_no}: label `{}` is not 1, 0, -1 or blank", list.display(), field.trim());
                    }
                    Ok(v)
                }
            })
            .collect::<Result<Vec<f32>>>()?;
        Ok(Item {
            image: image_dir.join(fields[0].trim()),
            labels,
            masks: vec![],
            origin: format!("{}:{line_no}", list.display()),
        })
    })
}

/// Replaces every `UNCERTAIN` label by the policy's value: 1, 0, or a fresh U(0.55, 0.85) / U(0, 0.3) draw.
pub fn resolve_uncertain(labels: &mut [f32], policy: UncertainPolicy, rng: &mut Rng) {
    for label in labels.iter_mut().filter(|l| **l == UNCERTAIN) {
        *label = match policy {
            UncertainPolicy::Ones => 1.0,
            UncertainPolicy::Zeros => 0.0,
            UncertainPolicy::LsrOnes => rng.uniform(0.55, 0.85) as f32,
            UncertainPolicy::LsrZeros => rng.uniform(0.0, 0.3) as f32,
        };
    }
}

/// CSV with a header `path,label1,...`. Returns the header's label names and the items.
pub fn read_csv(list: &Path, image_dir: &Path) -> Result<(Vec<String>, Vec<Item>)> {
    let (names, read) = csv_lines(&read_text(list)?, list, image_dir)?;
    Ok((names, read.strict()?))
}

/// The header's label names and the rows; Err only for a missing or empty header.
fn csv_lines(text: &str, list: &Path, image_dir: &Path) -> Result<(Vec<String>, SplitRead)> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else { bail!("{}:1: the CSV has no header row", list.display()) };
    let names: Vec<String> = header.split(',').skip(1).map(|s| s.trim().to_string()).collect();
    if names.is_empty() {
        bail!("{}:1: the header names no label columns after the path", list.display());
    }
    let read = parse_lines(lines, |line_no, line| {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() + 1 {
            bail!("{}:{line_no}: expected {} labels, found {}", list.display(), names.len(), fields.len() - 1);
        }
        let labels = fields[1..].iter().map(|f| parse_label(f, list, line_no)).collect::<Result<Vec<f32>>>()?;
        Ok(Item {
            image: image_dir.join(fields[0].trim()),
            labels,
            masks: vec![],
            origin: format!("{}:{line_no}", list.display()),
        })
    });
    Ok((names, read))
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "tif", "tiff", "gif", "bmp", "dcm", "dicom"];

/// Mask name patterns tried in order: `{stem}` is the image's file stem, `{id}` the stem up to its first `_`.
pub const MASK_PATTERNS: &[&str] = &["{stem}", "{stem}_mask", "{stem}_manual1", "{id}_manual1", "{id}_mask"];

/// The images of a folder (by extension, `IMAGE_EXTENSIONS`) in name order.
pub fn sorted_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list image folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Pairs every image in `split/images` with a mask in each of `split/<mask dir>`, by the first pattern of
/// `MASK_PATTERNS` that matches every image. Returns the items and the pattern that matched.
pub fn read_image_mask(split: &Path, images: &str, mask_dirs: &[String]) -> Result<(Vec<Item>, &'static str)> {
    let image_files = sorted_images(&split.join(images))?;
    if image_files.is_empty() {
        bail!("image folder {} holds no images", split.join(images).display());
    }
    let mask_files: Vec<Vec<PathBuf>> =
        mask_dirs.iter().map(|d| sorted_images(&split.join(d))).collect::<Result<_>>()?;
    'pattern: for pattern in MASK_PATTERNS {
        let mut items = Vec::with_capacity(image_files.len());
        for image in &image_files {
            let stem = image.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let id = stem.split('_').next().unwrap_or(stem);
            let wanted = pattern.replace("{stem}", stem).replace("{id}", id);
            let mut masks = Vec::with_capacity(mask_files.len());
            for candidates in &mask_files {
                match candidates.iter().find(|m| m.file_stem().and_then(|s| s.to_str()) == Some(wanted.as_str())) {
                    Some(m) => masks.push(m.clone()),
                    None => continue 'pattern,
                }
            }
            items.push(Item { image: image.clone(), labels: vec![], masks, origin: split.display().to_string() });
        }
        return Ok((items, *pattern));
    }
    bail!(
        "no mask name pattern ({}) matches every image of {} in {}",
        MASK_PATTERNS.join(", "),
        split.join(images).display(),
        mask_dirs.iter().map(|d| split.join(d).display().to_string()).collect::<Vec<_>>().join(" + ")
    )
}

/// Reads one split of a dataset: `list` is a list file, or for image-mask datasets a split folder.
/// `unknown_label` is CheXpert's blank-cell value.
pub fn read_split(
    spec: &DatasetSpec,
    root: &Path,
    list: &Path,
    unknown_label: i8,
) -> Result<(Vec<Item>, Option<&'static str>)> {
    let read = read_split_all(spec, root, list, unknown_label)?;
    let pattern = read.mask_pattern;
    Ok((read.strict()?, pattern))
}

/// Reads one split to its end, past malformed lines (`data check` reports them all). Err only when the list
/// as a whole cannot be read (missing file, CSV header, image-mask folders).
pub fn read_split_all(spec: &DatasetSpec, root: &Path, list: &Path, unknown_label: i8) -> Result<SplitRead> {
    let image_dir = spec.image_dir(root);
    Ok(match spec.list_format {
        ListFormat::Chestxray14 => chestxray14_lines(&read_text(list)?, list, &image_dir, spec.labels.len()),
        ListFormat::Shenzhen => shenzhen_lines(&read_text(list)?, list, &image_dir),
        ListFormat::Chexpert => chexpert_lines(&read_text(list)?, list, &image_dir, spec.labels.len(), unknown_label),
        ListFormat::Csv => {
            let (names, read) = csv_lines(&read_text(list)?, list, &image_dir)?;
            if !spec.labels.is_empty() && names != spec.labels {
                bail!(
                    "{}:1: header labels {:?} differ from dataset {}'s {:?}",
                    list.display(),
                    names,
                    spec.name,
                    spec.labels
                );
            }
            read
        }
        ListFormat::ImageMask => {
            let layout = spec.masks.as_ref().context("image-mask dataset spec has no [masks] table")?;
            let (items, pattern) = read_image_mask(list, &layout.images, &layout.masks)?;
            SplitRead { items, bad_lines: vec![], mask_pattern: Some(pattern) }
        }
    })
}
