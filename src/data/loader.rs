//! Batches for training and evaluation: worker threads decode and transform samples, a bounded number of
//! batches is in flight, and batches come out in order. Shuffling and augmentation depend only on
//! (seed, epoch, item), so a seed gives the same batches whatever the worker count. With a `CacheView`
//! (`data::cache`), samples start from the cached, already resized image (and masks) when their sources are
//! unchanged, and from the decoded sources otherwise.

use super::cache::CacheView;
use super::image::Img;
use super::lists::Item;
use super::segaug::{self, SegOptions};
use super::spec::{Normalization, UncertainPolicy};
use super::transform::{Mode, Rng, classification_views, write_mask, write_normalized};
use crate::runs::record::Task;
use anyhow::{Result, anyhow};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub task: Task,
    pub mode: Mode,
    pub batch_size: usize,
    pub image_size: usize,
    pub normalization: Normalization,
    pub workers: usize,
    pub seed: u64,
    /// Reshuffle every epoch (training); otherwise list order.
    pub shuffle: bool,
    /// Drop a last incomplete batch (the study never does).
    pub drop_last: bool,
    /// CheXpert: what an uncertain label (`lists::UNCERTAIN`) becomes, drawn again at every fetch.
    pub uncertain: Option<UncertainPolicy>,
    /// Batches decoded ahead of the consumer.
    pub prefetch: usize,
    /// Copy each batch's images into page-locked host memory for this CUDA device, so that the copy to it can
    /// run asynchronously; without CUDA the batch stays in ordinary memory.
    pub pin_memory: Option<Device>,
    /// Segmentation: resize, mask threshold and augmentation (`data::segaug`).
    pub segmentation: SegOptions,
}

impl LoaderConfig {
    /// The study's settings for a split: train shuffles; no split drops its last partial batch.
    pub fn for_split(task: Task, mode: Mode, batch_size: usize, image_size: usize, norm: Normalization) -> Self {
        LoaderConfig {
            task,
            mode,
            batch_size,
            image_size,
            normalization: norm,
            workers: 2,
            seed: 0,
            shuffle: mode == Mode::Train,
            drop_last: false,
            uncertain: None,
            prefetch: 4,
            pin_memory: None,
            segmentation: SegOptions::study(""),
        }
    }
}

/// Images f32 normalised: [N,3,H,W], or [N,10,3,H,W] for classification test (ten crops).
/// Targets: [N,C] labels (classification) or [N,1,H,W] 0/1 masks (segmentation).
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub targets: Tensor,
    /// Positions of the batch's samples in the item list.
    pub indices: Vec<usize>,
    /// Whether `images` is in page-locked memory (`LoaderConfig::pin_memory`).
    pub pinned: bool,
}

impl Batch {
    /// The images on `device`; from pinned memory the copy is asynchronous (ordered on the device's stream).
    pub fn images_on(&self, device: Device) -> Tensor {
        let non_blocking = self.pinned && device.is_cuda();
        self.images.to_device_(device, self.images.kind(), non_blocking, false)
    }
}

/// (batch number in the epoch, item positions)
type Job = (usize, Vec<usize>);

pub struct Loader {
    items: Arc<Vec<Item>>,
    config: LoaderConfig,
    cache: Option<Arc<CacheView>>,
    /// Epochs started so far: uncertain labels are drawn per fetch, also when one epoch number is read twice
    /// (validation reads epoch 0 every time).
    fetches: std::sync::atomic::AtomicU64,
}

struct RawBatch {
    /// [N × views × 3 × S × S], written in place by the worker
    images: Tensor,
    pinned: bool,
    targets: Vec<f32>,
    indices: Vec<usize>,
}

/// Salt of the uncertain-label draws' stream, apart from augmentation's.
const LABEL_DRAWS: u64 = 0x4C53_525F_4452_4157;

fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut rng = Rng::new(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    rng.next_u64()
}

impl Loader {
    pub fn new(items: Vec<Item>, config: LoaderConfig) -> Loader {
        Loader { items: Arc::new(items), config, cache: None, fetches: Default::default() }
    }

