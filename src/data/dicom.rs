//! DICOM files (SIIM-ACR is DICOM) to 8-bit `Img` with dicom-rs: uncompressed (implicit/explicit VR, little
//! or big endian), deflated, RLE and JPEG (baseline, extended, lossless) pixel data; the first frame only.
//!
//! `Decoding::Raw` (the study's, dataloader.py:410-414): pydicom's `pixel_array` cast to uint8, i.e. the low
//! byte of each stored value (sign-extended when signed), with no rescale, window or MONOCHROME1 inversion;
//! colour as below but wider samples also keep their low byte.
//!
//! `Decoding::Window`, gray (MONOCHROME1/2): stored values (Bits Stored, sign-extended when signed) → the first Modality LUT
//! Sequence item, else Rescale Slope/Intercept → the first VOI LUT Sequence item (scaled by its bits per entry),
//! else the first Window Center/Width through the VOI LUT Function (LINEAR, LINEAR_EXACT or SIGMOID, as DICOM
//! PS3.3 C.11.2 and pydicom's `apply_voi_lut`, which also prefers the LUT to the window), otherwise the
//! modality output's range (the LUT's bits, or the rescaled range of Bits Stored) → 0..255 rounded;
//! MONOCHROME1 is then inverted so that 255 is white. A LUT maps inputs below its first entry to the first
//! value and above its last to the last. Colour (RGB, YBR_FULL, converted as pydicom does; JPEG's YBR comes
//! out of the codec as RGB): 8-bit samples as they are, wider ones scaled by Bits Stored. Not handled (one
//! error sentence naming the file): other transfer syntaxes (JPEG 2000, JPEG-LS, ...), PALETTE COLOR,
//! uncompressed YBR_FULL_422.

use super::image::Img;
use anyhow::{Result, anyhow, bail};
use dicom_object::file::ReadPreamble;
use dicom_object::{InMemDicomObject, OpenFileOptions, Tag};
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation, PlanarConfiguration, Rescale,
    VoiLutFunction, WindowLevel,
};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How DICOM pixel data becomes 8 bits (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decoding {
    /// pydicom's `pixel_array` cast to uint8 (the study's).
    #[default]
    Raw,
    /// Modality and VOI LUT or window, MONOCHROME1 inverted, the output range scaled to 0..255.
    Window,
}

/// Whether a file is DICOM: a `.dcm` / `.dicom` name, or `DICM` at offset 128 of `head` (its first bytes).
pub fn is_dicom(path: &Path, head: &[u8]) -> bool {
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm") || e.eq_ignore_ascii_case("dicom"));
    by_name || head.get(128..132) == Some(b"DICM")
}

/// Decodes the first frame of a DICOM file to 8-bit gray or RGB (see the module docs).
pub fn decode(path: &Path, decoding: Decoding) -> Result<Img> {
    let name = path.display();
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .open_file(path)
        .map_err(|e| anyhow!("cannot read DICOM file {name}: {e}"))?;
    let uid = obj.meta().transfer_syntax();
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) if ts.can_decode_all() => {}
        found => bail!(
            "{name}: DICOM transfer syntax {} ({uid}) is not supported; medxfer decodes uncompressed, deflated, \
             RLE and JPEG baseline/extended/lossless pixel data",
            found.map(|ts| ts.name()).unwrap_or("unknown")
        ),
    }
    let px = obj
        .decode_pixel_data_frame(0)
        .map_err(|e| anyhow!("cannot decode the pixel data of DICOM file {name}: {e}"))?;
    let luts =
        Luts { modality: Lut::first_of(&obj, MODALITY_LUT_SEQUENCE)?, voi: Lut::first_of(&obj, VOI_LUT_SEQUENCE)? };
    to_img(&px, luts, decoding).map_err(|e| anyhow!("{name}: {e}"))
}

const MODALITY_LUT_SEQUENCE: Tag = Tag(0x0028, 0x3000);
const VOI_LUT_SEQUENCE: Tag = Tag(0x0028, 0x3010);
const LUT_DESCRIPTOR: Tag = Tag(0x0028, 0x3002);
const LUT_DATA: Tag = Tag(0x0028, 0x3006);

