//! Checkpoint reader and conversion against files written by real torch.save (Python reference env):
//! every origin layout bit for bit against torchvision, odd dtypes and views, byte order,
//! malicious and broken files refused without side effects, and a mutation run.

use medxfer::ckpt;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn python_fixtures(dir: &Path, mode: &str) {
    run_fixture_script("make_ckpt_fixtures.py", dir, mode);
}

fn run_fixture_script(name: &str, dir: &Path, mode: &str) {
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let out = Command::new(py).arg(script).arg(dir).arg(mode).output().unwrap();
    assert!(out.status.success(), "fixture script failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The small fixtures, generated once per test run.
fn small() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ckpt-fixtures");
        let _ = std::fs::remove_dir_all(&dir);
        python_fixtures(&dir, "--small");
        dir
    })
}

fn read_st(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_origin_layout_converts_to_torchvision_weights_bit_for_bit() {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let dir = tempfile::tempdir_in(base).unwrap();
    python_fixtures(dir.path(), "--resnet");
    let reference = read_st(&dir.path().join("reference.safetensors"));
    let reference = SafeTensors::deserialize(&reference).unwrap();
    assert_eq!(reference.len(), 265);
    let cases = [
        ("torchvision_wrapped.pth", "torchvision", "fc.weight"),
        ("moco.pth", "moco", "module.encoder_q.fc.2.weight"),
        ("moco_legacy.pth", "auto", "module.encoder_k.conv1.weight"),
        ("swav.pth", "swav", "module.prototypes.weight"),
        ("barlowtwins.pth", "barlowtwins", "layer1.0.bn1.num_batches_tracked"),
        ("pycontrast.pth", "pycontrast", "module.head_jig.fc.weight"),
        ("zenodo_module.pth", "zenodo-module", "module.fc.bias"),
    ];
    for (file, recipe, a_dropped_key) in cases {
        let input = dir.path().join(file);
        let output = dir.path().join("out").join(file.replace(".pth", "")).join("resnet50.safetensors");
        std::fs::create_dir_all(output.parent().unwrap()).unwrap();
        let prov = ckpt::convert_file(recipe, &input, &output).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let bytes = read_st(&output);
        let got = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(got.len(), 265, "{file}");
        for (name, want) in reference.iter() {
            let t = got.tensor(name).unwrap_or_else(|_| panic!("{file}: {name} missing"));
            assert_eq!(t.dtype(), safetensors::Dtype::F32, "{file}: {name}");
            assert_eq!(t.shape(), want.shape(), "{file}: {name}");
            assert!(t.data() == want.data(), "{file}: {name} differs from torchvision's");
        }
        assert!(prov.dropped.iter().any(|d| d.key == a_dropped_key), "{file}: {:?}", prov.dropped);
        let on_disk: ckpt::Provenance = serde_json::from_slice(
            &std::fs::read(dir.path().join("out").join(file.replace(".pth", "")).join("resnet50.provenance.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(on_disk, prov);
        assert_eq!(prov.source_sha256, sha256_hex(&std::fs::read(&input).unwrap()));
        if recipe == "auto" {
            assert_eq!(prov.recipe, "moco");
            assert!(prov.guessed_because.is_some());
            assert_eq!(prov.source_format, "legacy");
        }
        std::fs::remove_file(&input).unwrap();
        std::fs::remove_file(&output).unwrap();
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn odd_dtypes_and_strided_views_match_torch_in_zip_and_legacy_files() {
    let reference = read_st(&small().join("odd.safetensors"));
    let reference = SafeTensors::deserialize(&reference).unwrap();
    for file in ["odd.pth", "odd_legacy.pth"] {
        let bytes = read_st(&small().join(file));
        let loaded = ckpt::load(&bytes).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        let tensors = loaded.value.get("tensors").unwrap();
        for (name, want) in reference.iter() {
            let Some(ckpt::value::Value::Tensor(t)) = tensors.get(name) else { panic!("{file}: {name} missing") };
            let dtype = format!("{:?}", want.dtype()).to_lowercase();
            let ours = match t.storage.dtype.name() {
                "float32" => "f32",
                "float16" => "f16",
                "bfloat16" => "bf16",
                "float64" => "f64",
                "int64" => "i64",
                "int32" => "i32",
                "int16" => "i16",
                "int8" => "i8",
                "uint8" => "u8",
                "bool" => "bool",
                other => other,
            };
            assert_eq!(ours, dtype, "{file}: {name}");
            assert_eq!(t.shape_usize(), want.shape(), "{file}: {name}");
            assert!(loaded.tensor_bytes(t).unwrap().as_ref() == want.data(), "{file}: {name} values differ");
        }
    }
}

#[test]
fn inspect_json_lists_format_root_globals_and_tensor_shapes() {
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env("MEDXFER_HOME", small().join("home"))
        .args(["ckpt", "inspect", "--json"])
        .arg(small().join("odd.pth"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["format"], "zip");
    assert_eq!(report["root"], "odd");
    assert_eq!(report["tree"]["tensors"]["transposed"]["shape"], serde_json::json!([6, 4]));
    assert_eq!(report["tree"]["tensors"]["bf16"]["dtype"], "bfloat16");
    let globals: Vec<&str> = report["globals"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    assert!(
        globals.contains(&"torch._utils._rebuild_tensor_v2") && globals.contains(&"argparse.Namespace"),
        "{globals:?}"
    );
}

#[test]
fn big_endian_storages_are_swapped_to_the_same_values() {
    let (little, big) = (read_st(&small().join("little.pth")), read_st(&small().join("big.pth")));
    let (l, b) = (ckpt::load(&little).unwrap(), ckpt::load(&big).unwrap());
    assert!(!l.big_endian && b.big_endian);
    for key in ["w", "v"] {
        let (Some(ckpt::value::Value::Tensor(lt)), Some(ckpt::value::Value::Tensor(bt))) =
            (l.value.get(key), b.value.get(key))
        else {
            panic!("{key} missing")
        };
        assert_eq!(l.tensor_bytes(lt).unwrap(), b.tensor_bytes(bt).unwrap(), "{key}");
    }
}

#[test]
fn malicious_and_broken_files_are_refused_naming_the_cause_with_no_output() {
    let cases = [
        ("evil_system.pth", "posix.system"),
        ("evil_eval.pth", "eval: it is not on the allow-list"),
        ("evil_legacy.pth", "posix.system"),
        ("truncated.pth", "end-of-central-directory"),
        ("short_storage.pth", "holds 44 bytes"),
        ("short_legacy.pth", "truncated"),
    ];
    let out_dir = tempfile::tempdir().unwrap();
    for (file, why) in cases {
        let output = out_dir.path().join(format!("{file}.safetensors"));
        let err = ckpt::convert_file("auto", &small().join(file), &output).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(file) && msg.contains(why), "{file}: {msg}");
        let cli = Command::new(env!("CARGO_BIN_EXE_medxfer"))
            .env("MEDXFER_HOME", small().join("home"))
            .args(["ckpt", "inspect"])
            .arg(small().join(file))
            .output()
            .unwrap();
        assert_eq!(cli.status.code(), Some(1), "{file}");
        assert!(String::from_utf8_lossy(&cli.stderr).contains(why), "{file}");
    }
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0, "no output, no temporary");
    assert!(!small().join("pwned").exists(), "the payload ran");
}

#[test]
fn the_wrong_origin_fails_listing_the_names_at_fault() {
    let out_dir = tempfile::tempdir().unwrap();
    let output = out_dir.path().join("x.safetensors");
    let err = ckpt::convert_file("torchvision", &small().join("odd.pth"), &output).unwrap_err();
    assert!(format!("{err:#}").contains("no state dict"), "{err:#}");
    let err = ckpt::convert_file("barlowtwins", &small().join("little.pth"), &output).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("missing 265") && msg.contains("conv1.weight") && msg.contains("extra 2: v, w"), "{msg}");
    let err = ckpt::convert_file("simclr", &small().join("little.pth"), &output).unwrap_err();
    assert!(format!("{err:#}").contains("unknown checkpoint origin \"simclr\""));
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
}

#[test]
fn ten_thousand_mutated_checkpoints_never_panic_and_stay_bounded() {
    let sources = [read_st(&small().join("odd.pth")), read_st(&small().join("odd_legacy.pth"))];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = std::time::Instant::now();
    let (mut accepted, mut total) = (0, 0);
    for i in 0..10_000 {
        let mut data = sources[i % 2].clone();
        match next() % 10 {
            0 => data.truncate((next() as usize) % data.len()),
            1 => {
                let at = (next() as usize) % data.len();
                let n = (next() as usize % 64).min(data.len() - at);
                data.drain(at..at + n);
            }
            _ => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % data.len();
                    data[at] = match next() % 4 {
                        0 => data[at] ^ (1 << (next() % 8)),
                        1 => [0x00, 0xff, 0x7f, 0x80][(next() % 4) as usize],
                        _ => next() as u8,
                    };
                }
            }
        }
        if let Ok(loaded) = ckpt::load(&data) {
            accepted += 1;
            total += materialise_all(&loaded, &loaded.value);
        }
    }
    assert!(accepted > 100, "only {accepted} mutants parsed: the mutations never reach the tensors");
    assert!(total > 0);
    assert!(started.elapsed().as_secs() < 30, "mutation run took {:?}", started.elapsed());
}

fn materialise_all(c: &ckpt::Checkpoint, v: &ckpt::value::Value) -> usize {
    match v {
        ckpt::value::Value::Tensor(t) => c.tensor_bytes(t).map(|b| b.len()).unwrap_or(0),
        other => other.children().into_iter().map(|x| materialise_all(c, x)).sum(),
    }
}

// ---- SimCLR (TensorFlow bundles) and BYOL (dill pickle): fixtures committed in tests/fixtures/tf_byol,
// written by tensorflow and dill (make_tf_byol_fixtures.py) for a width-2 ResNet50. ----

fn tf_byol() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tf_byol")
}

/// Checks every tensor of `output` against the fixture script's (shape, sha256) for `tag`.
fn assert_matches_expected(output: &Path, tag: &str) -> std::collections::HashMap<String, String> {
    let expected: serde_json::Value = serde_json::from_slice(&read_st(&tf_byol().join("expected.json"))).unwrap();
    let want = expected[tag].as_object().unwrap();
    assert_eq!(want.len(), 265, "{tag}");
    let bytes = read_st(output);
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let got = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(got.len(), 265, "{tag}");
    for (name, w) in want {
        let t = got.tensor(name).unwrap_or_else(|_| panic!("{tag}: {name} missing"));
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{tag}: {name}");
        let shape: Vec<usize> = w[0].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(t.shape(), shape.as_slice(), "{tag}: {name}");
        assert_eq!(sha256_hex(t.data()), w[1].as_str().unwrap(), "{tag}: {name} differs from the values written");
    }
    meta.metadata().clone().unwrap_or_default()
}

#[test]
fn simclr_v1_zip_converts_bit_for_bit_and_records_no_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("resnet50.safetensors");
    let input = tf_byol().join("simclr_v1.zip");
    let prov = ckpt::convert_file_for("simclr-v1", &input, &output, 2).unwrap_or_else(|e| panic!("{e:#}"));
    let meta = assert_matches_expected(&output, "simclr_v1");
    assert_eq!(meta.get(ckpt::META_INPUT_NORMALIZATION).map(String::as_str), Some("none"));
    assert_eq!(prov.input_normalization.as_deref(), Some("none"));
    assert_eq!(prov.padding, None);
    assert_eq!(prov.source_format, "tf bundle in a zip");
    assert_eq!(prov.source_sha256, sha256_hex(&std::fs::read(&input).unwrap()));
    // the trainer reads the convention back from the weights: no normalisation, torchvision padding
    let conv = medxfer::train::setup::conventions(&medxfer::train::setup::Init::File(output.clone())).unwrap();
    assert!(conv.no_normalization && conv.padding == medxfer::model::Padding::Torch);
    // the decoy hub/variables bundle was passed over for the one the `checkpoint` file names
    assert!(prov.state_dict_at.starts_with("ResNet50_1x/model.ckpt-1.index"), "{}", prov.state_dict_at);
    for key in ["global_step", "head_supervised/linear_layer/dense/kernel"] {
        assert!(prov.dropped.iter().any(|d| d.key == key), "{key}: {:?}", prov.dropped);
    }
    let on_disk: ckpt::Provenance =
        serde_json::from_slice(&std::fs::read(ckpt::provenance_path(&output)).unwrap()).unwrap();
    assert_eq!(on_disk, prov);
    // at torchvision's width the same file is refused, naming the shapes at fault
    let err = ckpt::convert_file("simclr-v1", &input, &dir.path().join("x.safetensors")).unwrap_err();
    assert!(format!("{err:#}").contains("misshapen 265"), "{err:#}");
}

#[test]
fn simclr_v2_folder_or_index_with_two_shards_converts_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tf_byol().join("simclr_v2");
    for (i, input) in [folder.clone(), folder.join("model.ckpt-1.index")].iter().enumerate() {
        let output = dir.path().join(format!("{i}.safetensors"));
        let prov = ckpt::convert_file_for("simclr-v2", input, &output, 2).unwrap_or_else(|e| panic!("{e:#}"));
        assert_matches_expected(&output, "simclr_v2");
        assert!(prov.state_dict_at.contains("ema_model/base_model/"), "{}", prov.state_dict_at);
        assert_eq!(prov.source_format, "tf bundle");
        let slots: Vec<_> = prov.dropped.iter().filter(|d| d.reason == "optimizer slot").collect();
        assert_eq!(slots.len(), 53, "{:?}", prov.dropped);
        assert!(slots[0].key.ends_with("/kernel/Momentum"));
    }
    // the CLI names the recipe with --recipe as well as --origin
    let out = Command::new(env!("CARGO_BIN_EXE_medxfer"))
        .env("MEDXFER_HOME", dir.path().join("home"))
        .args(["ckpt", "convert", "--recipe", "simclr-v2"])
        .arg(&folder)
        .arg(dir.path().join("cli.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("misshapen"), "{stderr}");
}

#[test]
fn corrupt_crcs_truncated_shards_and_non_float_entries_are_refused_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("ckpt");
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    let copy = || {
        for e in std::fs::read_dir(tf_byol().join("simclr_v2")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), work.join(e.file_name())).unwrap();
        }
    };
    let shard = work.join("model.ckpt-1.data-00001-of-00002");
    let index = work.join("model.ckpt-1.index");
    let refuse = |why: &str| {
        let err = ckpt::convert_file_for("simclr-v2", &work, &out_dir.join("x.safetensors"), 2).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(why) && msg.contains("refusing"), "{why}: {msg}");
    };
    copy();
    let mut data = std::fs::read(&shard).unwrap();
    data[100] ^= 0x01;
    std::fs::write(&shard, &data).unwrap();
    refuse("fails its CRC-32C check (stored");
    copy();
    let data = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &data[..data.len() - 10]).unwrap();
    refuse("(truncated shard?)");
    copy();
    let mut data = std::fs::read(&index).unwrap();
    data[200] ^= 0x40;
    std::fs::write(&index, &data).unwrap();
    refuse("block at byte 0 fails its CRC-32C check");
    copy();
    let data = std::fs::read(&index).unwrap();
    std::fs::write(&index, &data[..data.len() - 1]).unwrap();
    refuse("table magic number");
    copy();
    std::fs::remove_file(&shard).unwrap();
    refuse("model.ckpt-1.data-00001-of-00002");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0, "no output, no temporary");
    // an int64 variable written by TensorFlow is refused as weights in one sentence
    let index = std::fs::read(tf_byol().join("simclr_v2/model.ckpt-1.index")).unwrap();
    let bundle = ckpt::tfbundle::read_index(&index).unwrap();
    let err = bundle.tensor_f32("global_step", &[]).unwrap_err();
    assert_eq!(err.to_string(), "global_step is int64[], not a floating-point type this converter supports");
    // so is a variable TensorFlow saved as slices of a partitioned variable
    let index = std::fs::read(tf_byol().join("sliced/model.ckpt-1.index")).unwrap();
    let bundle = ckpt::tfbundle::read_index(&index).unwrap();
    let shard = std::fs::read(tf_byol().join("sliced/model.ckpt-1.data-00000-of-00001")).unwrap();
    let err = bundle.tensor_f32("base_model/conv2d/kernel", &[&shard]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "base_model/conv2d/kernel is stored as slices of a partitioned variable, which is not supported"
    );
}

