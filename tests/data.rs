//! Datasets end to end: the study's seed lists, MT19937 subsets and resizing against Python, demo data,
//! loader determinism across worker counts, and `medxfer data check` on broken data.

use medxfer::data::image::Img;
use medxfer::data::lists::{read_chestxray14, read_shenzhen};
use medxfer::data::transform::center_crop;
use medxfer::data::{DatasetSpec, Loader, LoaderConfig, Mode, Normalization, demo, lists, pyrandom};
use medxfer::runs::record::Task;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEED_LISTS: &str = "/work/shared/reference/seed-lists";

fn seed_lists() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-lists");
    if local.is_dir() { local } else { PathBuf::from(SEED_LISTS) }
}

fn python(script: &str) -> String {
    let py = std::env::var("MEDXFER_TEST_PYTHON")
        .expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env to point it at the reference Python");
    let out = Command::new(&py).arg("-c").arg(script).output().expect("cannot start the reference Python");
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn readers_read_the_study_seed_lists() {
    let dir = seed_lists();
    let train = read_chestxray14(&dir.join("Xray14_train_official.txt"), Path::new("/imgs"), 14).unwrap();
    assert_eq!(train.len(), 200);
    assert_eq!(train[0].image, Path::new("/imgs/00000001_000.png"));
    assert_eq!(train[1].labels, vec![0., 1., 0., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0., 0.]);
    let counts: Vec<usize> = ["train", "valid", "test"]
        .iter()
        .map(|s| read_shenzhen(&dir.join(format!("ShenzenCXR_{s}_data.txt")), Path::new("r")).unwrap().len())
        .collect();
    assert_eq!(counts, vec![463, 65, 134]);
    let err = read_chestxray14(&dir.join("ShenzenCXR_test_data.txt"), Path::new("r"), 14).unwrap_err().to_string();
    assert!(err.contains("ShenzenCXR_test_data.txt:1:"), "{err}");
}

#[test]
fn chexpert_uncertain_policies_and_blanks() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("train.csv");
    let header = "Path,Sex,Age,Frontal/Lateral,AP/PA,".to_string() + &["L"; 14].join(",");
    let row =
        "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,F,68,Frontal,AP,1.0,-1.0,,0.0,1,-1,,,,,,,,";
    std::fs::write(&csv, format!("{header}\n{row}\n")).unwrap();
    let raw = lists::read_chexpert(&csv, dir.path(), 14, 0).unwrap();
    assert_eq!(&raw[0].labels[..7], &[1.0, -1.0, 0.0, 0.0, 1.0, -1.0, 0.0], "uncertain kept, blank = 0");
    let blank_one = lists::read_chexpert(&csv, dir.path(), 14, 1).unwrap();
    assert_eq!(blank_one[0].labels[2], 1.0, "blank cells take unknown_label");
    std::fs::write(&csv, format!("{header}\n{row},extra\n")).unwrap();
    let err = lists::read_chexpert(&csv, dir.path(), 14, 0).unwrap_err().to_string();
    assert!(err.contains("train.csv:2:"), "{err}");
}

#[test]
fn anno_subset_matches_python_random_99_shuffle() {
    let expected = python(
        "import random\nfor n,p in [(1000,10),(463,25),(77,50)]:\n idx=list(range(n)); random.Random(99).shuffle(idx)\n \
         print(' '.join(map(str, idx[:int(n*p/100.0)])))\nr=random.Random(99); print(repr(r.random()))",
    );
    let lines: Vec<&str> = expected.lines().collect();
    for ((n, p), line) in [(1000, 10), (463, 25), (77, 50)].into_iter().zip(&lines) {
        let ours: Vec<String> = pyrandom::anno_subset(n, p).iter().map(|i| i.to_string()).collect();
        assert_eq!(&ours.join(" "), line, "n={n} p={p}");
    }
    assert_eq!(format!("{:?}", pyrandom::PyRandom::new(99).random()), lines[3]);
    assert_eq!(pyrandom::anno_subset(5, 100), vec![0, 1, 2, 3, 4]);
}