/// A lookup table of a Modality or VOI LUT Sequence item (PS3.3 C.11.1, C.11.2.1.1).
#[derive(Debug, Clone, PartialEq)]
struct Lut {
    /// The input value of the first entry.
    first: i64,
    bits: u32,
    data: Vec<u16>,
}

#[derive(Debug, Clone, Default)]
struct Luts {
    modality: Option<Lut>,
    voi: Option<Lut>,
}

impl Lut {
    /// The LUT of the first item of sequence `seq`, if the file has one.
    fn first_of(obj: &InMemDicomObject, seq: Tag) -> Result<Option<Lut>> {
        let Some(item) = obj.element_opt(seq)?.and_then(|e| e.items()).and_then(|items| items.first()) else {
            return Ok(None);
        };
        let what = if seq == MODALITY_LUT_SEQUENCE { "Modality LUT" } else { "VOI LUT" };
        let descriptor: Vec<i64> = item
            .element(LUT_DESCRIPTOR)
            .map_err(|_| anyhow!("its {what} Sequence item has no LUT Descriptor"))?
            .to_multi_int()
            .map_err(|e| anyhow!("its {what} Descriptor is unreadable: {e}"))?;
        let &[entries, first, bits] = descriptor.as_slice() else {
            bail!("its {what} Descriptor has {} values, 3 expected", descriptor.len());
        };
        // PS3.3 C.11.1.1.1: 0 entries means 65536; the first mapped value may be stored unsigned for a signed input
        let entries = if entries == 0 { 65536 } else { entries as usize };
        if !(1..=16).contains(&bits) {
            bail!("its {what} Descriptor gives {bits} bits per entry (1 to 16 are valid)");
        }
        let data_element = item.element(LUT_DATA).map_err(|_| anyhow!("its {what} Sequence item has no LUT Data"))?;
        let mut data: Vec<u16> =
            data_element.to_multi_int().map_err(|e| anyhow!("its {what} Data is unreadable: {e}"))?;
        if bits <= 8 && data.len() * 2 == entries.next_multiple_of(2) && data.len() < entries {
            // 8-bit entries packed two to a 16-bit word, low byte first
            data = data.iter().flat_map(|w| [w & 0xff, w >> 8]).take(entries).collect();
        }
        if data.len() < entries {
            bail!("its {what} Data holds {} entries, the descriptor says {entries}", data.len());
        }
        data.truncate(entries);
        Ok(Some(Lut { first, bits: bits as u32, data }))
    }

    fn apply(&self, x: f64) -> f64 {
        let last = self.data.len() as i64 - 1;
        self.data[(x.round() as i64 - self.first).clamp(0, last) as usize] as f64
    }

    /// The largest value an entry can hold.
    fn max(&self) -> f64 {
        ((1u32 << self.bits) - 1) as f64
    }
}

