//! Curve charts from per-column min/max buckets: cell by cell with a symbol per curve (`render_with_bands`), or as
//! braille lines with labelled axes (`render_lines`); marks sit on the x axis.

use super::super::curve::{Series, column_of};
use super::braille::Raster;
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

/// Draws `curves` cell by cell over a shared x/y range, `bands` first (fill, then mean) under them;
/// `marks` are (x, symbol) shown on the bottom row.
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

/// The x axis of `render_lines`: its name and labelled ticks (x, label).
pub struct XAxis {
    pub name: &'static str,
    pub ticks: Vec<(f64, String)>,
}

/// Draws `dotted` curves as braille lines and `symbols` curves cell by cell on top, over a shared range,
/// with y labels (top, middle, bottom), an x axis carrying `marks` (x, symbol) and the axis's tick labels.
pub fn render_lines(
    dotted: &[Curve],
    symbols: &[Curve],
    marks: &[(f64, char)],
    axis: &XAxis,
    area: Rect,
    buf: &mut Buffer,
) {
    if area.width <= LABEL_WIDTH + 1 || area.height < 4 {
        return;
    }
    let Some((x0, x1, y0, y1)) = bounds(dotted.iter().chain(symbols).map(|c| c.series)) else {
        buf.set_string(area.x, area.y, "no points yet", Style::default());
        return;
    };
    let plot = Rect { x: area.x + LABEL_WIDTH, y: area.y, width: area.width - LABEL_WIDTH, height: area.height - 2 };
    let (width, rows) = (plot.width as usize, plot.height as usize);
    let mut raster = Raster::new(width, rows);
    let (dots_x, dots_y) = (raster.dot_width(), raster.dot_height());
    let x_end = x1 + (x1 - x0).max(1.0) / (dots_x as f64 * 4.0);
    let y_span = if y1 > y0 { y1 - y0 } else { 1.0 };
    let dot_row = |y: f64| {
        dots_y - 1 - (((y - y0) / y_span) * (dots_y - 1) as f64).round().clamp(0.0, (dots_y - 1) as f64) as usize
    };
    for curve in dotted {
        let mut previous: Option<(usize, usize)> = None;
        for (col, span) in curve.series.columns(x0, x_end, dots_x).into_iter().enumerate() {
            let Some((lo, hi)) = span else { continue };
            let (top, bottom) = (dot_row(hi), dot_row(lo));
            let mid = (top + bottom) / 2;
            if let Some((from_col, from_row)) = previous {
                let mut row_before = from_row;
                for k in from_col + 1..col {
                    let t = (k - from_col) as f64 / (col - from_col) as f64;
                    let row = (from_row as f64 + (mid as f64 - from_row as f64) * t).round() as usize;
                    raster.vertical(k, row_before, row, curve.style);
                    row_before = row;
                }
                raster.vertical(col, row_before, mid, curve.style);
            }
            raster.vertical(col, top, bottom, curve.style);
            previous = Some((col, mid));
        }
    }
    raster.draw(plot, buf);
    let cell_row =
        |y: f64| rows - 1 - (((y - y0) / y_span) * (rows - 1) as f64).round().clamp(0.0, (rows - 1) as f64) as usize;
    for curve in symbols {
        for (col, span) in curve.series.columns(x0, x_end, width).into_iter().enumerate() {
            let Some((lo, hi)) = span else { continue };
            for row in cell_row(hi)..=cell_row(lo) {
                buf[(plot.x + col as u16, plot.y + row as u16)].set_char(curve.symbol).set_style(curve.style);
            }
        }
    }
    buf.set_string(area.x, plot.y, format!("{y1:>7.3}"), Style::default());
    if rows >= 5 {
        buf.set_string(area.x, plot.y + plot.height / 2, format!("{:>7.3}", y0 + y_span * 0.5), Style::default());
    }
    buf.set_string(area.x, plot.y + plot.height - 1, format!("{y0:>7.3}"), Style::default());
    let (axis_y, label_y) = (plot.y + plot.height, plot.y + plot.height + 1);
    for i in 0..plot.width {
        buf[(plot.x + i, axis_y)].set_char('─');
    }
    buf.set_string(area.x, label_y, format!("{:>7}", axis.name), Style::default());
    let mut free_from = 0usize;
    for (x, label) in &axis.ticks {
        let col = column_of(*x, x0, x_end - x0, width);
        let start = col.saturating_sub(label.len() / 2);
        if start < free_from || start + label.len() > width {
            continue;
        }
        buf[(plot.x + col as u16, axis_y)].set_char('┴');
        buf.set_string(plot.x + start as u16, label_y, label, Style::default());
        free_from = start + label.len() + 1;
    }
    for (x, symbol) in marks {
        let col = column_of(*x, x0, x_end - x0, width);
        buf[(plot.x + col as u16, axis_y)].set_char(*symbol);
    }
}

fn bounds<'a>(series: impl Iterator<Item = &'a Series>) -> Option<(f64, f64, f64, f64)> {
    series.filter_map(|s| s.bounds()).reduce(|a, b| (a.0.min(b.0), a.1.max(b.1), a.2.min(b.2), a.3.max(b.3)))
}