fn smooth_test_image(width: usize, height: usize, channels: usize) -> Img {
    let mut img = Img::new(width, height, channels);
    for y in 0..height {
        for x in 0..width {
            for c in 0..channels {
                let v = 128.0
                    + 90.0 * ((x as f64 * 0.07 + c as f64).sin() * (y as f64 * 0.05).cos())
                    + if (x / 9 + y / 13) % 2 == 0 { 30.0 } else { -30.0 };
                img.data[(y * width + x) * channels + c] = v.clamp(0.0, 255.0) as u8;
            }
        }
    }
    img
}

#[test]
fn resize_and_center_crop_match_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [(300usize, 250usize, 1usize, 256usize, 224usize), (97, 120, 3, 256, 224), (700, 650, 1, 73, 64)];
    let mut script = String::from("from PIL import Image\nimport torchvision.transforms as T\n");
    for (k, &(w, h, c, resize, crop)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("in{k}.png"));
        smooth_test_image(w, h, c).save_png(&path).unwrap();
        script += &format!(
            "t=T.Compose([T.Resize(({resize},{resize})),T.CenterCrop({crop}),T.ToTensor()])\n\
             open('{}','wb').write((t(Image.open('{}').convert('RGB'))*255).round().byte().numpy().tobytes())\n",
            dir.path().join(format!("ref{k}.bin")).display(),
            path.display()
        );
    }
    python(&script);
    for (k, &(w, h, c, resize, crop)) in cases.iter().enumerate() {
        let reference = std::fs::read(dir.path().join(format!("ref{k}.bin"))).unwrap();
        let ours = center_crop(
            &Img::open(&dir.path().join(format!("in{k}.png"))).unwrap().resize_bilinear(resize, resize),
            crop,
        );
        let plane = crop * crop;
        let mut total = 0.0;
        for ch in 0..3 {
            for p in 0..plane {
                let mine = ours.data[p * ours.channels + if ours.channels == 1 { 0 } else { ch }] as f64;
                total += (mine - reference[ch * plane + p] as f64).abs();
            }
        }
        let mean = total / (3 * plane) as f64;
        eprintln!("{w}x{h}x{c} -> {resize} -> {crop}: mean abs difference {mean:.4} (0..255 scale)");
        // the issue asks for <= 1/255; the arithmetic is Pillow's own, so nothing may differ at all
        assert!(mean == 0.0, "{w}x{h}x{c}: mean abs difference {mean} (in 0..255), not identical to torchvision");
    }
}

/// The train transform's three pixel steps, each against torchvision on PIL: `resized_crop` (PIL's antialiased
/// bilinear), `hflip`, and `rotate` (nearest, zero fill). Our fixed-point arithmetic and pass order are Pillow's,
/// so the bytes must be identical, not merely close. The boxes take each pass order and the one-pass cases.
#[test]
fn train_crop_flip_and_rotation_are_torchvision_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // (width, height, channels, crop box (left, top, w, h), output side, flip, degrees)
    let cases = [
        (512usize, 600usize, 1usize, (37usize, 80usize, 401usize, 377usize), 224usize, false, -6.3f64),
        (512, 600, 1, (0, 0, 512, 600), 224, true, 6.99),
        (300, 257, 3, (10, 3, 150, 200), 224, true, 0.4),
        (97, 120, 1, (5, 9, 80, 100), 64, false, -0.05),
        (256, 256, 1, (12, 30, 224, 224), 224, true, -33.0),
        (200, 180, 3, (1, 2, 60, 45), 100, false, 3.5),
        (300, 257, 1, (9, 0, 224, 250), 224, true, -2.0),
        (300, 257, 3, (3, 4, 250, 224), 224, false, 1.0),
        (400, 500, 1, (20, 10, 300, 480), 224, false, 5.0),
    ];
    let mut script = String::from(
        "from PIL import Image\nimport numpy as np\nimport torchvision.transforms.functional as F\n\
         from torchvision.transforms import InterpolationMode as I\n",
    );
    for (k, &(w, h, c, (left, top, cw, ch), side, flip, degrees)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("in{k}.png"));
        smooth_test_image(w, h, c).save_png(&path).unwrap();
        script += &format!(
            "im=F.resized_crop(Image.open('{}'),{top},{left},{ch},{cw},[{side},{side}],I.BILINEAR)\n\
             im=F.hflip(im) if {} else im\n\
             im=F.rotate(im,{degrees:?},I.NEAREST,fill=0)\n\
             open('{}','wb').write(np.asarray(im).tobytes())\n",
            path.display(),
            if flip { "True" } else { "False" },
            dir.path().join(format!("ref{k}.bin")).display(),
        );
    }
    python(&script);
    for (k, &(w, h, c, (left, top, cw, ch), side, flip, degrees)) in cases.iter().enumerate() {
        let reference = std::fs::read(dir.path().join(format!("ref{k}.bin"))).unwrap();
        let img = Img::open(&dir.path().join(format!("in{k}.png"))).unwrap();
        let cropped = img.resized_crop(left, top, cw, ch, side, side);
        assert_eq!(cropped, img.crop(left, top, cw, ch).resize_bilinear(side, side), "case {k}: crop in place");
        let ours = cropped.flip_rotate_nearest(flip, degrees);
        let unfused = if flip { cropped.hflip() } else { cropped.clone() }.rotate_nearest(degrees);
        assert_eq!(ours, unfused, "case {k}: flip fused into the rotation");
        let differing = ours.data.iter().zip(&reference).filter(|(a, b)| a != b).count();
        assert_eq!(reference.len(), ours.data.len(), "case {k}");
        assert_eq!(differing, 0, "case {k} ({w}x{h}x{c}, flip {flip}, {degrees} deg): {differing} bytes differ");
    }
}