fn to_img(px: &DecodedPixelData, luts: Luts, decoding: Decoding) -> Result<Img> {
    let (width, height) = (px.columns() as usize, px.rows() as usize);
    let channels = px.samples_per_pixel() as usize;
    let pi = px.photometric_interpretation().clone();
    let samples = Samples::of(px, width * height * channels)?;
    let img = match (channels, &pi) {
        (1, PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2)
            if decoding == Decoding::Raw =>
        {
            // pydicom gives 1-bit samples as 0/1, dicom-pixeldata as 0/255
            let one_bit = px.bits_allocated() == 1;
            let data = (0..width * height)
                .map(|i| {
                    let v = samples.get(i) as i64;
                    (if one_bit { v / 255 } else { v }) as u8
                })
                .collect();
            Img { width, height, channels: 1, data }
        }
        (1, PhotometricInterpretation::Monochrome1 | PhotometricInterpretation::Monochrome2) => {
            let rescale = px.rescale()?.first().copied().unwrap_or(Rescale { slope: 1.0, intercept: 0.0 });
            let window = px.window()?.and_then(|w| w.first().copied());
            let function = px.voi_lut_function()?.and_then(|f| f.first().copied()).unwrap_or_default();
            let gray = GrayMap::new(&samples, rescale, window.map(|w| (w, function)), luts);
            let invert = pi == PhotometricInterpretation::Monochrome1;
            let data = (0..width * height)
                .map(|i| {
                    let v = gray.map(samples.get(i));
                    if invert { 255 - v } else { v }
                })
                .collect();
            Img { width, height, channels: 1, data }
        }
        (3, PhotometricInterpretation::Rgb | PhotometricInterpretation::YbrFull) => {
            let planar = px.planar_configuration() == PlanarConfiguration::PixelFirst;
            let plane = width * height;
            let scale = 255.0 / samples.unsigned_max();
            let mut data = Vec::with_capacity(plane * 3);
            for p in 0..plane {
                for c in 0..3 {
                    let v = samples.get(if planar { c * plane + p } else { p * 3 + c });
                    let raw = samples.bits == 8 || decoding == Decoding::Raw;
                    data.push(if raw { v as i64 as u8 } else { round_u8(v * scale) });
                }
            }
            if pi == PhotometricInterpretation::YbrFull {
                ybr_full_to_rgb(&mut data);
            }
            Img { width, height, channels: 3, data }
        }
        _ => bail!(
            "DICOM images with {channels} sample(s) per pixel and photometric interpretation {pi} are not supported \
             (MONOCHROME1, MONOCHROME2, RGB and YBR_FULL are)"
        ),
    };
    Ok(img)
}

/// The stored sample values of one frame: `bits` allocated per sample, of which `stored` are meaningful.
struct Samples<'a> {
    data: &'a [u8],
    bits: u16,
    stored: u16,
    signed: bool,
}

impl<'a> Samples<'a> {
    fn of(px: &'a DecodedPixelData, count: usize) -> Result<Samples<'a>> {
        // dicom-pixeldata expands 1-bit data to one byte (0 or 255) per sample.
        let (bits, stored) = match px.bits_allocated() {
            1 => (8, 8),
            b @ (8 | 16 | 32) => (b, px.bits_stored().clamp(1, b)),
            b => bail!("DICOM Bits Allocated {b} is not supported (1, 8, 16 or 32 are)"),
        };
        let data = px.data();
        let needed = count * bits as usize / 8;
        if data.len() < needed {
            bail!("the DICOM pixel data holds {} bytes, {needed} expected for the first frame", data.len());
        }
        let signed = px.pixel_representation() == PixelRepresentation::Signed && px.bits_allocated() != 1;
        Ok(Samples { data: &data[..needed], bits, stored, signed })
    }

    /// Sample `i` as its value: the low `stored` bits, sign-extended when signed.
    fn get(&self, i: usize) -> f64 {
        let raw = match self.bits {
            8 => self.data[i] as u32,
            16 => u16::from_ne_bytes([self.data[2 * i], self.data[2 * i + 1]]) as u32,
            _ => u32::from_ne_bytes(self.data[4 * i..4 * i + 4].try_into().expect("4 bytes")),
        };
        let shift = 32 - self.stored as u32;
        if self.signed { (((raw << shift) as i32) >> shift) as f64 } else { ((raw << shift) >> shift) as f64 }
    }

    /// The stored range: [0, 2^stored - 1] or [-2^(stored-1), 2^(stored-1) - 1].
    fn range(&self) -> (f64, f64) {
        let full = 2f64.powi(self.stored as i32);
        if self.signed { (-full / 2.0, full / 2.0 - 1.0) } else { (0.0, full - 1.0) }
    }

    fn unsigned_max(&self) -> f64 {
        2f64.powi(self.stored as i32) - 1.0
    }
}

/// Stored value → 0..255: modality LUT or rescale, then the VOI LUT, the window or the modality output's range.
struct GrayMap {
    rescale: Rescale,
    window: Option<(WindowLevel, VoiLutFunction)>,
    luts: Luts,
    range: (f64, f64),
    /// Precomputed for stored widths up to 16 bits, indexed by value - range.0.
    table: Vec<u8>,
}

impl GrayMap {
    fn new(samples: &Samples, rescale: Rescale, window: Option<(WindowLevel, VoiLutFunction)>, luts: Luts) -> GrayMap {
        let range = samples.range();
        let mut map = GrayMap { rescale, window, luts, range, table: Vec::new() };
        if samples.stored <= 16 {
            map.table = (range.0 as i64..=range.1 as i64).map(|v| map.compute(v as f64)).collect();
        }
        map
    }