#[test]
fn byol_pickle_converts_bit_for_bit_and_records_same_padding() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("resnet50.safetensors");
    let input = tf_byol().join("byol.pkl");
    let prov = ckpt::convert_file_for("byol", &input, &output, 2).unwrap_or_else(|e| panic!("{e:#}"));
    let meta = assert_matches_expected(&output, "byol");
    assert_eq!(meta.get(ckpt::META_PADDING).map(String::as_str), Some("same"));
    assert_eq!(prov.padding.as_deref(), Some("same"));
    assert_eq!(prov.input_normalization, None);
    assert_eq!(prov.ignored_top_level_keys, ["step", "rng"]);
    // the trainer builds the SAME-padding ResNet50 for these weights
    let conv = medxfer::train::setup::conventions(&medxfer::train::setup::Init::File(output.clone())).unwrap();
    assert!(!conv.no_normalization && conv.padding == medxfer::model::Padding::Same);
    let reason = |key: &str| prov.dropped.iter().find(|d| d.key == key).map(|d| d.reason.as_str());
    assert_eq!(reason("online_params/projector/~/linear/w"), Some("not the encoder"));
    assert_eq!(
        reason("online_state/res_net50/~/initial_batchnorm/~/mean_ema/hidden"),
        Some("moving-average bookkeeping")
    );
    assert!(!prov.dropped.iter().any(|d| d.key.starts_with("target_")), "target network is never read");
    // the file really names BYOL's extra globals, which torch files may not use
    let bytes = std::fs::read(&input).unwrap();
    let err = format!("{:#}", ckpt::load(&bytes).err().expect("refused under the torch allow-list"));
    assert!(err.contains("refusing GLOBAL dill._dill._create_namedtuple"), "{err}");
    let un = ckpt::pickle::unpickle_with(&bytes, 0, ckpt::allow::Policy::Byol).unwrap();
    for g in ["dill._dill._create_namedtuple", "haiku._src.data_structures.FlatMapping", "numpy.ndarray"] {
        assert!(un.globals.contains(g), "{g}: {:?}", un.globals);
    }
}

