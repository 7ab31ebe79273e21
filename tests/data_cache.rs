//! The decoded-image cache end to end: `medxfer data cache` on the demo dataset, reuse of unchanged entries,
//! a changed source invalidating its entry (the loader decodes it; the next build re-decodes it), val/test
//! batches identical with and without the cache, and a damaged cache file refused with a sentence naming it.

use medxfer::data::cache::{CacheView, ImageCache, Kind, Resize};
use medxfer::data::image::Img;
use medxfer::data::{self, Mode};
use medxfer::home::Home;
use medxfer::runs::record::DataSpec;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// image_size 35 gives the val/test working size 40 (35 * 8 / 7): small, so the test stays quick.
const IMAGE_SIZE: usize = 35;
const SIZE: usize = 40;

fn cache_cli(home: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["data", "cache", "demo-cls", "--size", &SIZE.to_string(), "--workers", "2", "--json"])
        .env("MEDXFER_HOME", home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "data cache failed: {stderr}");
    assert!(stderr.contains("wrote ") && stderr.contains("square-40.u8c"), "{stderr}");
    serde_json::from_slice(&out.stdout).expect("data cache --json printed no JSON")
}

fn counts(report: &serde_json::Value) -> Vec<(u64, u64, u64)> {
    let n = |r: &serde_json::Value, k: &str| r[k].as_u64().unwrap();
    report.as_array().unwrap().iter().map(|r| (n(r, "images"), n(r, "reused"), n(r, "decoded"))).collect()
}

fn batches(splits: &data::Splits, mode: Mode, with_cache: bool) -> Vec<(Vec<usize>, tch::Tensor)> {
    let spec = DataSpec { image_size: IMAGE_SIZE as u32, workers: 2, ..DataSpec::default() };
    let mut loader = splits.loader(mode, 16, &spec, 3);
    if !with_cache {
        let config = medxfer::data::LoaderConfig {
            workers: 2,
            seed: 3,
            ..medxfer::data::LoaderConfig::for_split(splits.task, mode, 16, IMAGE_SIZE, splits.normalization)
        };
        loader = medxfer::data::Loader::new(splits.items(mode).to_vec(), config);
    }
    assert_eq!(loader.cache().is_some(), with_cache, "{mode:?}: cache in use");
    loader.epoch(0).map(|b| b.unwrap()).map(|b| (b.indices, b.images)).collect()
}

#[test]
fn cache_serves_the_loader_and_a_changed_source_is_decoded_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(dir.path()).unwrap();
    let splits = data::resolve("demo-cls", &DataSpec::default(), &home, 0).unwrap();
    assert!(splits.loader(Mode::Val, 16, &DataSpec::default(), 0).cache().is_none(), "no cache before a build");

    // First build decodes every image, the second reuses every entry.
    assert_eq!(counts(&cache_cli(dir.path())), vec![(500, 0, 500), (500, 0, 500)]);
    assert_eq!(counts(&cache_cli(dir.path())), vec![(500, 500, 0), (500, 500, 0)]);
    let names: Vec<String> =
        std::fs::read_dir(&splits.cache_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "two cache files and no temporaries left: {names:?}");

    // Val and test batches read from the cache equal those decoded from the sources, bit for bit.
    for mode in [Mode::Val, Mode::Test] {
        let (cached, decoded) = (batches(&splits, mode, true), batches(&splits, mode, false));
        assert_eq!(cached.len(), decoded.len());
        for ((ci, cx), (di, dx)) in cached.iter().zip(&decoded) {
            assert_eq!(ci, di);
            assert!(cx.equal(dx), "{mode:?}: a cached batch differs from the decoded one");
        }
    }
    // Train reads the short-side cache: same shapes, every image from the cache.
    let train = splits.loader(Mode::Train, 16, &DataSpec { image_size: IMAGE_SIZE as u32, ..DataSpec::default() }, 3);
    let view = train.cache().expect("train uses the short-side cache");
    assert_eq!((view.hits(), view.len()), (300, 300));
    assert!(view.file().ends_with("short-80.u8c"), "{:?}", view.file());
    assert_eq!(train.epoch(0).next().unwrap().unwrap().images.size(), vec![16, 3, 35, 35]);

    // Change one val source: its entry is stale, the loader decodes the new file, the rebuild re-decodes it.
    let changed = splits.val[5].image.clone();
    let new_source = Img::open(&splits.val[6].image).unwrap().hflip();
    new_source.save_png(&changed).unwrap();
    let file = std::fs::File::options().write(true).open(&changed).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    drop(file);
    let square = splits.cache_dir.join(Resize::Square(SIZE).file_name());
    let view = CacheView::new(Arc::new(ImageCache::open(&square).unwrap().unwrap()), &splits.val);
    assert_eq!(view.hits(), 99);
    assert!(view.image(5).is_none() && view.image(4).is_some());
    let (cached, decoded) = (batches(&splits, Mode::Val, true), batches(&splits, Mode::Val, false));
    assert!(cached[0].1.equal(&decoded[0].1), "the changed source is decoded, not read from the stale entry");
    assert_eq!(counts(&cache_cli(dir.path())), vec![(500, 499, 1), (500, 499, 1)]);
    let cache = ImageCache::open(&square).unwrap().unwrap();
    let entry = cache.valid_entry(&changed).expect("the rebuilt entry is valid");
    assert_eq!(cache.image(entry), Resize::Square(SIZE).apply(&new_source));
}

