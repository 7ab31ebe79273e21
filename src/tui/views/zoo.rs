//! The Zoo view: the whole catalog grouped by category, each model's state as the zoo module reports it,
//! the runs that used it and their best result, and a details pane for the model under the cursor.

use super::super::keymap::Bind;
use super::super::state::{State, View, ZooModel};
use super::{cursor_style, fg, num, scroll_offset};
use crate::zoo::ModelState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
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
    let details_height = if s.zoo_details { DETAILS_HEIGHT } else { 1 };
    let [list, details] = if wide {
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(inner)
    } else {
        Layout::vertical([Constraint::Min(3), Constraint::Length(details_height)]).areas(inner)
    };
    render_list(s, list, wide, buf);
    match s.current_model() {
        Some(m) if wide || s.zoo_details => render_details(s, m, details, wide, buf),
        Some(m) => render_summary(s, m, details, buf),
        None => {}
    }
}

/// The list's columns: (header, width); the state column takes what is left.
fn columns(wide: bool) -> Vec<(&'static str, usize)> {
    let mut columns = vec![("model", 21)];
    if wide {
        columns.push(("name", 16));
    }
    columns.extend([("state", 0), ("runs", 4), ("best", 6)]);
    columns
}

/// Cells padded to the columns' widths (the 0-wide column gets the room left in `width`), one space apart,
/// cut at `width`.
fn row_text(cells: &[String], columns: &[(&str, usize)], width: usize) -> String {
    let fixed: usize = columns.iter().map(|c| c.1 + 1).sum();
    let flexible = width.saturating_sub(fixed).max(8);
    let text: Vec<String> = cells
        .iter()
        .zip(columns)
        .map(|(cell, (_, w))| {
            let w = if *w == 0 { flexible } else { *w };
            let cut: String = cell.chars().take(w).collect();
            format!("{cut:<w$}")
        })
        .collect();
    text.join(" ").chars().take(width).collect::<String>().trim_end().to_string()
}

fn render_list(s: &State, area: Rect, wide: bool, buf: &mut Buffer) {
    let usage = usage(s);
    let cursor = s.cursor[View::Zoo.index()];
    let lines = lines(s);
    let at = lines.iter().position(|l| matches!(l, ListLine::Model(i) if *i == cursor)).unwrap_or(0);
    let height = area.height.saturating_sub(1) as usize;
    let width = area.width as usize;
    let columns = columns(wide);
    // Keep the cursor's category heading on screen when the cursor is its first model.
    let offset = scroll_offset(at, height).min(at.saturating_sub(1));
    let header: Vec<String> = columns.iter().map(|c| c.0.to_string()).collect();
    let mut out = vec![Line::from(row_text(&header, &columns, width)).style(fg(s, Color::Cyan))];
    for (k, line) in lines.iter().skip(offset).take(height).enumerate() {
        if let ListLine::Model(i) = line {
            s.row_drawn(area.y + 1 + k as u16, *i);
        }
    }
    out.extend(lines.iter().skip(offset).take(height).map(|line| match line {
        ListLine::Category(c) => Line::from(format!("{c}:")).style(fg(s, Color::Magenta).add_modifier(Modifier::BOLD)),
        ListLine::Model(i) => {
            let m = &s.zoo[*i];
            let u = usage.get(m.entry.id.as_str()).copied().unwrap_or_default();
            let mut cells = vec![format!(" {}", m.entry.id)];
            if wide {
                cells.push(m.entry.name.clone());
            }
            let manual = if m.entry.manual && !m.is_converted() { " (manual)" } else { "" };
            cells.extend([format!("{}{manual}", m.label()), u.runs.to_string(), num(u.best, 4)]);
            let line = Line::from(row_text(&cells, &columns, width));
            if *i == cursor { line.style(cursor_style()) } else { line.style(fg(s, state_color(m))) }
        }
    }));
    Paragraph::new(out).render(area, buf);
}

/// `label` and `value` wrapped at spaces into lines that fit `width` under a hanging indent; a word longer
/// than a line (URLs, paths and digests) is cut where the line ends.
fn field(label: &str, value: &str, width: u16) -> Vec<Line<'static>> {
    const INDENT: usize = 11;
    let room = (width as usize).saturating_sub(INDENT).max(8);
    let mut rows: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in value.split_whitespace() {
        let used = current.chars().count();
        if used > 0 && used + 1 + word.chars().count() <= room {
            current.push(' ');
            current.push_str(word);
            continue;
        }
        if used > 0 {
            rows.push(std::mem::take(&mut current));
        }
        let chars: Vec<char> = word.chars().collect();
        let mut pieces: Vec<String> = chars.chunks(room).map(|c| c.iter().collect()).collect();
        current = pieces.pop().unwrap_or_default();
        rows.extend(pieces);
    }
    rows.push(current);
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let head = if i == 0 { format!("{label:<INDENT$}") } else { " ".repeat(INDENT) };
            Line::from(format!("{head}{row}"))
        })
        .collect()
}

/// Narrow terminals: one line under the list for the model under the cursor, and the key for the rest.
fn render_summary(s: &State, m: &ZooModel, area: Rect, buf: &mut Buffer) {
    let next = if m.entry.manual && !m.is_converted() { "manual download: steps" } else { "details" };
    let text =
        format!("{} ({}): {}  [{} {next}]", m.entry.name, m.entry.id, m.label(), s.keymap.key_of(Bind::ZooDetails));
    Paragraph::new(text).style(fg(s, state_color(m))).render(area, buf);
}

fn render_details(s: &State, m: &ZooModel, area: Rect, wide: bool, buf: &mut Buffer) {
    let e = &m.entry;
    let borders = if wide { Borders::LEFT } else { Borders::TOP };
    let block = Block::default().borders(borders).title(format!(" {} ({}) ", e.name, e.id));
    let width = block.inner(area).width;
    let mut lines = field("state", &m.label(), width);
    lines.iter_mut().for_each(|l| l.style = fg(s, state_color(m)));
    if !e.has_file() {
        lines.push(Line::from("           no checkpoint: the network starts from random weights"));
    }
    if e.manual && !m.is_converted() {
        lines.extend(field("manual", "download by hand, then import it:", width));
        lines.extend(field("", &format!("medxfer zoo import {} FILE", e.id), width));
        for (i, step) in e.steps.iter().enumerate() {
            lines.extend(field("", &format!("{}. {step}", i + 1), width));
        }
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
    lines.extend(field("credit", &e.credit, width));
    Paragraph::new(lines).block(block).render(area, buf);
}
