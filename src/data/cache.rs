//! The decoded-image cache: every source image of a dataset decoded and resized once to a transform's working
//! size, stored as uint8 in one memory-mapped file per dataset and size, so that later epochs skip decoding.
//!
//! Where: `<home cache>/images/<dataset>-<hash of the root>/`, one file per working size:
//! - `square-<N>.u8c`: resized to N×N exactly as the val/test transform's `Resize((N, N))` (N = 256 for
//!   image_size 224), so val and test batches from the cache are bit-identical to decoding the source;
//! - `short-<2N>.u8c`: for training, resized (never enlarged) so that the shorter side is 2N (512), aspect kept.
//!   RandomResizedCrop then crops this image instead of the original: the crop's scale and ratio keep their
//!   meaning, and a crop of the median scale (~54% of the area, ~376 px) is still shrunk to 224, so only the
//!   smallest crops lose detail against the original resolution.
//!
//! Segmentation transforms all start by resizing to the model's input, so a segmentation dataset has one file,
//! `nearest-<image_size>.u8c` (OpenCV's nearest neighbour, the study's resize), bit-identical in every mode; a
//! run with `seg_resize = linear` (DRIVE) decodes its sources. Each mask file is an entry of its own: reduced to one
//! channel (the maximum over channels, which is what the loader thresholds) and resized with nearest neighbour.
//!
//! File layout: `MAGIC | pixels of every entry (HWC u8, back to back) | index JSON | u64 LE index length | MAGIC`.
//! The index records each source's absolute path, byte length and mtime (ns), its entry's offset and shape, and
//! a hash of the source list. An entry whose source has changed (length or mtime differs) is stale: the loader
//! decodes that source instead, and the next `medxfer data cache` re-decodes it while copying the rest. The
//! file is written under a temporary name and renamed, so a reader sees the old cache or the new one.

use super::image::Img;
use super::lists::Item;
use super::transform::{Mode, resize_size};
use crate::runs::record::Task;
use anyhow::{Context, Result, anyhow, bail};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Instant, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"MXIMGC01";
const VERSION: u32 = 1;

/// How sources are resized into a cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// N×N (the val/test `Resize((N, N))`).
    Square(usize),
    /// The shorter side to N, aspect kept, never enlarged (the train transform's input).
    Short(usize),
    /// N×N with OpenCV's nearest neighbour (the study's segmentation resize).
    Nearest(usize),
}

impl Resize {
    /// The cache a classification loader of `mode` reads for `image_size`: square 256 (val/test) or short side
    /// 512 (train).
    pub fn for_mode(mode: Mode, image_size: usize) -> Resize {
        Resize::for_loader(Task::Classification, mode, image_size)
    }

    /// The cache a loader reads: classification as `for_mode`; segmentation square `image_size` in every mode,
    /// since its transforms all start by resizing to it.
    pub fn for_loader(task: Task, mode: Mode, image_size: usize) -> Resize {
        let n = Resize::square_size(task, image_size);
        match (task, mode) {
            (Task::Segmentation, _) => Resize::Nearest(n),
            (_, Mode::Train) => Resize::Short(2 * n),
            _ => Resize::Square(n),
        }
    }

    /// The cache files a dataset of `task` needs for val/test working size `n`.
    pub fn all_for(task: Task, n: usize) -> Vec<Resize> {
        match task {
            Task::Classification => vec![Resize::Square(n), Resize::Short(2 * n)],
            Task::Segmentation => vec![Resize::Nearest(n)],
        }
    }

    /// N, the val/test working size of a task: 256 for a classification image_size of 224, 224 for segmentation.
    pub fn square_size(task: Task, image_size: usize) -> usize {
        match task {
            Task::Classification => resize_size(image_size),
            Task::Segmentation => image_size,
        }
    }

    /// The output size of an image of `width` × `height`.
    fn target(self, width: usize, height: usize) -> (usize, usize) {
        match self {
            Resize::Square(n) | Resize::Nearest(n) => (n, n),
            Resize::Short(n) => {
                let short = width.min(height);
                if short <= n {
                    return (width, height);
                }
                let scale = |side: usize| ((side as f64 * n as f64 / short as f64).round() as usize).max(1);
                (scale(width), scale(height))
            }
        }
    }

    pub fn file_name(self) -> String {
        match self {
            Resize::Square(n) => format!("square-{n}.u8c"),
            Resize::Short(n) => format!("short-{n}.u8c"),
            Resize::Nearest(n) => format!("nearest-{n}.u8c"),
        }
    }

    pub fn apply(self, img: &Img) -> Img {
        let (w, h) = self.target(img.width, img.height);
        match self {
            Resize::Nearest(_) => super::segaug::resize_nearest(img, w, h),
            _ => img.resize_bilinear(w, h),
        }
    }

    /// A mask: one channel (the maximum over channels), resized with nearest neighbour to `apply`'s size.
    pub fn apply_mask(self, mask: &Img) -> Img {
        let (w, h) = self.target(mask.width, mask.height);
        super::segaug::resize_nearest(&mask.channel_max(), w, h)
    }
}

