//! The per-class heat map of one ranking group: its inits (best first) against its classes, each cell the
//! class's mean value over trials, coloured from the group's lowest (red) to highest (green) value. 256
//! colours where the terminal has them, 16 otherwise, none under NO_COLOR (the numbers alone then).

use super::super::board::BoardRow;
use super::super::state::State;
use super::{cursor_style, fg, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};
use std::collections::BTreeSet;

/// Red to green in the 16 basic colours.
const BASIC: [Color; 5] = [Color::Red, Color::LightRed, Color::Yellow, Color::LightGreen, Color::Green];
/// Red to green in the 256-colour cube.
const RICH: [u8; 11] = [196, 202, 208, 214, 220, 226, 190, 154, 118, 82, 46];

const NAME_WIDTH: u16 = 15;

/// The colour of a value at `frac` (0 = the lowest of the map, 1 = the highest).
pub fn heat_color(frac: f64, rich: bool) -> Color {
    let frac = if frac.is_finite() { frac.clamp(0.0, 1.0) } else { 0.5 };
    if rich {
        Color::Indexed(RICH[(frac * (RICH.len() - 1) as f64).round() as usize])
    } else {
        BASIC[((frac * BASIC.len() as f64) as usize).min(BASIC.len() - 1)]
    }
}

/// Whether the terminal shows 256 colours or more (COLORTERM=truecolor/24bit, or a TERM like xterm-256color).
pub fn rich_color(colorterm: Option<&str>, term: Option<&str>) -> bool {
    matches!(colorterm, Some("truecolor" | "24bit")) || term.is_some_and(|t| t.contains("256color"))
}

pub fn render(s: &State, rows: &[BoardRow], cursor: usize, area: Rect, buf: &mut Buffer) {
    let Some(at) = rows.get(cursor) else { return };
    let group: Vec<&BoardRow> = rows.iter().filter(|r| r.group == at.group).collect();
    let classes: Vec<&String> =
        group.iter().flat_map(|r| r.per_class.keys()).collect::<BTreeSet<_>>().into_iter().collect();
    let heading =
        format!("{} {}% {}: per-class {} (mean over trials, %)", at.dataset, at.anno_percent, at.metric, at.metric);
    if classes.is_empty() {
        let why = if at.is_reference() {
            "published rows have no per-class values"
        } else {
            "no per-class values in these results"
        };
        Paragraph::new(vec![Line::from(heading), Line::from(why)]).render(area, buf);
        return;
    }
    Paragraph::new(heading).style(fg(s, Color::Cyan)).render(area, buf);
    let cell = (area.width.saturating_sub(NAME_WIDTH) / classes.len() as u16).clamp(3, 12);
    let decimals = if cell >= 6 { 1 } else { 0 };
    let fits = (area.width.saturating_sub(NAME_WIDTH) / cell) as usize;
    let y = area.y + 1;
    for (c, class) in classes.iter().take(fits).enumerate() {
        let name: String = class.chars().take(cell as usize - 1).collect();
        buf.set_string(
            area.x + NAME_WIDTH + c as u16 * cell,
            y,
            format!("{name:>w$}", w = cell as usize - 1),
            fg(s, Color::Cyan),
        );
    }
    let values = group.iter().flat_map(|r| r.per_class.values().copied());
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if hi > lo { hi - lo } else { f64::INFINITY };
    let height = area.height.saturating_sub(2) as usize;
    let row_cursor = group.iter().position(|r| std::ptr::eq(*r, at)).unwrap_or(0);
    for (i, row) in group.iter().enumerate().skip(scroll_offset(row_cursor, height)).take(height) {
        let y = y + 1 + (i - scroll_offset(row_cursor, height)) as u16;
        let name: String = row.init.chars().take(NAME_WIDTH as usize - 1).collect();
        let style = if i == row_cursor { cursor_style() } else { Style::default() };
        buf.set_string(area.x, y, format!("{name:<w$}", w = NAME_WIDTH as usize), style);
        for (c, class) in classes.iter().take(fits).enumerate() {
            let x = area.x + NAME_WIDTH + c as u16 * cell;
            let Some(v) = row.per_class.get(*class) else {
                buf.set_string(x, y, format!("{:>w$}", "-", w = cell as usize - 1), Style::default());
                continue;
            };
            let text = format!("{:>w$.decimals$}", v * 100.0, w = cell as usize - 1);
            let style = if s.color {
                let frac = if span.is_finite() { (v - lo) / span } else { 1.0 };
                Style::default().bg(heat_color(frac, s.rich_color)).fg(Color::Black)
            } else {
                Style::default()
            };
            buf.set_string(x, y, text, style);
        }
    }
}
