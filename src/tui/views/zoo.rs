//! The Zoo view: the whole catalog grouped by category, each model's state as the zoo module reports it,
//! the runs that used it and their best result, and a details pane for the model under the cursor.

use super::super::state::{State, View, ZooModel};
use super::{cursor_style, fg, num, scroll_offset};
use crate::zoo::ModelState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

/// Terminals at least this wide get the details pane beside the list (and a name column).
const WIDE: u16 = 120;
/// Height of the details pane below the list on narrow terminals.
const DETAILS_HEIGHT: u16 = 10;

/// Runs per init: (runs, finished, best result).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub runs: usize,
    pub finished: usize,
    pub best: Option<f64>,
}

pub fn usage(s: &State) -> BTreeMap<&str, Usage> {
    let mut by_init: BTreeMap<&str, Usage> = BTreeMap::new();
    for run in s.runs.values().filter(|r| r.spec.is_some()) {
        let u = by_init.entry(run.model()).or_default();
        u.runs += 1;
        if let Some(result) = &run.result {
            u.finished += 1;
            u.best = Some(u.best.map_or(result.mean, |b: f64| b.max(result.mean)));
        }
    }
    by_init
}

/// A line of the list: a category heading or the model at an index of `s.zoo`.
enum ListLine {
    Category(String),
    Model(usize),
}

fn lines(s: &State) -> Vec<ListLine> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for (i, m) in s.zoo.iter().enumerate() {
        if last != Some(m.entry.category.as_str()) {
            out.push(ListLine::Category(m.entry.category.clone()));
            last = Some(&m.entry.category);
        }
        out.push(ListLine::Model(i));
    }
    out
}

fn state_color(m: &ZooModel) -> Color {
    match m.state() {
        Some(ModelState::Converted | ModelState::Builtin) => Color::Green,
        Some(ModelState::Verified | ModelState::Downloaded) => Color::Cyan,
        Some(ModelState::Downloading { .. }) => Color::Yellow,
        Some(ModelState::Failed { .. }) => Color::Red,
        Some(ModelState::Missing) | None => Color::Gray,
    }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let converted = s.zoo.iter().filter(|m| m.is_converted()).count();
    let title = format!(" Zoo: {} models, {converted} converted ", s.zoo.len());
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if s.zoo.is_empty() {
        Paragraph::new("the embedded catalog could not be read").render(inner, buf);
        return;
    }
    let wide = inner.width >= WIDE;
    let [list, details] = if wide {
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(inner)
    } else {
        Layout::vertical([Constraint::Min(3), Constraint::Length(DETAILS_HEIGHT)]).areas(inner)
    };
    render_list(s, list, wide, buf);
    if let Some(m) = s.current_model() {
        render_details(s, m, details, wide, buf);
    }
}

fn render_list(s: &State, area: Rect, wide: bool, buf: &mut Buffer) {
    let usage = usage(s);
    let cursor = s.cursor[View::Zoo.index()];
    let lines = lines(s);
    let at = lines.iter().position(|l| matches!(l, ListLine::Model(i) if *i == cursor)).unwrap_or(0);
    let height = area.height.saturating_sub(1) as usize;
    // Keep the cursor's category heading on screen when the cursor is its first model.
    let offset = scroll_offset(at, height).min(at.saturating_sub(1));
    let rows = lines.iter().skip(offset).take(height).map(|line| match line {
        ListLine::Category(c) => Row::new([format!("{c}:")]).style(fg(s, Color::Magenta).add_modifier(Modifier::BOLD)),
        ListLine::Model(i) => {
            let m = &s.zoo[*i];
            let u = usage.get(m.entry.id.as_str()).copied().unwrap_or_default();
            let mut cells = vec![format!(" {}", m.entry.id)];
            if wide {
                cells.push(m.entry.name.clone());
            }
            let manual = if m.entry.manual && !m.is_converted() { " (manual)" } else { "" };
            cells.extend([format!("{}{manual}", m.label()), u.runs.to_string(), num(u.best, 4)]);
            let row = Row::new(cells);
            if *i == cursor { row.style(cursor_style()) } else { row.style(fg(s, state_color(m))) }
        }
    });
    let mut header = vec!["model"];
    let mut widths = vec![Constraint::Length(25)];
    if wide {
        header.push("name");
        widths.push(Constraint::Length(24));
    }
    header.extend(["state", "runs", "best"]);
    widths.extend([Constraint::Min(12), Constraint::Length(4), Constraint::Length(6)]);
    Table::new(rows, widths).header(Row::new(header).style(fg(s, Color::Cyan))).column_spacing(1).render(area, buf);
}

/// `label` and `value` with the value cut into lines that fit `width` under a hanging indent (URLs, paths
/// and digests have no spaces to wrap at).
fn field(label: &str, value: &str, width: u16) -> Vec<Line<'static>> {
    const INDENT: usize = 11;
    let room = (width as usize).saturating_sub(INDENT).max(8);
    let chars: Vec<char> = value.chars().collect();
    let chunks: Vec<String> = chars.chunks(room).map(|c| c.iter().collect()).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let head = if i == 0 { format!("{label:<INDENT$}") } else { " ".repeat(INDENT) };
            Line::from(format!("{head}{chunk}"))
        })
        .collect()
}

fn render_details(s: &State, m: &ZooModel, area: Rect, wide: bool, buf: &mut Buffer) {
    let e = &m.entry;
    let borders = if wide { Borders::LEFT } else { Borders::TOP };
    let block = Block::default().borders(borders).title(format!(" {} ({}) ", e.name, e.id));
    let width = block.inner(area).width;
    let mut lines = vec![Line::from(format!("state      {}", m.label())).style(fg(s, state_color(m)))];
    if !e.has_file() {
        lines.push(Line::from("           no checkpoint: the network starts from random weights"));
    }
    lines.extend(field("objective", &format!("{} on {}", e.objective, e.dataset), width));
    let paper = if wide { format!("{} ({})", e.paper, e.paper_url) } else { e.paper.clone() };
    lines.extend(field("paper", &paper, width));
    for url in &e.urls {
        lines.extend(field("source", url, width));
    }
    if e.has_file() {
        // "sha256": the catalog's digest; "pinned": the digest zoo.lock recorded on first download.
        let (label, sha) = match (&e.sha256, m.status.as_ref().and_then(|st| st.pinned.as_ref())) {
            (Some(sha), _) => ("sha256", sha.clone()),
            (None, Some(pin)) => ("pinned", pin.clone()),
            (None, None) => ("sha256", "none in the catalog: pinned in zoo.lock on first download".into()),
        };
        lines.extend(field(label, &sha, width));
        let file = m.status.as_ref().and_then(|st| st.file.as_ref());
        lines.extend(field("file", &file.map_or(e.file.clone(), |f| f.display().to_string()), width));
        lines.extend(field("recipe", &e.recipe, width));
    }
    if e.manual {
        lines.extend(field("manual", &format!("download by hand, then `medxfer zoo import {} FILE`:", e.id), width));
        for (i, step) in e.steps.iter().enumerate() {
            lines.extend(field("", &format!("{}. {step}", i + 1), width));
        }
    }
    lines.extend(field("credit", &e.credit, width));
    Paragraph::new(lines).block(block).render(area, buf);
}