#[test]
fn byol_pickle_naming_a_disallowed_global_is_refused_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("x.safetensors");
    let err = ckpt::convert_file_for("byol", &tf_byol().join("byol_evil.pkl"), &output, 2).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("byol_evil.pkl") && msg.contains("refusing GLOBAL posix.system: it is not on the allow-list"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn mutated_tf_bundles_and_byol_pickles_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let src = tf_byol().join("simclr_v2");
    let names = ["model.ckpt-1.index", "model.ckpt-1.data-00000-of-00002", "model.ckpt-1.data-00001-of-00002"];
    let originals: Vec<Vec<u8>> = names.iter().map(|n| read_st(&src.join(n))).collect();
    std::fs::copy(src.join("checkpoint"), dir.path().join("checkpoint")).unwrap();
    let byol = read_st(&tf_byol().join("byol.pkl"));
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = std::time::Instant::now();
    let output = dir.path().join("out.safetensors");
    let mut errors = 0;
    for i in 0..600 {
        let which = (next() % 3) as usize;
        for (n, data) in names.iter().zip(&originals) {
            std::fs::write(dir.path().join(n), data).unwrap();
        }
        let mut data = if i % 4 == 3 { byol.clone() } else { originals[which].clone() };
        match next() % 4 {
            0 => data.truncate((next() as usize) % data.len()),
            _ => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % data.len();
                    data[at] = next() as u8;
                }
            }
        }
        let result = if i % 4 == 3 {
            let path = dir.path().join("byol.pkl");
            std::fs::write(&path, &data).unwrap();
            ckpt::convert_file_for("byol", &path, &output, 2)
        } else {
            std::fs::write(dir.path().join(names[which]), &data).unwrap();
            ckpt::convert_file_for("simclr-v2", dir.path(), &output, 2)
        };
        errors += result.is_err() as usize;
    }
    assert!(errors > 300, "only {errors} of 600 mutants were refused");
    assert!(started.elapsed().as_secs() < 60, "mutation run took {:?}", started.elapsed());
}

