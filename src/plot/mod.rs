//! Figures of the results (`medxfer results --plot`, the TUI Leaderboard's export): `figure` takes the
//! numbers from the leaderboard and metrics.jsonl, `draw` draws them; this module picks SVG or PNG from
//! the file name and writes the file (and the numeric side file) atomically.

pub mod draw;
pub mod figure;

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// One figure's numbers.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Figure {
    Bars {
        #[serde(flatten)]
        bars: figure::Bars,
        /// The p-values are printed beside the bars.
        p_values: bool,
    },
    LabelEfficiency(figure::Efficiency),
    Curves(figure::Curves),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// From the file name's extension (.svg or .png, any case).
    pub fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => bail!("figure file {} must end in .svg or .png", path.display()),
        }
    }
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Bars { bars, .. } => draw::bars_size(bars),
            Figure::LabelEfficiency(f) => draw::efficiency_size(f),
            Figure::Curves(f) => draw::curves_size(f),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<()> {
        match self {
            Figure::Bars { bars, p_values } => draw::bars(root, bars, *p_values),
            Figure::LabelEfficiency(f) => draw::efficiency(root, f),
            Figure::Curves(f) => draw::curves(root, f),
        }?;
        root.present().map_err(|e| anyhow!("cannot draw the figure: {e}"))
    }

    /// The figure as SVG text or PNG bytes.
    pub fn render(&self, format: Format) -> Result<Vec<u8>> {
        draw::register_font()?;
        let (w, h) = self.size();
        match format {
            Format::Svg => {
                let mut text = String::new();
                self.draw(&SVGBackend::with_string(&mut text, (w, h)).into_drawing_area())?;
                Ok(text.into_bytes())
            }
            Format::Png => {
                let mut rgb = vec![0u8; w as usize * h as usize * 3];
                self.draw(&BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area())?;
                let img = image::RgbImage::from_raw(w, h, rgb).context("the PNG buffer has the wrong size")?;
                let mut png = Vec::new();
                img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
                Ok(png)
            }
        }
    }

    /// Writes the figure to `path` (format from its extension), atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.render(Format::of(path)?)?;
        crate::atomic::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes the numbers drawn as JSON to `path`, atomically.
    pub fn write_data(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)? + "\n";
        crate::atomic::write(path, text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
    }
}