/// What a source file holds: an image (resized bilinear) or a segmentation mask (nearest, one channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Image,
    Mask,
}

/// The folder of a dataset's caches under the home's cache: `images/<dataset>-<12 hex of sha256(root)>`.
pub fn dir(home_cache: &Path, dataset: &str, root: &Path) -> PathBuf {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let hash = hex::encode(Sha256::digest(root.as_os_str().as_encoded_bytes()));
    let safe: String = dataset.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    home_cache.join("images").join(format!("{safe}-{}", &hash[..12]))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub path: PathBuf,
    pub len: u64,
    pub mtime_ns: u64,
}

impl Source {
    /// The source's current length and mtime.
    pub fn stat(path: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read image {}", path.display()))?;
        let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos());
        Ok(Source { path: path.to_path_buf(), len: meta.len(), mtime_ns: mtime_ns.unwrap_or(0) as u64 })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub source: Source,
    pub offset: u64,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    #[serde(default)]
    pub kind: Kind,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.width * self.height * self.channels
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    pub dataset: String,
    pub resize: Resize,
    /// sha256 of the sorted source paths, one per line.
    pub sources_hash: String,
    pub entries: Vec<Entry>,
}

/// An open cache file.
pub struct ImageCache {
    pub path: PathBuf,
    pub index: Index,
    map: Mmap,
    by_path: HashMap<(PathBuf, Kind), usize>,
}

impl ImageCache {
    /// Opens a cache file; `Ok(None)` when there is none.
    pub fn open(path: &Path) -> Result<Option<ImageCache>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("cannot open image cache {}: {e}", path.display())),
        };
        // SAFETY: the file is only ever replaced by rename, never written in place, so the mapping stays valid.
        let map = unsafe { Mmap::map(&file) }.with_context(|| format!("cannot map image cache {}", path.display()))?;
        let index = read_index(&map).map_err(|e| anyhow!("image cache {} is unreadable: {e}", path.display()))?;
        let by_path = index.entries.iter().enumerate().map(|(i, e)| ((e.source.path.clone(), e.kind), i)).collect();
        Ok(Some(ImageCache { path: path.to_path_buf(), index, map, by_path }))
    }

    /// The image entry of a source whose length and mtime are unchanged.
    pub fn valid_entry(&self, path: &Path) -> Option<usize> {
        self.valid_entry_of(path, Kind::Image)
    }

    /// The entry of a source of `kind` whose length and mtime are unchanged.
    pub fn valid_entry_of(&self, path: &Path, kind: Kind) -> Option<usize> {
        let &i = self.by_path.get(&(path.to_path_buf(), kind))?;
        let now = Source::stat(path).ok()?;
        (now == self.index.entries[i].source).then_some(i)
    }

    pub fn image(&self, entry: usize) -> Img {
        let e = &self.index.entries[entry];
        let start = e.offset as usize;
        Img {
            width: e.width,
            height: e.height,
            channels: e.channels,
            data: self.map[start..start + e.bytes()].to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.index.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }
}

fn read_index(map: &[u8]) -> Result<Index> {
    let n = map.len();
    if n < 32 || &map[..8] != MAGIC || &map[n - 8..] != MAGIC {
        bail!("it is not a medxfer image cache (or it was cut short)");
    }
    let len = u64::from_le_bytes(map[n - 16..n - 8].try_into()?) as usize;
    let start = (n - 16).checked_sub(len).filter(|&s| s >= 8).ok_or_else(|| anyhow!("its index length is wrong"))?;
    let index: Index = serde_json::from_slice(&map[start..n - 16])?;
    if index.version != VERSION {
        bail!("it has version {}, this medxfer reads version {VERSION}", index.version);
    }
    for e in &index.entries {
        if e.offset < 8 || e.offset as usize + e.bytes() > start || !matches!(e.channels, 1 | 3) {
            bail!("the entry of {} lies outside the pixel area", e.source.path.display());
        }
    }
    Ok(index)
}

/// A loader's view of a cache: for each of its items, the entries to read when the sources are unchanged.
pub struct CacheView {
    cache: Arc<ImageCache>,
    entries: Vec<Option<usize>>,
    /// Per item, the entries of all its mask files, when every one is valid.
    masks: Vec<Option<Vec<usize>>>,
}

impl CacheView {
    /// Stats every item's sources once; changed or missing ones are decoded from the source by the loader.
    pub fn new(cache: Arc<ImageCache>, items: &[Item]) -> CacheView {
        let entries = items.iter().map(|item| cache.valid_entry(&item.image)).collect();
        let masks = items
            .iter()
            .map(|item| item.masks.iter().map(|m| cache.valid_entry_of(m, Kind::Mask)).collect::<Option<Vec<_>>>())
            .collect();
        CacheView { cache, entries, masks }
    }

    /// The cached image of item `i`, if it is valid.
    pub fn image(&self, i: usize) -> Option<Img> {
        self.entries.get(i).copied().flatten().map(|e| self.cache.image(e))
    }

