//! The study's segmentation data path against a Python reference (tests/fixtures/seg_reference.py: the
//! albumentations 0.4.3 functions transcribed onto cv2 4.10, numpy and scipy, and the study's dataset code), on
//! small generated images: OpenCV's resizes, the intensity tables, grid, optical and elastic distortion and the
//! sized crop byte for byte; Montgomery and DRIVE samples as the loader gives them with every default.

use medxfer::data::image::Img;
use medxfer::data::segaug::{self, SegOptions};
use medxfer::data::transform::{Mode, Rng};
use medxfer::data::{self};
use medxfer::home::Home;
use medxfer::runs::record::DataSpec;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn noise(width: usize, height: usize, channels: usize, seed: u64) -> Img {
    let mut rng = Rng::new(seed);
    let mut img = Img::new(width, height, channels);
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                // a gradient with noise: smooth parts and sharp ones
                let base = (x * 255 / width + y * 128 / height + c * 60) as u64;
                img.data[(y * width + x) * channels + c] = ((base + rng.next_u64() % 40) % 256) as u8;
            }
        }
    }
    img
}

fn blob_mask(width: usize, height: usize) -> Img {
    let mut m = Img::new(width, height, 1);
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f64 - width as f64 * 0.4, y as f64 - height as f64 * 0.55);
            m.data[y * width + x] = if dx * dx / 2.0 + dy * dy < (width * width) as f64 / 12.0 { 255 } else { 0 };
        }
    }
    m
}

/// Runs the reference on `cases` (each with an "out" file name) and returns each output's bytes.
fn reference(dir: &Path, cases: &[serde_json::Value]) -> Vec<Vec<u8>> {
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seg_reference.py");
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec(cases).unwrap()).unwrap();
    let out = Command::new(py).arg(script).arg(&file).arg(dir).output().unwrap();
    assert!(out.status.success(), "seg_reference.py failed: {}", String::from_utf8_lossy(&out.stderr));
    cases.iter().map(|c| std::fs::read(dir.join(c["out"].as_str().unwrap())).unwrap()).collect()
}

/// Names each case's output, runs the reference and asserts that each of `ours` equals its output byte for byte.
fn assert_each_equals_the_reference(dir: &Path, mut cases: Vec<serde_json::Value>, ours: &[Vec<u8>]) {
    for (i, case) in cases.iter_mut().enumerate() {
        case["out"] = json!(format!("{i}.bin"));
    }
    let theirs = reference(dir, &cases);
    for ((case, ours), theirs) in cases.iter().zip(ours).zip(&theirs) {
        assert_eq!(diff(ours, theirs), (0, 0), "{case}");
    }
}

fn save(dir: &Path, name: &str, img: &Img) -> String {
    let path = dir.join(name);
    img.save_png(&path).unwrap();
    path.display().to_string()
}

/// (pixels that differ, largest difference)
fn diff(ours: &[u8], theirs: &[u8]) -> (usize, u8) {
    assert_eq!(ours.len(), theirs.len());
    let d = ours.iter().zip(theirs).filter(|(a, b)| a != b).count();
    (d, ours.iter().zip(theirs).map(|(a, b)| a.abs_diff(*b)).max().unwrap_or(0))
}

