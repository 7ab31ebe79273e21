//! A curve chart drawn cell by cell from per-column min/max buckets, with marks under the x axis.

use super::super::curve::{Series, column_of};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;

/// One curve: its points, the character it is drawn with, its style.
pub struct Curve<'a> {
    pub series: &'a Series,
    pub symbol: char,
    pub style: Style,
}

/// Several runs of one model drawn as their mean (`symbol`) inside their min–max band (`BAND`).
pub struct Band<'a> {
    pub members: Vec<&'a Series>,
    pub symbol: char,
    pub style: Style,
}

/// The band's fill: distinct from every curve symbol, so it reads without colour.
pub const BAND: char = '░';

/// Per column of `width` over `[x0, x1)`: the band's (lowest, highest, mean of the members' mid values).
pub fn band_columns(members: &[&Series], x0: f64, x1: f64, width: usize) -> Vec<Option<(f64, f64, f64)>> {
    let mut acc: Vec<Option<(f64, f64, f64, usize)>> = vec![None; width];
    for series in members {
        for (col, span) in series.columns(x0, x1, width).into_iter().enumerate() {
            let Some((lo, hi)) = span else { continue };
            let mid = (lo + hi) / 2.0;
            acc[col] = Some(match acc[col] {
                Some((l, h, sum, n)) => (l.min(lo), h.max(hi), sum + mid, n + 1),
                None => (lo, hi, mid, 1),
            });
        }
    }
    acc.into_iter().map(|c| c.map(|(lo, hi, sum, n)| (lo, hi, sum / n as f64))).collect()
}

/// Width of the y-axis labels.
const LABEL_WIDTH: u16 = 8;

/// Draws `curves` over a shared x/y range; `marks` are (x, symbol) shown on the bottom row.
pub fn render(curves: &[Curve], marks: &[(f64, char)], area: Rect, buf: &mut Buffer) {
    render_with_bands(curves, &[], marks, area, buf);
}

/// As `render`, with `bands` drawn first (fill, then mean) under the curves.
pub fn render_with_bands(curves: &[Curve], bands: &[Band], marks: &[(f64, char)], area: Rect, buf: &mut Buffer) {
    if area.width <= LABEL_WIDTH + 1 || area.height < 3 {
        return;
    }
    let band_series = bands.iter().flat_map(|b| b.members.iter().copied());
    let Some((x0, x1, y0, y1)) = bounds(curves.iter().map(|c| c.series).chain(band_series)) else {
        buf.set_string(area.x, area.y, "no points yet", Style::default());
        return;
    };
    let plot = Rect { x: area.x + LABEL_WIDTH, y: area.y, width: area.width - LABEL_WIDTH, height: area.height - 1 };
    let (width, rows) = (plot.width as usize, plot.height as usize);
    let x_end = x1 + (x1 - x0).max(1.0) / (width as f64 * 4.0);
    let y_span = if y1 > y0 { y1 - y0 } else { 1.0 };
    let row_of =
        |y: f64| rows - 1 - (((y - y0) / y_span) * (rows - 1) as f64).round().clamp(0.0, (rows - 1) as f64) as usize;
    buf.set_string(area.x, plot.y, format!("{y1:>7.3}"), Style::default());
    buf.set_string(area.x, plot.y + plot.height - 1, format!("{y0:>7.3}"), Style::default());
    for band in bands {
        let columns = band_columns(&band.members, x0, x_end, width);
        for (col, span) in columns.iter().enumerate() {
            let Some((lo, hi, _)) = span else { continue };
            for row in row_of(*hi)..=row_of(*lo) {
                buf[(plot.x + col as u16, plot.y + row as u16)].set_char(BAND).set_style(band.style);
            }
        }
        for (col, span) in columns.iter().enumerate() {
            let Some((_, _, mean)) = span else { continue };
            buf[(plot.x + col as u16, plot.y + row_of(*mean) as u16)].set_char(band.symbol).set_style(band.style);
        }
    }
    for curve in curves {
        for (col, span) in curve.series.columns(x0, x_end, width).into_iter().enumerate() {
            let Some((lo, hi)) = span else { continue };
            for row in row_of(hi)..=row_of(lo) {
                buf[(plot.x + col as u16, plot.y + row as u16)].set_char(curve.symbol).set_style(curve.style);
            }
        }
    }
    let axis_y = area.y + area.height - 1;
    for i in 0..plot.width {
        buf[(plot.x + i, axis_y)].set_char('-');
    }
    for (x, symbol) in marks {
        let col = column_of(*x, x0, x_end - x0, width);
        buf[(plot.x + col as u16, axis_y)].set_char(*symbol);
    }
}

fn bounds<'a>(series: impl Iterator<Item = &'a Series>) -> Option<(f64, f64, f64, f64)> {
    series.filter_map(|s| s.bounds()).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1), a.2.min(b.2), a.3.max(b.3)))
}
