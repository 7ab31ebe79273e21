//! Datasets: specs (`dataset/*.toml`), split-list readers, decoding, the study's transforms, the batch
//! loader, and the synthetic demo datasets.
//!
//! # For the trainer
//! ```ignore
//! use medxfer::data::{self, Mode};
//! // RunSpec { dataset, data: DataSpec { root, *_list, anno_percent, image_size, workers, normalization }, seed }
//! let splits = data::resolve(&spec.dataset, &spec.data, &ctx.home, spec.seed)?;
//! // splits.train / .val / .test: Vec<Item>; splits.labels; splits.test_label_indices; splits.task;
//! // splits.metric; splits.normalization (DataSpec's override or the dataset's default).
//! let train = splits.loader(Mode::Train, batch_size, &spec.data, spec.seed);
//! for epoch in 0..epochs {
//!     for batch in train.epoch(epoch) {
//!         let batch = batch?; // images f32 [N,3,S,S] normalised; targets [N,C] labels or [N,1,S,S] masks
//!     }
//! }
//! let test = splits.loader(Mode::Test, test_batch_size, &spec.data, spec.seed);
//! // classification test batches: images [N,10,3,S,S] (ten crops; average the predictions)
//! ```
//! Train shuffles per epoch; every split keeps its last partial batch (the study's drop_last=False); val/test
//! keep list order. CheXpert's uncertain labels are replaced by the run's policy at every fetch.
//! The same seed gives the same batches for any worker count. `demo-cls` / `demo-seg` need no root: they are
//! generated under `<home>/datasets/` on first use.
//!
//! Decoded-image cache (`cache`, built by `medxfer data cache`): a classification loader uses it automatically
//! when `<home cache>/images/<dataset>-<root hash>/` holds the file for its mode and size; items whose source
//! changed since the build (length or mtime) are decoded from the source. Val/test batches are bit-identical
//! with and without it; train crops come from the cached short-side-512 image instead of the original.

pub mod cache;
pub mod check;
pub mod demo;
pub mod dicom;
pub mod image;
pub mod lists;
pub mod loader;
pub mod prepare;
pub mod protocol;
pub mod pyrandom;
pub mod segaug;
pub mod shipped;
pub mod spec;
pub mod split;
pub mod transform;

pub use lists::Item;
pub use loader::{Batch, Loader, LoaderConfig};
pub use spec::{DatasetSpec, Metric, Normalization};
pub use transform::Mode;

use crate::home::Home;
use crate::runs::record::{DataSpec, Task};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// A dataset resolved against a root and split lists, ready for loaders.
#[derive(Debug, Clone)]
pub struct Splits {
    pub spec: DatasetSpec,
    pub task: Task,
    pub metric: Metric,
    pub root: PathBuf,
    /// The list files (or split folders) read, train/val/test.
    pub lists: [PathBuf; 3],
    pub labels: Vec<String>,
    pub test_label_indices: Vec<usize>,
    pub normalization: Normalization,
    /// Segmentation: the mask name pattern that matched (e.g. `{id}_manual1`).
    pub mask_pattern: Option<&'static str>,
    /// The run's protocol settings, resolved against the dataset (`Protocol::resolve`).
    pub protocol: protocol::Protocol,
    /// The items after the `anno_percent` subset (train, or all three splits with `AnnoScope::AllSplits`).
    pub train: Vec<Item>,
    pub val: Vec<Item>,
    pub test: Vec<Item>,
    /// Where this dataset's decoded-image caches live (`cache::dir`).
    pub cache_dir: PathBuf,
}

/// Where a home keeps generated datasets (the demos).
pub fn datasets_dir(home: &Home) -> PathBuf {
    home.root.join("datasets")
}

/// The root a dataset is read from: `data.root`, or for the demos the home's generated copy.
pub fn dataset_root(spec: &DatasetSpec, root: Option<&Path>, home: &Home) -> Result<PathBuf> {
    if let Some(root) = root {
        return Ok(root.to_path_buf());
    }
    if spec.is_demo() {
        let (cls, seg) = demo::ensure(&datasets_dir(home))?;
        return Ok(if spec.name == "demo-cls" { cls } else { seg });
    }
    bail!(
        "dataset {} needs a root folder: pass --root DIR (or set root under [datasets.{}] in config.toml)",
        spec.name,
        spec.name
    )
}

/// A split's sample list as `splits/<role>.txt` holds it: one image path per line, relative to `root`.
pub fn sample_list_text<'a>(root: &Path, images: impl Iterator<Item = &'a Path>) -> String {
    images.map(|image| format!("{}\n", image.strip_prefix(root).unwrap_or(image).display())).collect()
}

/// The sample list of an image-mask split folder before any subset, as `sample_list_text` writes it (the
/// images in name order; masks are paired with them at run time).
pub fn split_folder_list_text(spec: &DatasetSpec, root: &Path, split: &Path) -> Result<String> {
    let Some(layout) = spec.masks.as_ref() else {
        bail!("dataset {} names split folders but its spec has no [masks] table", spec.name);
    };
    let images = lists::sorted_images(&split.join(&layout.images))?;
    Ok(sample_list_text(root, images.iter().map(PathBuf::as_path)))
}

