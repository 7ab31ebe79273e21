//! Draws a figure's numbers with plotters on any backend (SVG text or an RGB buffer for PNG), with the
//! embedded DejaVu Sans so that a server without fonts renders the same, and the Okabe–Ito palette
//! (colour-blind safe).

use super::figure::{Bars, Curves, Efficiency};
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(240, 228, 66),  // yellow
];

const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const TEXT: u32 = 18;
const TITLE: u32 = 24;

/// Registers the embedded font as plotters' sans-serif (once per process).
pub fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok { Ok(()) } else { Err(anyhow!("the embedded font assets/fonts/DejaVuSans.ttf cannot be read")) }
}

fn pe<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow!("cannot draw the figure: {e}")
}

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Axis range over `values` with 5% padding on each side (and a unit range around a single value).
fn padded(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) * 0.1 };
    (lo - 0.05 * span, hi + 0.05 * span)
}

pub fn bars_size(f: &Bars) -> (u32, u32) {
    (1200, 170 + 34 * f.bars.len().max(1) as u32)
}

pub fn efficiency_size(_: &Efficiency) -> (u32, u32) {
    (1100, 700)
}

pub fn curves_size(_: &Curves) -> (u32, u32) {
    (1100, 700)
}

/// How an init is named in a figure: a zoo id as it is, a .safetensors init by its file name (its full
/// path would crowd the figure and say where it lay rather than what it is).
fn shown(init: &str) -> String {
    let path = std::path::Path::new(init);
    match path.file_name() {
        Some(name) if path.is_absolute() => name.to_string_lossy().into_owned(),
        _ => init.to_string(),
    }
}

/// Horizontal bars, best at the top of each category, whiskers of `f.spread`, the baseline's mean as a
/// dashed line, `*` on models that differ from the baseline (with the p-value when `p_values`).
pub fn bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &Bars, p_values: bool) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let n = f.bars.len();
    let (lo, hi) = padded(f.bars.iter().flat_map(|b| [b.low, b.high]).chain(f.baseline_mean));
    // Room on the right for the significance marks and the legend.
    let hi = hi + (hi - lo) * if p_values { 0.75 } else { 0.6 };
    let names: Vec<String> =
        f.bars.iter().map(|b| if b.published { format!("{} (published)", b.init) } else { shown(&b.init) }).collect();
    let label_width = names.iter().map(|s| s.chars().count() as u32 * 10 + 20).max().unwrap_or(80);
    let title = format!(
        "{} · {}% labels · {} (mean ± {}, n = trials)",
        f.dataset,
        f.anno_percent,
        f.metric.to_uppercase(),
        f.spread.label()
    );
    // Bar i is drawn at position n-1-i so that the first bar is at the top.
    let at = |i: usize| n - 1 - i;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(label_width)
        .build_cartesian_2d(lo..hi, (0..n).into_segmented())
        .map_err(pe)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(p) if *p < n => names[n - 1 - *p].clone(),
            _ => String::new(),
        })
        .x_desc(f.metric.to_uppercase())
        .label_style((FONT, TEXT))
        .axis_desc_style((FONT, TEXT))
        .draw()
        .map_err(pe)?;
    let mut categories: Vec<&str> = Vec::new();
    for b in &f.bars {
        if !categories.contains(&b.category.as_str()) {
            categories.push(&b.category);
        }
    }
    for (ci, category) in categories.iter().enumerate() {
        let c = colour(ci);
        let published = *category == "published";
        let style = if published { BLACK.stroke_width(2) } else { c.filled() };
        let rects = f.bars.iter().enumerate().filter(|(_, b)| b.category == *category).map(move |(i, b)| {
            let mut r =
                Rectangle::new([(lo, SegmentValue::Exact(at(i))), (b.mean, SegmentValue::Exact(at(i) + 1))], style);
            r.set_margin(5, 5, 0, 0);
            r
        });
        chart
            .draw_series(rects)
            .map_err(pe)?
            .label(if published { "published (the study)".to_string() } else { category.to_string() })
            .legend(move |(x, y)| Rectangle::new([(x, y - 7), (x + 16, y + 7)], style));
    }
    chart
        .draw_series(f.bars.iter().enumerate().filter(|(_, b)| b.high > b.low).map(|(i, b)| {
            ErrorBar::new_horizontal(SegmentValue::CenterOf(at(i)), b.low, b.mean, b.high, BLACK.stroke_width(2), 12)
        }))
        .map_err(pe)?;
    if let Some(m) = f.baseline_mean {
        chart
            .draw_series(DashedLineSeries::new(
                [(m, SegmentValue::Exact(0)), (m, SegmentValue::Exact(n))],
                8,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(pe)?
            .label(format!("{} mean (baseline)", f.baseline))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    }
    let mark_style = TextStyle::from((FONT, TEXT).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let marks = f.bars.iter().enumerate().filter_map(|(i, b)| {
        let text = match (b.significant, b.p_value) {
            (Some(true), Some(p)) if p_values => format!("* p={p:.3}"),
            (Some(true), _) => "*".to_string(),
            (_, Some(p)) if p_values => format!("p={p:.3}"),
            _ => return None,
        };
        Some(Text::new(text, (b.high.max(b.mean), SegmentValue::CenterOf(at(i))), mark_style.clone()))
    });
    chart
        .draw_series(marks)
        .map_err(pe)?
        .label(format!("* differs from {} (Welch p < {})", f.baseline, f.significance_level))
        .legend(|(x, y)| Text::new("*", (x + 4, y - 9), (FONT, TEXT).into_font()));
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, TEXT))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(pe)
}