#[test]
fn a_damaged_cache_is_refused_by_name_and_the_loader_decodes_instead() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(dir.path()).unwrap();
    cache_cli(dir.path());
    let splits = data::resolve("demo-cls", &DataSpec::default(), &home, 0).unwrap();
    let square = splits.cache_dir.join(Resize::Square(SIZE).file_name());
    let bytes = std::fs::read(&square).unwrap();
    std::fs::write(&square, &bytes[..bytes.len() - 100]).unwrap();
    let err = ImageCache::open(&square).err().expect("a cut cache is refused").to_string();
    assert!(err.contains("square-40.u8c") && err.contains("image cache"), "{err}");
    let spec = DataSpec { image_size: IMAGE_SIZE as u32, ..DataSpec::default() };
    let loader = splits.loader(Mode::Val, 16, &spec, 0);
    assert!(loader.cache().is_none());
    assert_eq!(loader.epoch(0).count(), 7);
}

#[test]
fn short_side_resize_keeps_the_aspect_and_never_enlarges() {
    let img = Img::new(300, 200, 1);
    let out = Resize::Short(100).apply(&img);
    assert_eq!((out.width, out.height), (150, 100));
    let small = Resize::Short(512).apply(&img);
    assert_eq!((small.width, small.height), (300, 200));
    assert_eq!(Resize::for_mode(Mode::Train, 224), Resize::Short(512));
    assert_eq!(Resize::for_mode(Mode::Test, 224), Resize::Square(256));
}

/// Segmentation: `data cache demo-seg` writes one square file with every image and mask file (masks one-channel,
/// nearest); val and train batches (images and masks) from the cache equal the decoded ones bit for bit, and a
/// changed mask sends its sample back to the sources.
#[test]
fn segmentation_images_and_masks_are_cached_and_served() {
    const SEG_SIZE: usize = 48;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(dir.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["data", "cache", "demo-seg", "--size", &SEG_SIZE.to_string(), "--workers", "2", "--json"])
        .env("MEDXFER_HOME", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "data cache demo-seg failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let splits = data::resolve("demo-seg", &DataSpec::default(), &home, 0).unwrap();
    let sources = splits.all_sources();
    let masks = sources.iter().filter(|(_, kind)| *kind == Kind::Mask).count();
    assert!(masks > 0 && masks < sources.len(), "{masks} masks among {} sources", sources.len());
    assert_eq!(counts(&report), vec![(sources.len() as u64, 0, sources.len() as u64)]);

    let spec = DataSpec { image_size: SEG_SIZE as u32, workers: 2, ..DataSpec::default() };
    for mode in [Mode::Val, Mode::Train] {
        let config = medxfer::data::LoaderConfig {
            workers: 2,
            seed: 5,
            ..medxfer::data::LoaderConfig::for_split(splits.task, mode, 8, SEG_SIZE, splits.normalization)
        };
        let cached = splits.loader(mode, 8, &spec, 5);
        let view = cached.cache().expect("the square cache is used");
        assert!(view.file().ends_with("nearest-48.u8c"), "{:?}", view.file());
        assert!((0..view.len()).all(|i| view.masks(i).is_some()), "{mode:?}: every mask is served from the cache");
        let mask = view.masks(0).unwrap().remove(0);
        assert_eq!((mask.width, mask.height, mask.channels), (SEG_SIZE, SEG_SIZE, 1));
        let decoded = medxfer::data::Loader::new(splits.items(mode).to_vec(), config);
        let mut batches = 0;
        for (c, d) in cached.epoch(1).zip(decoded.epoch(1)) {
            let (c, d) = (c.unwrap(), d.unwrap());
            assert!(c.images.equal(&d.images) && c.targets.equal(&d.targets), "{mode:?}: a cached batch differs");
            let foreground = c.targets.mean(tch::Kind::Float).double_value(&[]);
            assert!((0.05..0.8).contains(&foreground), "{mode:?}: lung fraction {foreground}");
            batches += 1;
        }
        assert!(batches >= 2, "{mode:?}: {batches} batches");
    }

    let changed = splits.val[2].masks[0].clone();
    let file = std::fs::File::options().write(true).open(&changed).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5)).unwrap();
    drop(file);
    let square = splits.cache_dir.join(Resize::Nearest(SEG_SIZE).file_name());
    let view = CacheView::new(Arc::new(ImageCache::open(&square).unwrap().unwrap()), &splits.val);
    assert!(view.masks(2).is_none() && view.masks(1).is_some() && view.image(2).is_some());
}