/// Resolves a run's dataset into item lists (see the module docs).
/// (`_seed` is unused: CheXpert's uncertain labels are drawn by the loader at every fetch.)
pub fn resolve(dataset: &str, data: &DataSpec, home: &Home, _seed: u64) -> Result<Splits> {
    let spec = DatasetSpec::load(dataset)?;
    let root = dataset_root(&spec, data.root.as_deref(), home)?;
    let lists = [
        spec.list_for(&root, "train", data.train_list.as_deref())?,
        spec.list_for(&root, "val", data.val_list.as_deref())?,
        spec.list_for(&root, "test", data.test_list.as_deref())?,
    ];
    let normalization = match &data.normalization {
        Some(n) => Normalization::parse(n)?,
        None => spec.normalization,
    };
    let mut spec = spec;
    if spec.labels.is_empty() && spec.list_format == spec::ListFormat::Csv {
        spec.labels = lists::read_csv(&lists[0], &spec.image_dir(&root))?.0;
    }
    let mut protocol = data.protocol.clone();
    protocol.resolve(&spec, data.image_size)?;
    let unknown_label = protocol.unknown_label.unwrap_or(0);
    let (train, mask_pattern) = lists::read_split(&spec, &root, &lists[0], unknown_label)?;
    let (val, _) = lists::read_split(&spec, &root, &lists[1], unknown_label)?;
    let (test, _) = lists::read_split(&spec, &root, &lists[2], unknown_label)?;
    if data.anno_percent == 0 || data.anno_percent > 100 {
        bail!("anno_percent {} is not in 1..=100", data.anno_percent);
    }
    let cache_dir = cache::dir(&home.cache, &spec.name, &root);
    let all_splits = protocol.anno_scope == protocol::AnnoScope::AllSplits;
    let subset = |role: &str, items: Vec<Item>, applies: bool| -> Result<Vec<Item>> {
        if !applies {
            return Ok(items);
        }
        let kept: Vec<Item> =
            pyrandom::anno_subset(items.len(), data.anno_percent).into_iter().map(|i| items[i].clone()).collect();
        if kept.is_empty() {
            bail!(
                "anno_percent {} leaves the {role} split of {} empty ({} images)",
                data.anno_percent,
                spec.name,
                items.len()
            );
        }
        Ok(kept)
    };
    let train = subset("train", train, true)?;
    let val = subset("val", val, all_splits)?;
    let test = subset("test", test, all_splits)?;
    Ok(Splits {
        task: spec.task,
        metric: spec.metric,
        labels: spec.labels.clone(),
        test_label_indices: spec.test_label_indices()?,
        spec,
        root,
        lists,
        normalization,
        mask_pattern,
        protocol,
        train,
        val,
        test,
        cache_dir,
    })
}

impl Splits {
    pub fn items(&self, mode: Mode) -> &[Item] {
        match mode {
            Mode::Train => &self.train,
            Mode::Val => &self.val,
            Mode::Test => &self.test,
        }
    }

    /// A loader over one split with the study's settings for it.
    pub fn loader(&self, mode: Mode, batch_size: usize, data: &DataSpec, seed: u64) -> Loader {
        let mut config =
            LoaderConfig::for_split(self.task, mode, batch_size, data.image_size as usize, self.normalization);
        config.workers = data.workers.max(1);
        config.seed = seed;
        config.uncertain = self.protocol.uncertain_policy;
        config.segmentation = self.segmentation(data);
        // the segmentation cache holds nearest-resized, raw-decoded images (the study's Montgomery/SIIM path)
        let seg = &config.segmentation;
        let cached = self.task == Task::Classification
            || (seg.resize == segaug::SegResize::Nearest && seg.dicom == dicom::Decoding::Raw);
        let loader = Loader::new(self.items(mode).to_vec(), config);
        match self.cache_view(mode, data.image_size as usize).filter(|_| cached) {
            Some(view) => loader.with_cache(view),
            None => loader,
        }
    }

    /// The segmentation settings of a run: spec.toml's, else the study's for this dataset.
    pub fn segmentation(&self, data: &DataSpec) -> segaug::SegOptions {
        data.segmentation.unwrap_or_else(|| segaug::SegOptions::study(&self.spec.name))
    }

    /// The decoded-image cache for a loader of `mode`, when one exists with valid entries.
    pub fn cache_view(&self, mode: Mode, image_size: usize) -> Option<cache::CacheView> {
        let file = self.cache_dir.join(cache::Resize::for_loader(self.task, mode, image_size).file_name());
        let opened = cache::ImageCache::open(&file)
            .inspect_err(|e| tracing::warn!("{e:#}; decoding the sources instead"))
            .ok()
            .flatten()?;
        let view = cache::CacheView::new(std::sync::Arc::new(opened), self.items(mode));
        tracing::info!("image cache {}: {} of {} {mode:?} images valid", file.display(), view.hits(), view.len());
        (view.hits() > 0).then_some(view)
    }

    /// Writes the samples each split uses, after subsetting, as `<dir>/{train,val,test}.txt`: one image path
    /// (relative to the root) per line, in the subset's order (atomic writes).
    pub fn write_lists(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        for (role, items) in [("train", &self.train), ("val", &self.val), ("test", &self.test)] {
            let text = sample_list_text(&self.root, items.iter().map(|item| item.image.as_path()));
            crate::atomic::write(&dir.join(format!("{role}.txt")), text.as_bytes())?;
        }
        Ok(())
    }

    /// Every image and mask file of the three splits once, in list order.
    pub fn all_sources(&self) -> Vec<(PathBuf, cache::Kind)> {
        let mut seen = std::collections::HashSet::new();
        let items = [&self.train, &self.val, &self.test].into_iter().flatten();
        let sources = items.flat_map(|item| {
            let masks = item.masks.iter().map(|m| (m.clone(), cache::Kind::Mask));
            std::iter::once((item.image.clone(), cache::Kind::Image)).chain(masks)
        });
        sources.filter(|source| seen.insert(source.clone())).collect()
    }
}