#[test]
fn opencv_resizes_luts_grid_and_crop_equal_the_reference_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (rgb, gray, mask) = (noise(75, 61, 3, 1), noise(101, 97, 1, 2), blob_mask(64, 64));
    let (rgb_p, gray_p, mask_p) =
        (save(dir.path(), "rgb.png", &rgb), save(dir.path(), "gray.png", &gray), save(dir.path(), "mask.png", &mask));
    let square = noise(64, 64, 3, 3);
    let square_p = save(dir.path(), "square.png", &square);

    let mut cases = Vec::new();
    let mut ours: Vec<Vec<u8>> = Vec::new();
    for (input, img) in [(&rgb_p, &rgb), (&gray_p, &gray)] {
        for (w, h, nearest) in [(224, 224, true), (64, 64, false), (224, 224, false), (32, 32, true)] {
            cases.push(json!({"op": "resize", "input": input, "width": w, "height": h, "nearest": nearest}));
            let out = if nearest { segaug::resize_nearest(img, w, h) } else { segaug::resize_linear(img, w, h) };
            ours.push(out.data);
        }
    }
    for (alpha, beta) in [(0.8123, -0.1377), (1.19, 0.2), (1.0, 0.0731), (0.95, 0.0)] {
        cases.push(json!({"op": "lut_bc", "alpha": alpha, "beta": beta}));
        ours.push(segaug::brightness_contrast_lut(alpha, beta).to_vec());
    }
    for g in [0.8, 0.93, 1.0, 1.2] {
        cases.push(json!({"op": "lut_gamma", "gamma": g}));
        ours.push(segaug::gamma_lut(g).to_vec());
    }
    let steps = [
        (vec![0.8, 1.25, 0.95, 1.1, 0.71, 1.3], vec![1.05, 0.9, 1.29, 0.75, 1.0, 0.88]),
        (vec![1.3, 1.3, 1.3, 1.3, 1.3, 1.3], vec![0.7, 0.7, 0.7, 0.7, 0.7, 0.7]),
    ];
    for (xs, ys) in &steps {
        let (mx, my) = segaug::grid_maps(64, 64, xs, ys);
        for (input, img, nearest) in [(&square_p, &square, false), (&mask_p, &mask, true)] {
            cases.push(json!({"op": "grid", "input": input, "xsteps": xs, "ysteps": ys, "nearest": nearest}));
            ours.push(segaug::remap(img, &mx, &my, nearest).data);
        }
    }
    for (side, top, left) in [(44, 3, 17), (60, 0, 4), (45, 19, 0)] {
        cases.push(json!({"op": "crop", "input": &square_p, "side": side, "top": top, "left": left}));
        ours.push(segaug::resize_linear(&square.crop(left, top, side, side), 64, 64).data);
        cases.push(json!({"op": "crop", "input": &mask_p, "side": side, "top": top, "left": left, "nearest": true}));
        ours.push(segaug::resize_nearest(&mask.crop(left, top, side, side), 64, 64).data);
    }
    assert_each_equals_the_reference(dir.path(), cases, &ours);
}

#[test]
fn optical_and_elastic_distortions_equal_the_reference_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut ours: Vec<Vec<u8>> = Vec::new();
    for size in [64, 224] {
        let (img, mask) = (noise(size, size, 3, 4), blob_mask(size, size));
        let img_p = save(dir.path(), &format!("img{size}.png"), &img);
        let mask_p = save(dir.path(), &format!("mask{size}.png"), &mask);
        let ks: &[f64] = if size == 64 { &[-2.0, -0.6180339, 0.0, 0.25, 1.3, 2.0] } else { &[-1.37, 1.91] };
        for &k in ks {
            let (mx, my) = segaug::optical_maps(size, size, k);
            for (input, src, nearest) in [(&img_p, &img, false), (&mask_p, &mask, true)] {
                cases.push(json!({"op": "optical", "input": input, "k": k, "nearest": nearest}));
                ours.push(segaug::remap(src, &mx, &my, nearest).data);
            }
        }
        let seeds: &[u32] = if size == 64 { &[0, 17, 4242, 10000] } else { &[777] };
        for &seed in seeds {
            for (input, src, nearest) in [(&img_p, &img, false), (&mask_p, &mask, true)] {
                cases.push(json!({"op": "elastic", "input": input, "seed": seed, "nearest": nearest}));
                ours.push(segaug::elastic(src, seed, nearest).data);
            }
        }
    }
    assert_each_equals_the_reference(dir.path(), cases, &ours);
}