    /// Reads classification samples from a decoded-image cache built for this loader's mode and size
    /// (`cache::Resize::for_mode`); the view must have been made for the same items.
    /// Pins batches for `device` when it is a CUDA device (`LoaderConfig::pin_memory`).
    pub fn pinned_for(mut self, device: Device) -> Loader {
        self.config.pin_memory = device.is_cuda().then_some(device);
        self
    }

    pub fn with_cache(mut self, cache: CacheView) -> Loader {
        assert_eq!(cache.len(), self.items.len(), "a cache view made for other items");
        self.cache = Some(Arc::new(cache));
        self
    }

    /// The cache in use, if any.
    pub fn cache(&self) -> Option<&CacheView> {
        self.cache.as_deref()
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.items.len(), self.config.batch_size.max(1));
        if self.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// The sample order of an epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        if self.config.shuffle {
            let mut rng = Rng::new(mix(self.config.seed, epoch, 0x5348_5546));
            for i in (1..order.len()).rev() {
                order.swap(i, rng.int_inclusive(0, i));
            }
        }
        order
    }

    /// Starts the workers for one epoch; iterate the result for its batches.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let fetch = self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let order = self.order(epoch);
        let b = self.config.batch_size.max(1);
        let jobs: Vec<Vec<usize>> = order.chunks(b).take(self.batches_per_epoch()).map(|c| c.to_vec()).collect();
        let (job_tx, job_rx) = channel::<Job>();
        let (result_tx, result_rx) = channel::<(usize, Result<RawBatch>)>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..self.config.workers.max(1))
            .map(|_| {
                let (jobs, results) = (Arc::clone(&job_rx), result_tx.clone());
                let (items, config, cache) = (Arc::clone(&self.items), self.config.clone(), self.cache.clone());
                std::thread::spawn(move || worker(jobs, results, items, cache, config, (epoch, fetch)))
            })
            .collect();
        let mut iter = EpochIter {
            jobs: jobs.into_iter().enumerate().collect::<Vec<_>>().into_iter(),
            job_tx: Some(job_tx),
            results: result_rx,
            ready: BTreeMap::new(),
            next: 0,
            total: 0,
            config: self.config.clone(),
            workers,
        };
        iter.total = iter.jobs.len();
        for _ in 0..self.config.prefetch.max(1) {
            iter.dispatch();
        }
        iter
    }
}

fn worker(
    jobs: Arc<Mutex<Receiver<Job>>>,
    results: Sender<(usize, Result<RawBatch>)>,
    items: Arc<Vec<Item>>,
    cache: Option<Arc<CacheView>>,
    config: LoaderConfig,
    (epoch, fetch): (u64, u64),
) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((k, indices)) = job else { return };
        let batch = build_batch(&items, cache.as_deref(), &indices, &config, (epoch, fetch));
        if results.send((k, batch)).is_err() {
            return;
        }
    }
}

/// Views per sample: ten crops for classification test, one otherwise.
fn views_per_sample(config: &LoaderConfig) -> usize {
    if (config.task, config.mode) == (Task::Classification, Mode::Test) { 10 } else { 1 }
}

/// Decodes (or takes from the cache: `cached`, `cached_masks`) and transforms one sample, writing its image views
/// into `images` (views × 3 × S × S values) and appending its targets.
pub fn load_sample(
    item: &Item,
    (cached, cached_masks): (Option<Img>, Option<Vec<Img>>),
    config: &LoaderConfig,
    rng: &mut Rng,
    images: &mut [f32],
    targets: &mut Vec<f32>,
) -> Result<()> {
    let img = match cached {
        Some(img) => img,
        None => Img::open_with(&item.image, config.segmentation.dicom)
            .map_err(|e| anyhow!("{} (listed at {}): {e:#}", item.image.display(), item.origin))?,
    };
    match config.task {
        Task::Classification => {
            let views = classification_views(&img, config.mode, config.image_size, rng);
            let per_view = images.len() / views.len();
            for (view, out) in views.iter().zip(images.chunks_exact_mut(per_view)) {
                write_normalized(view, config.normalization, out);
            }
            targets.extend_from_slice(&item.labels);
        }
        Task::Segmentation => {
            let mut mask = Img::new(img.width, img.height, 1);
            let parts = match cached_masks {
                Some(parts) => parts,
                None => item.masks.iter().map(|path| Img::open(path)).collect::<Result<Vec<_>>>()?,
            };
            for part in parts {
                let part = part.channel_max().resize_nearest(img.width, img.height);
                for (m, &v) in mask.data.iter_mut().zip(&part.data) {
                    *m = (*m).max(v);
                }
            }
            let (img, mask) =
                segaug::study_pair(&img, &mask, config.mode, config.image_size, &config.segmentation, rng);
            write_normalized(&img, config.normalization, images);
            let start = targets.len();
            targets.resize(start + mask.width * mask.height, 0.0);
            write_mask(&mask, &mut targets[start..]);
        }
    }
    Ok(())
}