/// A temporary folder in memory when there is one (the differential files' references are ~90 MB each).
fn shm_tempdir() -> tempfile::TempDir {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    tempfile::tempdir_in(base).unwrap()
}

/// Asserts `output` holds exactly the tensors of `reference` (torch.load(weights_only=True)'s, as the recipe
/// selects them), bit for bit.
fn assert_equals_torch(output: &Path, reference: &Path, what: &str) {
    let (got, want) = (read_st(output), read_st(reference));
    let (got, want) = (SafeTensors::deserialize(&got).unwrap(), SafeTensors::deserialize(&want).unwrap());
    assert_eq!(got.len(), want.len(), "{what}");
    for (name, w) in want.iter() {
        let t = got.tensor(name).unwrap_or_else(|_| panic!("{what}: {name} missing"));
        assert_eq!(t.shape(), w.shape(), "{what}: {name}");
        assert!(t.data() == w.data(), "{what}: {name} differs from torch.load(weights_only=True)'s");
    }
}

#[test]
fn converted_tensors_equal_torch_weights_only_load_through_memo_references_and_build() {
    let dir = shm_tempdir();
    run_fixture_script("make_ckpt_differential.py", dir.path(), "--convertible");
    // shared: one state dict under 'ema' and 'state_dict' (torch.save memoises it);
    // mutated: the memoised dict changed after it was stored; build: BUILD re-points tensors (tensor.set_).
    for file in ["shared.pth", "mutated.pth", "build.pth"] {
        let output = dir.path().join(file.replace(".pth", ".safetensors"));
        let prov =
            ckpt::convert_file("moco", &dir.path().join(file), &output).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        assert_eq!(prov.tensors, 265, "{file}");
        assert_equals_torch(&output, &dir.path().join(file.replace(".pth", ".reference.safetensors")), file);
        std::fs::remove_file(&output).unwrap();
    }
}

