//! `medxfer data prepare`: turning a publisher's annotation files into the image-mask layout the specs read.
//!
//! SIIM-ACR (`siim`): the Kaggle RLE CSV (`ImageId,EncodedPixels`, header first) → one PNG mask per image,
//! `OUT/<ImageId>.png`, 1024×1024, 0 or 255. EncodedPixels is `-1` (no pneumothorax) or pairs
//! `offset length`: each run starts `offset` pixels after the end of the previous one (the first after pixel
//! 0), pixels counted column by column (the Kaggle decoder's `rle2mask(...).T`). Several rows of one image are
//! united. The whole CSV is checked before anything is written; each mask is written atomically.

use super::image::Img;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// SIIM-ACR images are 1024×1024.
pub const SIIM_SIZE: usize = 1024;

/// What `siim_masks` wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiimReport {
    pub masks: usize,
    /// Masks with at least one foreground pixel.
    pub positive: usize,
    /// CSV rows read (an image may have several).
    pub rows: usize,
}

/// The foreground pixels (row-major indices) of one EncodedPixels value; `what` names its place for errors.
pub fn decode_rle(encoded: &str, size: usize, what: &str) -> Result<Vec<usize>> {
    let encoded = encoded.trim();
    if encoded == "-1" {
        return Ok(vec![]);
    }
    let numbers = encoded
        .split_whitespace()
        .map(|t| {
            t.parse::<usize>().map_err(|_| anyhow::anyhow!("{what}: EncodedPixels value {t:?} is not a whole number"))
        })
        .collect::<Result<Vec<_>>>()?;
    if numbers.is_empty() || numbers.len() % 2 != 0 {
        bail!("{what}: EncodedPixels holds {} numbers; expected -1 or offset/length pairs", numbers.len());
    }
    let total = size * size;
    let mut pixels = Vec::new();
    let mut position = 0usize;
    for pair in numbers.chunks_exact(2) {
        let (offset, length) = (pair[0], pair[1]);
        let start = position.saturating_add(offset);
        let end = start.saturating_add(length);
        if length == 0 || end > total {
            bail!("{what}: the run `{offset} {length}` ends at pixel {end}, outside the {size}x{size} image");
        }
        pixels.extend((start..end).map(|i| (i % size) * size + i / size));
        position = end;
    }
    Ok(pixels)
}

/// Reads the Kaggle SIIM RLE CSV and writes every image's mask as `out/<ImageId>.png`.
pub fn siim_masks(csv: &Path, out: &Path) -> Result<SiimReport> {
    let text = std::fs::read_to_string(csv).with_context(|| format!("cannot read {}", csv.display()))?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l.trim_start_matches('\u{feff}')).unwrap_or_default();
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns != ["ImageId", "EncodedPixels"] {
        bail!("{}:1: the header is {header:?}, expected ImageId,EncodedPixels", csv.display());
    }
    let mut masks: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut rows = 0;
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let what = format!("{}:{}", csv.display(), i + 1);
        let Some((id, encoded)) = line.split_once(',') else {
            bail!("{what}: expected ImageId,EncodedPixels but the row has no comma");
        };
        let id = id.trim();
        let plain = !id.is_empty()
            && !id.starts_with('.')
            && id.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !plain {
            bail!("{what}: ImageId {id:?} is not a plain file name (letters, digits, '.', '_', '-')");
        }
        let pixels = decode_rle(encoded, SIIM_SIZE, &what)?;
        masks.entry(id.to_string()).or_default().extend(pixels);
        rows += 1;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut positive = 0;
    for (id, pixels) in &masks {
        let mut mask = Img::new(SIIM_SIZE, SIIM_SIZE, 1);
        for &p in pixels {
            mask.data[p] = 255;
        }
        positive += usize::from(!pixels.is_empty());
        mask.save_png(&out.join(format!("{id}.png")))?;
    }
    Ok(SiimReport { masks: masks.len(), positive, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_relative_and_column_major() {
        // 4x4: pixels 1,2 (column 0, rows 1-2), then 3 after pixel 3 → 6 (column 1, row 2)
        assert_eq!(decode_rle("1 2 3 1", 4, "t").unwrap(), vec![4, 8, 9]);
        assert_eq!(decode_rle(" -1", 4, "t").unwrap(), Vec::<usize>::new());
        assert!(decode_rle("1 2 3", 4, "x.csv:3").unwrap_err().to_string().starts_with("x.csv:3: "));
        assert!(decode_rle("10 7", 4, "t").unwrap_err().to_string().contains("outside"));
        assert!(decode_rle("1 a", 4, "t").unwrap_err().to_string().contains("\"a\""));
    }
}