/// With every default, a Montgomery test sample is the study's: nearest resize to 224, masks > 0, no
/// normalisation; a DRIVE one: 512, bilinear, mask > 127, ImageNet normalisation. Float tolerance 1e-6: the study
/// divides in float64, the loader in float32.
#[test]
fn montgomery_and_drive_samples_equal_the_studys_with_every_default() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(&dir.path().join("home")).unwrap();
    let mut cases = Vec::new();
    let mut batches = Vec::new();
    for dataset in ["montgomery", "drive"] {
        let root = dir.path().join(dataset);
        let (image_dir, mask_dirs, name, mask_name): (&str, &[&str], &str, &str) = if dataset == "drive" {
            ("images", &["1st_manual"], "21_training.png", "21_manual1.png")
        } else {
            ("CXR_png", &["ManualMask/leftMask", "ManualMask/rightMask"], "MCUCXR_0001_0.png", "MCUCXR_0001_0.png")
        };
        for split in ["train", "val", "validate", "test"] {
            let folder = root.join(split);
            std::fs::create_dir_all(folder.join(image_dir)).unwrap();
            let img = noise(131, 117, 3, 9);
            img.save_png(&folder.join(image_dir).join(name)).unwrap();
            for (i, m) in mask_dirs.iter().enumerate() {
                std::fs::create_dir_all(folder.join(m)).unwrap();
                let mut mask = blob_mask(131, 117);
                if i == 1 {
                    mask = mask.hflip();
                }
                // a soft edge: values around the DRIVE threshold
                mask.data.iter_mut().enumerate().for_each(|(j, v)| *v = v.saturating_sub((j % 7 * 20) as u8));
                mask.save_png(&folder.join(m).join(mask_name)).unwrap();
            }
        }
        let data = DataSpec {
            root: Some(root.clone()),
            image_size: SegOptions::study_image_size(dataset),
            ..DataSpec::default()
        };
        let splits = data::resolve(dataset, &data, &home, 0).unwrap();
        let batch = splits.loader(Mode::Test, 1, &data, 0).epoch(0).next().unwrap().unwrap();
        let mut values = Vec::<f32>::try_from(batch.images.flatten(0, -1)).unwrap();
        values.extend(Vec::<f32>::try_from(batch.targets.flatten(0, -1)).unwrap());
        batches.push(values);
        let item = &splits.test[0];
        cases.push(json!({
            "op": dataset, "input": item.image, "masks": item.masks,
            "size": SegOptions::study_image_size(dataset), "out": format!("{dataset}.bin"),
        }));
    }
    let theirs = reference(dir.path(), &cases);
    for ((case, ours), theirs) in cases.iter().zip(&batches).zip(&theirs) {
        let theirs: Vec<f32> = theirs.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        assert_eq!(ours.len(), theirs.len(), "{}", case["op"]);
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-6, "{}: values differ by up to {worst}", case["op"]);
        let ones = theirs[theirs.len() - ours.len() / 4..].iter().filter(|&&v| v == 1.0).count();
        assert!(ones > 0, "{}: the reference mask is empty", case["op"]);
    }
}

/// The sweep writes the study's segmentation settings into each spec; `--set` changes them, typed.
#[test]
fn segmentation_specs_resolve_the_studys_settings() {
    let mut spec =
        medxfer::runs::record::RunSpec::study("", "drive", medxfer::runs::record::Task::Segmentation, "random");
    segaug::resolve_study_defaults(&mut spec);
    assert_eq!(spec.data.image_size, 512);
    assert_eq!(spec.data.segmentation, Some(SegOptions::study("drive")));
    spec.set("seg_loss", "dice").unwrap();
    assert_eq!(spec.data.segmentation.unwrap().loss, segaug::SegLoss::Dice);
    let text = toml::to_string_pretty(&spec).unwrap();
    assert!(text.contains("[data.segmentation]") && text.contains("mask_threshold = 127"), "{text}");
    assert!(spec.set("seg_resize", "area").is_err());
}
