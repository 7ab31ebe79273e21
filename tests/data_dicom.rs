//! DICOM decoding against pydicom: pydicom's bundled test files (uncompressed little/big endian, implicit VR,
//! deflated, RLE, JPEG baseline, 1/8/16/32-bit, gray and RGB) and files pydicom writes here (MONOCHROME1, a
//! SIGMOID window, an 8-bit JPEG-baseline chest-X-ray-like file without extension as SIIM-ACR ships them, a
//! VOI LUT Sequence and a Modality LUT Sequence),
//! decoded by medxfer and compared with pydicom's `pixel_array` through pydicom's own modality and VOI LUT
//! functions, scaled to 8 bits as `data::dicom` documents (`Decoding::Window`), and with the study's
//! `pixel_array.astype(np.uint8)` (`Decoding::Raw`, the default).

use medxfer::data::dicom::Decoding;
use medxfer::data::image::Img;
use std::path::{Path, PathBuf};
use std::process::Command;

const REFERENCE: &str = r#"
import json, os, sys
import numpy as np
try:
    import pydicom
except ImportError:
    sys.exit("pydicom is missing from the reference Python: run scripts/setup-libtorch (or pip install pydicom==3.0.2)")
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit
out = sys.argv[1]

def written():
    """Files pydicom writes: MONOCHROME1, a SIGMOID window, and an 8-bit JPEG-baseline file with no extension."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(os.path.join(out, "mono1.dcm"))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = 40, 400, "SIGMOID"
    ds.save_as(os.path.join(out, "ct_sigmoid.dcm"))
    from PIL import Image
    import io
    y, x = np.mgrid[0:192, 0:160]
    img = (128 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO(); Image.fromarray(img).save(buf, format="JPEG", quality=90)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for tag in ["RescaleSlope", "RescaleIntercept"]:
        del ds[tag]
    ds.Rows, ds.Columns = img.shape
    ds.BitsAllocated = ds.BitsStored = 8; ds.HighBit = 7; ds.PixelRepresentation = 0
    ds.PixelData = pydicom.encaps.encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(os.path.join(out, "siim_like"), enforce_file_format=True)
    # A VOI LUT Sequence (a square-root curve over -1000..999 HU, 12 bits) on the rescaled CT, window removed
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for tag in ["WindowCenter", "WindowWidth"]:
        if tag in ds:
            del ds[tag]
    item = pydicom.Dataset()
    item.add_new(0x00283002, "SS", [2000, -1000, 12])
    curve = np.round(4095 * np.sqrt(np.arange(2000) / 1999.0)).astype("<u2")
    item.add_new(0x00283006, "OW", curve.tobytes())
    ds.VOILUTSequence = pydicom.Sequence([item])
    ds.save_as(os.path.join(out, "ct_voi_lut.dcm"))
    # A Modality LUT Sequence (a quadratic curve, 16 bits) in place of the MR's rescale, no window
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    for tag in ["WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"]:
        if tag in ds:
            del ds[tag]
    n = int(ds.pixel_array.max()) * 3 // 4
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [n, 0, 16])
    item.add_new(0x00283006, "US", [int(v) for v in np.round(65535 * (np.arange(n) / (n - 1.0)) ** 2)])
    ds.ModalityLUTSequence = pydicom.Sequence([item])
    ds.save_as(os.path.join(out, "mr_modality_lut.dcm"))
    return [os.path.join(out, n) for n in ["mono1.dcm", "ct_sigmoid.dcm", "siim_like", "ct_voi_lut.dcm",
                                           "mr_modality_lut.dcm"]]

def expected(ds):
    arr = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    bits = ds.BitsStored
    if ds.SamplesPerPixel == 3:
        return arr if ds.BitsAllocated == 8 else np.floor(arr / (2.0 ** bits - 1) * 255 + 0.5).astype(np.uint8)
    if ds.BitsAllocated == 1:
        return (arr * 255).astype(np.uint8)
    lo, hi = (0, 2 ** bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    lo, hi = lo * slope + intercept, hi * slope + intercept
    if "ModalityLUTSequence" in ds:
        lo, hi = 0, 2 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1
    x = apply_modality_lut(arr, ds).astype(np.float64)
    if "VOILUTSequence" in ds:
        lo, hi = 0, 2 ** ds.VOILUTSequence[0].LUTDescriptor[2] - 1
        x = apply_voi_lut(x, ds, index=0).astype(np.float64)
    elif "WindowCenter" in ds:
        x = apply_voi_lut(x, ds, index=0)  # pydicom maps the window onto the same rescaled stored range
    v = np.clip(np.floor((x - lo) / (hi - lo) * 255 + 0.5), 0, 255).astype(np.uint8)
    return 255 - v if ds.PhotometricInterpretation == "MONOCHROME1" else v

bundled = ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
           "examples_overlay.dcm", "image_dfl.dcm", "liver_1frame.dcm", "examples_rgb_color.dcm",
           "ExplVR_BigEnd.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_2frame.dcm",
           "SC_rgb_small_odd.dcm", "SC_rgb_jpeg_dcmtk.dcm", "examples_ybr_color.dcm"]
cases = []
for path in [get_testdata_file(n) for n in bundled] + written():
    ds = pydicom.dcmread(path)
    v = expected(ds)
    ref = os.path.join(out, os.path.basename(path) + ".ref")
    open(ref, "wb").write(np.ascontiguousarray(v).tobytes())
    raw = ds.pixel_array[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else ds.pixel_array
    raw_ref = ref + ".raw"
    open(raw_ref, "wb").write(np.ascontiguousarray(raw.astype(np.uint8)).tobytes())
    cases.append({"path": path, "ref": ref, "raw_ref": raw_ref, "width": int(ds.Columns), "height": int(ds.Rows),
                  "channels": int(ds.SamplesPerPixel), "lossy": "JPEG" in ds.file_meta.TransferSyntaxUID.name})
unsupported = {n: get_testdata_file(n) for n in ["JPEG2000.dcm", "examples_palette.dcm"]}
print(json.dumps({"cases": cases, "unsupported": unsupported}))
"#;

fn reference(dir: &Path) -> serde_json::Value {
    let py = std::env::var("MEDXFER_TEST_PYTHON")
        .expect("MEDXFER_TEST_PYTHON is unset: source scripts/torch-env to point it at the reference Python");
    let out = Command::new(&py).arg("-c").arg(REFERENCE).arg(dir).output().expect("cannot start the reference Python");
    assert!(out.status.success(), "the pydicom reference failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the reference printed no JSON")
}

#[test]
fn dicom_pixels_match_pydicom_windowed_and_scaled_to_8_bits() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path());
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 21, "{cases:?}");
    for case in cases {
        let path = PathBuf::from(case["path"].as_str().unwrap());
        let img = Img::open_with(&path, Decoding::Window).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let shape = (img.width as u64, img.height as u64, img.channels as u64);
        let want =
            (case["width"].as_u64().unwrap(), case["height"].as_u64().unwrap(), case["channels"].as_u64().unwrap());
        assert_eq!(shape, want, "{}: width, height, channels", path.display());
        let expected = std::fs::read(case["ref"].as_str().unwrap()).unwrap();
        assert_eq!(img.data.len(), expected.len(), "{}", path.display());
        let diffs: Vec<i32> = img.data.iter().zip(&expected).map(|(a, b)| (*a as i32 - *b as i32).abs()).collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        let spread = expected.iter().max().unwrap() - expected.iter().min().unwrap();
        eprintln!("{}: max abs diff {max}, mean {mean:.4}, value spread {spread}", path.display());
        if case["lossy"].as_bool().unwrap() {
            // JPEG: two decoders (pydicom's Pillow/libjpeg and jpeg-decoder) round the inverse DCT and upsample
            // subsampled chroma (YBR_FULL_422) differently: a few pixels differ by a few levels.
            assert!(
                max <= 4 && mean <= 0.05,
                "{}: JPEG differs from pydicom by max {max}, mean {mean}",
                path.display()
            );
        } else {
            assert!(max <= 1, "{}: max abs difference {max} from pydicom exceeds 1", path.display());
        }
        assert!(
            spread > 5,
            "{}: the reference is nearly flat ({spread}), the comparison proves little",
            path.display()
        );
    }
}

/// The study's decoding (the default): pydicom's `pixel_array` cast to uint8, equal byte for byte (JPEG within
/// the decoders' rounding, as above); on these files it differs from the windowed decoding.
#[test]
fn dicom_pixels_match_the_studys_raw_uint8_cast_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path());
    let mut differs_from_window = 0;
    for case in reference["cases"].as_array().unwrap() {
        let path = PathBuf::from(case["path"].as_str().unwrap());
        let img = Img::open(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let expected = std::fs::read(case["raw_ref"].as_str().unwrap()).unwrap();
        assert_eq!(img.data.len(), expected.len(), "{}", path.display());
        let diffs: Vec<u8> = img.data.iter().zip(&expected).map(|(a, b)| a.abs_diff(*b)).collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        if case["lossy"].as_bool().unwrap() {
            let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
            assert!(max <= 4 && mean <= 0.05, "{}: JPEG differs by max {max}, mean {mean}", path.display());
        } else {
            assert_eq!(max, 0, "{}: raw decoding differs from pixel_array.astype(uint8)", path.display());
        }
        differs_from_window += usize::from(img != Img::open_with(&path, Decoding::Window).unwrap());
    }
    assert!(differs_from_window >= 10, "only {differs_from_window} files decode differently raw and windowed");
}

#[test]
fn unsupported_dicom_fails_with_one_sentence_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(dir.path());
    let j2k = reference["unsupported"]["JPEG2000.dcm"].as_str().unwrap();
    let err = format!("{:#}", Img::open(Path::new(j2k)).unwrap_err());
    assert!(err.contains("JPEG2000.dcm") && err.contains("transfer syntax") && err.contains("JPEG 2000"), "{err}");
    let palette = reference["unsupported"]["examples_palette.dcm"].as_str().unwrap();
    let err = format!("{:#}", Img::open(Path::new(palette)).unwrap_err());
    assert!(err.contains("examples_palette.dcm") && err.contains("PALETTE COLOR"), "{err}");
    let fake = dir.path().join("broken.dcm");
    std::fs::write(&fake, b"not a dicom file").unwrap();
    let err = format!("{:#}", Img::open(&fake).unwrap_err());
    assert!(err.contains("broken.dcm"), "{err}");
}