/// A line chart whose x axis counts whole units (anno %, epochs), with its mesh and axis descriptions drawn.
fn whole_number_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: String,
    (x_lo, x_hi): (f64, f64),
    (y_lo, y_hi): (f64, f64),
    x_desc: &str,
    y_desc: &str,
) -> Result<
    ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, TITLE))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(y_desc)
        .label_style((FONT, TEXT))
        .axis_desc_style((FONT, TEXT))
        .draw()
        .map_err(pe)?;
    Ok(chart)
}

/// One line per model over anno %, its band the spread over trials.
pub fn efficiency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &Efficiency) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let points = f.lines.iter().flat_map(|l| &l.points);
    let (x_lo, x_hi) = padded(points.clone().map(|p| f64::from(p.anno_percent)));
    let (y_lo, y_hi) = padded(points.flat_map(|p| [p.low, p.high]));
    let title = format!("{} · label efficiency · {} (mean ± {})", f.dataset, f.metric.to_uppercase(), f.spread.label());
    let mut chart = whole_number_chart(
        root,
        title,
        (x_lo, x_hi),
        (y_lo, y_hi),
        "labelled training data (%)",
        &f.metric.to_uppercase(),
    )?;
    for (i, line) in f.lines.iter().enumerate() {
        let c = colour(i);
        let upper = line.points.iter().map(|p| (f64::from(p.anno_percent), p.high));
        let lower = line.points.iter().rev().map(|p| (f64::from(p.anno_percent), p.low));
        chart
            .draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), c.mix(0.2))))
            .map_err(pe)?;
        let xy: Vec<(f64, f64)> = line.points.iter().map(|p| (f64::from(p.anno_percent), p.mean)).collect();
        chart
            .draw_series(LineSeries::new(xy, c.stroke_width(3)).point_size(5))
            .map_err(pe)?
            .label(shown(&line.init))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Train loss (solid) and validation loss (dashed) against epoch, one colour per run.
pub fn curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, f: &Curves) -> Result<()> {
    root.fill(&WHITE).map_err(pe)?;
    let epochs = f.runs.iter().flat_map(|r| &r.epochs);
    let (x_lo, x_hi) = padded(epochs.clone().map(|e| f64::from(e.epoch)));
    let (y_lo, y_hi) = padded(epochs.flat_map(|e| [e.train_loss, e.val_loss]).flatten());
    let title = if f.runs.len() == 1 {
        format!("{} · loss", f.runs[0].run_id)
    } else {
        format!("{} · loss of {} runs", f.dataset, f.runs.len())
    };
    let mut chart = whole_number_chart(root, title, (x_lo, x_hi), (y_lo, y_hi), "epoch", "loss")?;
    for (i, run) in f.runs.iter().enumerate() {
        let c = colour(i);
        let train: Vec<(f64, f64)> =
            run.epochs.iter().filter_map(|e| Some((f64::from(e.epoch), e.train_loss?))).collect();
        let val: Vec<(f64, f64)> = run.epochs.iter().filter_map(|e| Some((f64::from(e.epoch), e.val_loss?))).collect();
        let name = format!("{} t{}", shown(&run.init), run.trial);
        chart
            .draw_series(LineSeries::new(train, c.stroke_width(3)).point_size(4))
            .map_err(pe)?
            .label(format!("{name} train"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(3)));
        chart
            .draw_series(DashedLineSeries::new(val, 8, 5, c.stroke_width(3)))
            .map_err(pe)?
            .label(format!("{name} val"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 6, y)], c.stroke_width(3)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}