#[test]
fn demo_is_deterministic_quick_and_loader_batches_do_not_depend_on_workers() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = std::time::Instant::now();
    let (cls, seg) = demo::write(a.path()).unwrap();
    // Measured about 0.2 s; the bound leaves room for 2 shared, busy cores.
    assert!(start.elapsed().as_secs_f64() < 5.0, "demo took {:?}", start.elapsed());
    demo::write(b.path()).unwrap();
    for rel in ["demo-cls/train.txt", "demo-cls/images/00007_000.png", "demo-seg/val/masks/0061.png"] {
        assert_eq!(std::fs::read(a.path().join(rel)).unwrap(), std::fs::read(b.path().join(rel)).unwrap(), "{rel}");
    }
    let spec = DatasetSpec::load("demo-cls").unwrap();
    let (train, _) = lists::read_split(&spec, &cls, &cls.join("train.txt"), 0).unwrap();
    assert_eq!(train.len(), 300);
    let prevalence: f32 = train.iter().map(|i| i.labels[0]).sum::<f32>() / 300.0;
    assert!((0.15..0.45).contains(&prevalence), "{prevalence}");

    let batches = |workers: usize, mode: Mode| {
        let mut config = LoaderConfig::for_split(Task::Classification, mode, 16, 32, Normalization::Chestxray);
        config.workers = workers;
        config.seed = 7;
        let loader = Loader::new(train[..70].to_vec(), config);
        loader.epoch(1).map(|b| b.unwrap()).collect::<Vec<_>>()
    };
    let (one, three) = (batches(1, Mode::Train), batches(3, Mode::Train));
    assert_eq!(one.len(), 5, "70 items in batches of 16, the last partial batch kept (the study's drop_last=False)");
    assert_eq!(one[4].images.size(), vec![6, 3, 32, 32]);
    assert_eq!(one[0].images.size(), vec![16, 3, 32, 32]);
    assert_eq!(one[0].targets.size(), vec![16, 4]);
    for (x, y) in one.iter().zip(&three) {
        assert_eq!(x.indices, y.indices);
        assert!(x.images.equal(&y.images) && x.targets.equal(&y.targets));
    }
    assert_ne!(one[0].indices, (0..16).collect::<Vec<_>>(), "training batches are shuffled");
    let test = batches(2, Mode::Test);
    assert_eq!(test.len(), 5);
    assert_eq!(test[4].images.size(), vec![6, 10, 3, 32, 32]);

    let seg_spec = DatasetSpec::load("demo-seg").unwrap();
    let (seg_items, pattern) = lists::read_split(&seg_spec, &seg, &seg.join("train"), 0).unwrap();
    assert_eq!((seg_items.len(), pattern), (60, Some("{stem}")));
    let config = LoaderConfig::for_split(Task::Segmentation, Mode::Train, 8, 48, Normalization::Imagenet);
    let batch = Loader::new(seg_items, config).epoch(0).next().unwrap().unwrap();
    assert_eq!(batch.targets.size(), vec![8, 1, 48, 48]);
    let foreground = batch.targets.mean(tch::Kind::Float).double_value(&[]);
    assert!((0.1..0.7).contains(&foreground), "lung fraction {foreground}");
}