    fn map(&self, stored: f64) -> u8 {
        if self.table.is_empty() { self.compute(stored) } else { self.table[(stored - self.range.0) as usize] }
    }

    fn compute(&self, stored: f64) -> u8 {
        let Rescale { slope, intercept } = self.rescale;
        let x = match &self.luts.modality {
            Some(lut) => lut.apply(stored),
            None => stored * slope + intercept,
        };
        if let Some(lut) = &self.luts.voi {
            return round_u8(lut.apply(x) / lut.max() * 255.0);
        }
        let unit = match self.window {
            Some((w, VoiLutFunction::Linear)) if w.width >= 1.0 => {
                let (c, w) = (w.center - 0.5, w.width - 1.0);
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    1.0
                } else {
                    (x - c) / w + 0.5
                }
            }
            Some((w, VoiLutFunction::LinearExact)) if w.width > 0.0 => {
                if x <= w.center - w.width / 2.0 {
                    0.0
                } else if x > w.center + w.width / 2.0 {
                    1.0
                } else {
                    (x - w.center) / w.width + 0.5
                }
            }
            Some((w, VoiLutFunction::Sigmoid)) if w.width > 0.0 => {
                1.0 / (1.0 + (-4.0 * (x - w.center) / w.width).exp())
            }
            _ => {
                let (lo, hi) = match &self.luts.modality {
                    Some(lut) => (0.0, lut.max()),
                    None => (self.range.0 * slope + intercept, self.range.1 * slope + intercept),
                };
                if hi == lo { 0.0 } else { (x - lo) / (hi - lo) }
            }
        };
        round_u8(unit * 255.0)
    }
}

fn round_u8(v: f64) -> u8 {
    (v + 0.5).floor().clamp(0.0, 255.0) as u8
}

/// YBR_FULL to RGB in place, as pydicom's `convert_color_space` (float32, then floor(x + 0.5), clipped).
fn ybr_full_to_rgb(data: &mut [u8]) {
    for px in data.chunks_exact_mut(3) {
        let (y, cb, cr) = (px[0] as f32, px[1] as f32 - 128.0, px[2] as f32 - 128.0);
        let r = y + 1.402 * cr;
        let g = y - 0.114 * 1.772 / 0.587 * cb - 0.299 * 1.402 / 0.587 * cr;
        let b = y + 1.772 * cb;
        for (out, v) in px.iter_mut().zip([r, g, b]) {
            *out = (v + 0.5).floor().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicom_is_recognised_by_name_or_by_the_magic_at_128() {
        let mut head = vec![0u8; 132];
        assert!(!is_dicom(Path::new("a.png"), &head));
        assert!(is_dicom(Path::new("a.DCM"), &head));
        head[128..].copy_from_slice(b"DICM");
        assert!(is_dicom(Path::new("noext"), &head));
        assert!(!is_dicom(Path::new("short"), b"DICM"));
    }

    #[test]
    fn linear_window_follows_the_dicom_formula() {
        let samples = Samples { data: &[], bits: 16, stored: 12, signed: false };
        let rescale = Rescale { slope: 1.0, intercept: 0.0 };
        let map = GrayMap::new(
            &samples,
            rescale,
            Some((WindowLevel { center: 100.0, width: 51.0 }, VoiLutFunction::Linear)),
            Luts::default(),
        );
        assert_eq!(
            (map.map(74.0), map.map(75.0), map.map(100.0), map.map(125.0), map.map(4095.0)),
            (0, 3, 130, 255, 255)
        );
        let plain = GrayMap::new(&samples, rescale, None, Luts::default());
        assert_eq!((plain.map(0.0), plain.map(4095.0), plain.map(2048.0)), (0, 255, 128));
    }
}