    /// The cached masks of item `i` (one-channel), if the item has masks and all of them are valid.
    pub fn masks(&self, i: usize) -> Option<Vec<Img>> {
        let entries = self.masks.get(i)?.as_ref().filter(|m| !m.is_empty())?;
        Some(entries.iter().map(|&e| self.cache.image(e)).collect())
    }

    pub fn hits(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn file(&self) -> &Path {
        &self.cache.path
    }
}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub file: PathBuf,
    pub dataset: String,
    pub resize: Resize,
    pub images: usize,
    /// Entries copied from the previous cache (source unchanged).
    pub reused: usize,
    /// Sources decoded (new, or changed since the previous cache).
    pub decoded: usize,
    pub bytes: u64,
    pub seconds: f64,
}

/// Decodes `sources` (deduplicated, order kept) into `dir/<resize file name>`, reusing the unchanged entries of
/// the file already there; `progress(done, total)` is called as images are written.
pub fn build(
    dir: &Path,
    dataset: &str,
    sources: &[(PathBuf, Kind)],
    resize: Resize,
    workers: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<BuildReport> {
    let started = Instant::now();
    let mut seen = std::collections::HashSet::new();
    let sources: Vec<(PathBuf, Kind)> = sources.iter().filter(|s| seen.insert(*s)).cloned().collect();
    crate::home::create_private_dir(dir)?;
    let path = dir.join(resize.file_name());
    let old = ImageCache::open(&path).unwrap_or_else(|e| {
        tracing::warn!("{e:#}; rebuilding it");
        None
    });
    let old = old.filter(|c| c.index.resize == resize);
    let stats = sources.iter().map(|(p, _)| Source::stat(p)).collect::<Result<Vec<_>>>()?;
    let reuse: Vec<Option<usize>> = stats
        .iter()
        .zip(&sources)
        .map(|(s, (path, kind))| {
            let old = old.as_ref()?;
            old.by_path.get(&(path.clone(), *kind)).copied().filter(|&i| old.index.entries[i].source == *s)
        })
        .collect();
    let to_decode: Vec<usize> = (0..sources.len()).filter(|&i| reuse[i].is_none()).collect();

    let tmp = crate::atomic::temp_path(&path);
    let result = (|| -> Result<Index> {
        let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)?;
        let mut offset = MAGIC.len() as u64;
        let mut entries: Vec<Option<Entry>> = vec![None; sources.len()];
        let mut done = 0;
        let mut put = |i: usize, img: &Img, out: &mut BufWriter<File>| -> Result<()> {
            out.write_all(&img.data).with_context(|| format!("cannot write {}", tmp.display()))?;
            let (width, height, channels) = (img.width, img.height, img.channels);
            let kind = sources[i].1;
            entries[i] = Some(Entry { source: stats[i].clone(), offset, width, height, channels, kind });
            offset += img.data.len() as u64;
            done += 1;
            progress(done, sources.len());
            Ok(())
        };
        if let Some(old) = &old {
            for (i, e) in reuse.iter().enumerate() {
                if let Some(e) = e {
                    put(i, &old.image(*e), &mut out)?;
                }
            }
        }
        decode_parallel(&sources, &to_decode, resize, workers, |i, img| put(i, &img, &mut out))?;
        let mut sorted: Vec<String> = sources.iter().map(|(p, _)| p.to_string_lossy().into_owned()).collect();
        sorted.sort();
        let index = Index {
            version: VERSION,
            dataset: dataset.to_string(),
            resize,
            sources_hash: hex::encode(Sha256::digest(sorted.join("\n").as_bytes())),
            entries: entries.into_iter().map(|e| e.expect("every source was written")).collect(),
        };
        let json = serde_json::to_vec(&index)?;
        out.write_all(&json)?;
        out.write_all(&(json.len() as u64).to_le_bytes())?;
        out.write_all(MAGIC)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        crate::atomic::commit(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(index)
    })();
    let index = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(BuildReport {
        file: path.clone(),
        dataset: dataset.to_string(),
        resize,
        images: index.entries.len(),
        reused: sources.len() - to_decode.len(),
        decoded: to_decode.len(),
        bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Decodes and resizes `which` of `sources` on `workers` threads, handing each image to `write` on this thread
/// (in completion order). The first failure stops the workers and is returned.
fn decode_parallel(
    sources: &[(PathBuf, Kind)],
    which: &[usize],
    resize: Resize,
    workers: usize,
    mut write: impl FnMut(usize, Img) -> Result<()>,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = workers.clamp(1, which.len().max(1));
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<Img>)>(workers * 2);
        for _ in 0..workers {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(&i) = which.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
                    let (path, kind) = &sources[i];
                    let img = Img::open(path).map(|img| match kind {
                        Kind::Image => resize.apply(&img),
                        Kind::Mask => resize.apply_mask(&img),
                    });
                    if tx.send((i, img)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let result = rx.iter().try_for_each(|(i, img)| write(i, img?));
        if result.is_err() {
            stop.store(true, Ordering::Relaxed);
            drop(rx);
        }
        result
    })
}