/// `pin_memory` for a CUDA device: with CUDA the batches come pinned, without it the pin fails quietly and the
/// batches stay in ordinary memory; either way they equal the unpinned ones.
#[test]
fn pinned_batches_equal_plain_ones_and_are_pinned_only_with_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let (cls, _) = demo::write(dir.path()).unwrap();
    let spec = DatasetSpec::load("demo-cls").unwrap();
    let (items, _) = lists::read_split(&spec, &cls, &cls.join("val.txt"), 0).unwrap();
    let batches = |pin: Option<tch::Device>| {
        let mut config = LoaderConfig::for_split(Task::Classification, Mode::Val, 8, 32, Normalization::Chestxray);
        config.pin_memory = pin;
        Loader::new(items[..24].to_vec(), config).epoch(0).map(|b| b.unwrap()).collect::<Vec<_>>()
    };
    let (plain, pinned) = (batches(None), batches(Some(tch::Device::Cuda(0))));
    assert_eq!(plain.len(), 3);
    for (p, q) in plain.iter().zip(&pinned) {
        assert!(!p.pinned);
        assert_eq!(q.pinned, tch::Cuda::is_available(), "pinned exactly when CUDA is there");
        assert!(p.images.equal(&q.images) && p.targets.equal(&q.targets));
        assert!(q.images_on(tch::Device::Cpu).equal(&p.images));
    }
}

#[test]
fn drive_masks_are_matched_by_id_manual1() {
    let dir = tempfile::tempdir().unwrap();
    let split = dir.path().join("training");
    std::fs::create_dir_all(split.join("images")).unwrap();
    std::fs::create_dir_all(split.join("1st_manual")).unwrap();
    smooth_test_image(20, 20, 3).save_png(&split.join("images/21_training.png")).unwrap();
    smooth_test_image(20, 20, 1).save_png(&split.join("1st_manual/21_manual1.png")).unwrap();
    let spec = DatasetSpec::load("drive").unwrap();
    let (items, pattern) = lists::read_split(&spec, dir.path(), &split, 0).unwrap();
    assert_eq!(pattern, Some("{id}_manual1"));
    assert_eq!(items[0].masks, vec![split.join("1st_manual/21_manual1.png")]);
}

#[test]
fn data_check_reports_missing_images_and_bad_label_counts() {
    let home = tempfile::tempdir().unwrap();
    let (cls, _) = demo::write(&home.path().join("d")).unwrap();
    let run = |root: &Path| {
        Command::new(env!("CARGO_BIN_EXE_medxfer"))
            .args(["data", "check", "demo-cls", "--root"])
            .arg(root)
            .env("MEDXFER_HOME", home.path())
            .output()
            .unwrap()
    };
    let ok = run(&cls);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Cardiomegaly"));
    std::fs::remove_file(cls.join("images/00003_000.png")).unwrap();
    let val = std::fs::read_to_string(cls.join("val.txt")).unwrap();
    std::fs::write(cls.join("val.txt"), val.replacen(" 0\n", "\n", 1)).unwrap();
    let bad = run(&cls);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("00003_000.png is missing"), "{stderr}");
    assert!(stderr.contains("val.txt:") && stderr.contains("expected 4 labels"), "{stderr}");
}

#[test]
fn resolve_takes_the_anno_subset_of_the_home_demo() {
    use medxfer::runs::record::DataSpec;
    let dir = tempfile::tempdir().unwrap();
    let home = medxfer::home::Home::under(dir.path()).unwrap();
    let data = DataSpec { anno_percent: 10, normalization: Some("imagenet".into()), ..DataSpec::default() };
    let splits = medxfer::data::resolve("demo-cls", &data, &home, 1).unwrap();
    assert_eq!(splits.root, dir.path().join("datasets/demo-cls"));
    assert_eq!((splits.train.len(), splits.val.len(), splits.test.len()), (30, 10, 10), "all three splits");
    let full = medxfer::data::resolve("demo-cls", &DataSpec::default(), &home, 1).unwrap();
    let expected: Vec<_> = pyrandom::anno_subset(300, 10).into_iter().map(|i| full.train[i].image.clone()).collect();
    assert_eq!(splits.train.iter().map(|i| i.image.clone()).collect::<Vec<_>>(), expected);
    assert_eq!((splits.normalization, full.normalization), (Normalization::Imagenet, Normalization::Chestxray));
    let err = medxfer::data::resolve("shenzhen", &DataSpec::default(), &home, 1).unwrap_err().to_string();
    assert!(err.contains("--root"), "{err}");
}

