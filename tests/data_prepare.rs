//! `medxfer data prepare siim`: the Kaggle SIIM-ACR RLE CSV to mask PNGs, checked against the Kaggle decoder
//! (`rle2mask(...).T`, written out in Python below) on a CSV whose runs Python encodes from random masks; and a
//! malformed row refused in one sentence naming file:line, with nothing written.

use medxfer::data::image::Img;
use std::path::Path;
use std::process::Command;

const REFERENCE: &str = r#"
import sys, os
import numpy as np
out = sys.argv[1]

def rle2mask(rle, width, height):  # the Kaggle SIIM starter kernel's decoder
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts = array[0::2]
    lengths = array[1::2]
    current_position = 0
    for index, start in enumerate(starts):
        current_position += start
        mask[current_position:current_position + lengths[index]] = 255
        current_position += lengths[index]
    return mask.reshape(width, height)

def mask2rle(mask):  # relative offsets, column by column
    flat = (mask.T.flatten() > 0).astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts, ends = edges[0::2], edges[1::2]
    out, prev = [], 0
    for s, e in zip(starts, ends):
        out += [int(s - prev), int(e - s)]
        prev = e
    return " ".join(map(str, out)) if out else "-1"

rng = np.random.default_rng(3)
rows = []
for k in range(4):
    m = np.zeros((1024, 1024), np.uint8)
    for _ in range(3):
        y, x, h, w = rng.integers(0, 1000), rng.integers(0, 1000), rng.integers(1, 60), rng.integers(1, 40)
        m[y:y + h, x:x + w] = 255
    rows.append((f"1.2.276.0.7230010.3.1.4.{k}", mask2rle(m)))
rows.append(("1.2.276.0.7230010.3.1.4.1", mask2rle(np.pad(np.full((5, 9), 255, np.uint8), ((1010, 9), (3, 1012))))))
rows.append(("1.2.276.0.7230010.3.1.4.9", "-1"))
with open(os.path.join(out, "train-rle.csv"), "w") as f:
    f.write("ImageId, EncodedPixels\n")
    for i, r in rows:
        f.write(f"{i}, {r}\n")
masks = {}
for i, r in rows:
    m = np.zeros((1024, 1024)) if r.strip() == "-1" else rle2mask(r, 1024, 1024).T
    masks[i] = np.maximum(masks.get(i, 0), m)
for i, m in masks.items():
    open(os.path.join(out, i + ".ref"), "wb").write(m.astype(np.uint8).tobytes())
print(len(masks))
"#;

fn medxfer(args: &[&str], home: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medxfer")).args(args).env("MEDXFER_HOME", home).output().unwrap()
}

#[test]
fn siim_rle_csv_becomes_the_kaggle_decoders_masks() {
    let dir = tempfile::tempdir().unwrap();
    let py = std::env::var("MEDXFER_TEST_PYTHON").expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env");
    let out = Command::new(py).arg("-c").arg(REFERENCE).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let csv = dir.path().join("train-rle.csv");
    let masks = dir.path().join("masks");
    let run =
        medxfer(&["data", "prepare", "siim", csv.to_str().unwrap(), masks.to_str().unwrap(), "--json"], dir.path());
    assert!(run.status.success(), "prepare failed: {}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (report["masks"].as_u64(), report["positive"].as_u64(), report["rows"].as_u64()),
        (Some(5), Some(4), Some(6))
    );
    let mut compared = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ref") {
            continue;
        }
        let id = path.file_stem().unwrap().to_str().unwrap();
        let ours = Img::open(&masks.join(format!("{id}.png"))).unwrap();
        assert_eq!((ours.width, ours.height, ours.channels), (1024, 1024, 1));
        assert!(ours.data == std::fs::read(&path).unwrap(), "{id}: the mask differs from the Kaggle decoder's");
        compared += 1;
    }
    assert_eq!(compared, 5);

    // a malformed row: one sentence with file:line, non-zero exit, nothing written
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "ImageId,EncodedPixels\n1.2.3,-1\n1.2.4,5 10 7\n").unwrap();
    let fresh = dir.path().join("fresh");
    let run = medxfer(&["data", "prepare", "siim", bad.to_str().unwrap(), fresh.to_str().unwrap()], dir.path());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("bad.csv:3: EncodedPixels holds 3 numbers"), "{err}");
    assert!(!fresh.exists(), "nothing is written for a malformed CSV");
}