fn build_batch(
    items: &[Item],
    cache: Option<&CacheView>,
    indices: &[usize],
    config: &LoaderConfig,
    (epoch, fetch): (u64, u64),
) -> Result<RawBatch> {
    let per_sample = views_per_sample(config) * 3 * config.image_size * config.image_size;
    let images = Tensor::empty([(indices.len() * per_sample) as i64], (Kind::Float, Device::Cpu));
    // SAFETY: a new contiguous CPU f32 tensor of that many elements, owned here alone while the slice lives;
    // every element is written below before the tensor is read.
    let pixels = unsafe { std::slice::from_raw_parts_mut(images.data_ptr() as *mut f32, indices.len() * per_sample) };
    let mut targets = Vec::new();
    for (&i, out) in indices.iter().zip(pixels.chunks_exact_mut(per_sample)) {
        let mut rng = Rng::new(mix(config.seed, epoch, i as u64 + 1));
        let image = cache.and_then(|c| c.image(i));
        // cached masks have the cached image's size: with a decoded source image, decode the masks too
        let masks = cache.filter(|_| image.is_some()).and_then(|c| c.masks(i));
        let cached = (image, masks);
        let first_target = targets.len();
        load_sample(&items[i], cached, config, &mut rng, out, &mut targets)?;
        if let Some(policy) = config.uncertain {
            let mut label_rng = Rng::new(mix(config.seed ^ LABEL_DRAWS, fetch, i as u64 + 1));
            super::lists::resolve_uncertain(&mut targets[first_target..], policy, &mut label_rng);
        }
    }
    let pinned = config.pin_memory.and_then(|device| images.f_pin_memory(device).ok());
    Ok(RawBatch { pinned: pinned.is_some(), images: pinned.unwrap_or(images), targets, indices: indices.to_vec() })
}

pub struct EpochIter {
    jobs: std::vec::IntoIter<Job>,
    job_tx: Option<Sender<Job>>,
    results: Receiver<(usize, Result<RawBatch>)>,
    ready: BTreeMap<usize, Result<RawBatch>>,
    next: usize,
    total: usize,
    config: LoaderConfig,
    workers: Vec<JoinHandle<()>>,
}

impl EpochIter {
    fn dispatch(&mut self) {
        if let (Some(job), Some(tx)) = (self.jobs.next(), self.job_tx.as_ref()) {
            let _ = tx.send(job);
        }
    }

    fn to_tensors(&self, raw: RawBatch) -> Batch {
        let n = raw.indices.len() as i64;
        let s = self.config.image_size as i64;
        let images = raw.images;
        let targets = Tensor::from_slice(&raw.targets);
        let images = match (self.config.task, self.config.mode) {
            (Task::Classification, Mode::Test) => images.view([n, 10, 3, s, s]),
            _ => images.view([n, 3, s, s]),
        };
        let targets = match self.config.task {
            Task::Classification => targets.view([n, -1]),
            Task::Segmentation => targets.view([n, 1, s, s]),
        };
        Batch { images, targets, indices: raw.indices, pinned: raw.pinned }
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        while !self.ready.contains_key(&self.next) {
            match self.results.recv() {
                Ok((k, raw)) => {
                    self.ready.insert(k, raw);
                }
                Err(_) => return Some(Err(anyhow!("the data loader's workers stopped unexpectedly"))),
            }
        }
        let raw = self.ready.remove(&self.next)?;
        self.next += 1;
        self.dispatch();
        Some(raw.map(|r| self.to_tensors(r)))
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.job_tx = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}