#[test]
fn split_chestxray14_keeps_patients_in_one_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut entry = String::from("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age\n");
    let (mut train_val, mut test) = (String::new(), String::new());
    for patient in 1..=40 {
        for k in 0..3 {
            let name = format!("{patient:08}_{k:03}.png");
            let findings = if k == 1 { "Cardiomegaly|Hernia" } else { "No Finding" };
            entry += &format!("{name},{findings},{k},{patient},50\n");
            if patient <= 30 { train_val += &format!("{name}\n") } else { test += &format!("{name}\n") }
        }
    }
    std::fs::write(dir.path().join("Data_Entry_2017.csv"), entry).unwrap();
    std::fs::write(dir.path().join("train_val_list.txt"), train_val).unwrap();
    std::fs::write(dir.path().join("test_list.txt"), test).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .args(["data", "split", "chestxray14", "--nih-dir"])
        .arg(dir.path())
        .env("MEDXFER_HOME", dir.path().join("home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |f: &str| read_chestxray14(&dir.path().join(f), Path::new(""), 14).unwrap();
    let (train, val, test) =
        (read("medxfer_split_train.txt"), read("medxfer_split_val.txt"), read("medxfer_split_test.txt"));
    assert!(!dir.path().join("Xray14_train_official.txt").exists(), "never the study's file names");
    assert_eq!((train.len(), val.len(), test.len()), (81, 9, 30));
    assert_eq!(train.iter().find(|i| i.image.to_str().unwrap().ends_with("_001.png")).unwrap().labels[1], 1.0);
    let patient = |i: &lists::Item| i.image.to_str().unwrap()[..8].to_string();
    let train_patients: std::collections::BTreeSet<String> = train.iter().map(patient).collect();
    assert!(val.iter().all(|i| !train_patients.contains(&patient(i))));
}

#[test]
fn decodes_png16_jpeg_tiff_gif_to_gray_or_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let gray16 =
        image::ImageBuffer::<image::Luma<u16>, _>::from_fn(8, 6, |x, _| image::Luma([x as u16 * 0x1000 + 0x80]));
    let rgb = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([x as u8 * 30, y as u8 * 40, 200]));
    let gray = image::GrayImage::from_fn(8, 6, |x, _| image::Luma([x as u8 * 30]));
    gray16.save(dir.path().join("a.png")).unwrap();
    rgb.save(dir.path().join("b.tif")).unwrap();
    gray.save(dir.path().join("c.jpg")).unwrap();
    image::DynamicImage::ImageLuma8(gray.clone()).to_rgba8().save(dir.path().join("d.gif")).unwrap();
    let a = Img::open(&dir.path().join("a.png")).unwrap();
    assert_eq!((a.width, a.height, a.channels, a.data[1], a.data[7]), (8, 6, 1, 16, 112));
    let b = Img::open(&dir.path().join("b.tif")).unwrap();
    assert_eq!((b.channels, &b.data[3 * 9..3 * 10]), (3, &[30u8, 40, 200][..]));
    let c = Img::open(&dir.path().join("c.jpg")).unwrap();
    assert_eq!(c.channels, 1);
    assert!(c.data.iter().zip(gray.as_raw()).all(|(x, y)| (*x as i32 - *y as i32).abs() <= 12));
    let d = Img::open(&dir.path().join("d.gif")).unwrap();
    assert_eq!((d.width, d.height), (8, 6));
    assert!(Img::open(&dir.path().join("missing.png")).unwrap_err().to_string().contains("missing.png"));
}

#[test]
fn concurrent_first_uses_of_the_demo_never_pull_it_from_under_a_reader() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let datasets = datasets.clone();
            std::thread::spawn(move || {
                let (cls, _) = demo::ensure(&datasets).unwrap();
                let list = std::fs::read_to_string(cls.join("train.txt")).unwrap();
                for line in list.lines() {
                    let name = line.split_whitespace().next().unwrap();
                    std::fs::read(cls.join("images").join(name)).unwrap();
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("a reader lost the demo folder while another first use wrote it");
    }
}