#[test]
fn cli_origin_takes_zoo_ids_and_names_the_valid_ones_for_an_unknown_one() {
    let dir = shm_tempdir();
    run_fixture_script("make_ckpt_differential.py", dir.path(), "--shared");
    let convert = |origin: &str, output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_medxfer"))
            .env("MEDXFER_HOME", dir.path().join("home"))
            .args(["ckpt", "convert", "--origin", origin])
            .arg(dir.path().join("shared.pth"))
            .arg(output)
            .output()
            .unwrap()
    };
    let output = dir.path().join("moco-v2.safetensors");
    let out = convert("moco-v2", &output);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_equals_torch(&output, &dir.path().join("shared.reference.safetensors"), "--origin moco-v2");
    let prov: ckpt::Provenance =
        serde_json::from_slice(&std::fs::read(ckpt::provenance_path(&output)).unwrap()).unwrap();
    assert_eq!(prov.recipe, "moco");
    assert_eq!(prov.guessed_because, None);
    // a zoo id whose recipe does not fit the file fails like that recipe does
    let wrong = convert("pirl", &dir.path().join("pirl.safetensors"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("origin \"pycontrast\""), "{wrong:?}");
    let unknown = convert("moco-v9", &dir.path().join("x.safetensors"));
    let msg = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(msg.contains("unknown origin \"moco-v9\""), "{msg}");
    for valid in ["moco-v2", "chestxray14", "pirl", "zenodo-module", "auto"] {
        assert!(msg.contains(valid), "{valid} not listed: {msg}");
    }
    assert_eq!(msg.trim().lines().count(), 1, "one sentence: {msg}");
    assert!(!dir.path().join("x.safetensors").exists() && !dir.path().join("pirl.safetensors").exists());
}

#[test]
fn files_with_bytes_torch_never_reads_are_refused_naming_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    run_fixture_script("make_ckpt_differential.py", dir.path(), "--trailing");
    let torch_loads: std::collections::HashMap<String, bool> =
        serde_json::from_slice(&std::fs::read(dir.path().join("trailing.json")).unwrap()).unwrap();
    let cases = [
        ("after_stop.pth", "data.pkl has 17 bytes after its STOP at byte"),
        ("after_legacy_storage.pth", "legacy file has 17 bytes after its last storage at byte"),
        ("zip_comment.pth", "zip has a comment of 17 bytes at byte"),
        ("legacy_then_zip.pth", "bytes after its last storage"),
        ("zip_then_pickle.pth", "bytes after its end record at byte"),
    ];
    for (file, why) in cases {
        // torch reads each of these one way and ignores the rest: a second reader may read the other
        assert_eq!(torch_loads.get(file), Some(&true), "{file}");
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let err = ckpt::load(&bytes).err().unwrap_or_else(|| panic!("{file} was read"));
        assert!(format!("{err:#}").contains(why), "{file}: {err:#}");
    }
}
