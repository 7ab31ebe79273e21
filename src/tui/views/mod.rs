//! Pure rendering: `Widget for &State` draws the tab bar, the current view, the status line and the help.

pub mod braille;
pub mod chart;
pub mod compare;
pub mod datasets;
pub mod gpus;
pub mod heat;
pub mod launch;
pub mod leaderboard;
pub mod runs;
pub mod zoo;

use super::keymap::Bind;
use super::state::{ImportPrompt, State, View};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

impl Widget for &State {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [tabs, body, status] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1)]).areas(area);
        self.rows_on_screen.borrow_mut().clear();
        render_tabs(self, tabs, buf);
        match self.view {
            View::Zoo => zoo::render(self, body, buf),
            View::Datasets => datasets::render(self, body, buf),
            View::Launch => launch::render(self, body, buf),
            View::Runs => runs::render(self, body, buf),
            View::Compare => compare::render(self, body, buf),
            View::Leaderboard => leaderboard::render(self, body, buf),
            View::Gpus => gpus::render(self, body, buf),
        }
        render_status(self, status, buf);
        if self.help {
            render_help(self, body, buf);
        }
        if self.popup {
            render_popup(self, body, buf);
        }
        if let Some(prompt) = &self.import {
            render_import(prompt, body, buf);
        }
    }
}

/// A foreground colour, or no style at all under NO_COLOR.
pub fn fg(s: &State, color: Color) -> Style {
    if s.color { Style::default().fg(color) } else { Style::default() }
}

/// The cursor row: reversed, which reads without colour too.
pub fn cursor_style() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The first visible row so that `cursor` stays on a screen of `height` rows.
pub fn scroll_offset(cursor: usize, height: usize) -> usize {
    if height == 0 { 0 } else { cursor.saturating_sub(height - 1) }
}

fn render_tabs(s: &State, area: Rect, buf: &mut Buffer) {
    let mut spans = Vec::new();
    for view in View::ALL {
        let style = if view == s.view { cursor_style().add_modifier(Modifier::BOLD) } else { fg(s, Color::Cyan) };
        spans.push(Span::styled(view.tab_label(), style));
    }
    Line::from(spans).render(area, buf);
    let marks = header_marks(s);
    let width = marks.chars().count() as u16;
    if !marks.is_empty() && width < area.width {
        let right = Rect { x: area.x + area.width - width, width, ..area };
        Line::from(marks).style(fg(s, Color::Magenta).add_modifier(Modifier::BOLD)).render(right, buf);
    }
}

/// What stays in force across views, at the right of the tab bar: the selection (it decides what Compare
/// shows and what run controls act on) and the Runs filter.
pub fn header_marks(s: &State) -> String {
    let mut marks = Vec::new();
    if !s.selected.is_empty() {
        marks.push(format!("{} selected", s.selected.len()));
    }
    if !s.filter.is_empty() {
        marks.push(format!("filter \"{}\"", s.filter));
    }
    if marks.is_empty() { String::new() } else { format!(" {} ", marks.join("  ")) }
}

fn render_status(s: &State, area: Rect, buf: &mut Buffer) {
    if let Some((control, ids)) = &s.confirm {
        let question =
            format!("{} {}? y to confirm, any other key cancels", control.verb(), super::action::targets_name(ids));
        Paragraph::new(question).style(fg(s, Color::Red).add_modifier(Modifier::BOLD)).render(area, buf);
        return;
    }
    let text = if let Some((field, _)) = &s.launch.editing {
        let value = s.launch.text(*field);
        let keys = if field.is_path() { "tab complete, enter keep, esc undo" } else { "enter keep, esc undo" };
        let matches = s.launch.candidates.join("  ");
        format!("{}: {value}_   ({keys})  {matches}", field.label())
    } else if s.filter_editing {
        format!("filter: {}_   (enter keep, esc clear)", s.filter)
    } else if let Some(message) = &s.message {
        message.clone()
    } else {
        let filter = if s.filter.is_empty() { String::new() } else { format!("filter \"{}\"  ", s.filter) };
        format!("{filter}{} help  {} quit", s.keymap.key_of(Bind::Help), s.keymap.key_of(Bind::Quit))
    };
    Paragraph::new(text).style(fg(s, Color::Yellow)).render(area, buf);
}

/// The whole text of the status line's message (or of the last failure), wrapped in a box.
fn render_popup(s: &State, body: Rect, buf: &mut Buffer) {
    let text = s.message.as_ref().or(s.last_failure.as_ref()).cloned().unwrap_or_default();
    let width = body.width.saturating_sub(4).max(10).min(body.width);
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let lines: Vec<Line> = text
        .lines()
        .flat_map(|l| {
            let chars: Vec<char> = l.chars().collect();
            chars.chunks(inner_width).map(|c| Line::from(c.iter().collect::<String>())).collect::<Vec<_>>()
        })
        .collect();
    let height = (lines.len() as u16 + 2).min(body.height);
    let area = Rect { x: body.x + (body.width - width) / 2, y: body.y + (body.height - height) / 2, width, height };
    Clear.render(area, buf);
    let title =
        format!(" message ({} or {} closes) ", s.keymap.key_of(Bind::Back), s.keymap.key_of(Bind::WholeMessage));
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)).render(area, buf);
}

/// The `zoo import` path prompt: the path typed, the last completion's matches, the keys.
fn render_import(prompt: &ImportPrompt, body: Rect, buf: &mut Buffer) {
    let width = body.width.saturating_sub(4).max(10).min(body.width);
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let typed: String = format!("> {}_", prompt.path);
    let shown = typed.chars().skip(typed.chars().count().saturating_sub(inner_width)).collect::<String>();
    let mut lines = vec![Line::from(shown)];
    match prompt.matches {
        Some(0) => lines.push(Line::from("no file or folder starts with that")),
        Some(n) if !prompt.candidates.is_empty() => {
            let mut row = String::new();
            for name in &prompt.candidates {
                if !row.is_empty() && row.chars().count() + name.chars().count() + 2 > inner_width {
                    lines.push(Line::from(std::mem::take(&mut row)));
                }
                if !row.is_empty() {
                    row.push_str("  ");
                }
                row.push_str(name);
            }
            lines.push(Line::from(row));
            if n > prompt.candidates.len() {
                lines.push(Line::from(format!("... {} matches in all", n)));
            }
        }
        _ => {}
    }
    lines.push(Line::from("Tab completes  Enter imports (verify, install, convert)  Esc cancels"));
    let height = (lines.len() as u16 + 2).min(body.height);
    let area = Rect { x: body.x + (body.width - width) / 2, y: body.y + body.height - height, width, height };
    Clear.render(area, buf);
    let title = format!(" import a downloaded file for {} ", prompt.id);
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)).render(area, buf);
}

/// The keys of the current view in as few columns as the height needs, each column as wide as its own
/// longest entry (keys right-aligned), so that every binding shows whole at 80x24.
fn render_help(s: &State, body: Rect, buf: &mut Buffer) {
    let keys = s.keymap.help(s.view);
    let rows_room = (body.height as usize).saturating_sub(2).max(1);
    let layout = |columns: usize| {
        let per_column = keys.len().div_ceil(columns).max(1);
        let widths: Vec<(usize, usize)> = keys
            .chunks(per_column)
            .map(|column| {
                let key = column.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                let about = column.iter().map(|(_, a)| a.chars().count()).max().unwrap_or(0);
                (key, about)
            })
            .collect();
        let inner: usize =
            widths.iter().map(|(k, a)| k + 1 + a).sum::<usize>() + HELP_GAP * (widths.len().saturating_sub(1));
        (per_column, widths, inner + 2)
    };
    // The fewest columns whose rows fit the height and whose width fits; else the fewest that fit the height.
    let fits_height = |columns: usize| keys.len().div_ceil(columns) <= rows_room;
    let candidates: Vec<usize> = (1..=keys.len().max(1)).filter(|&c| fits_height(c)).collect();
    let columns = candidates
        .iter()
        .copied()
        .find(|&c| layout(c).2 <= body.width as usize)
        .or(candidates.first().copied())
        .unwrap_or(1);
    let (per_column, widths, width) = layout(columns);
    let width = (width as u16).min(body.width);
    let height = (per_column as u16 + 2).min(body.height);
    let area = Rect { x: body.x + (body.width - width) / 2, y: body.y + (body.height - height) / 2, width, height };
    let lines: Vec<Line> = (0..per_column)
        .map(|row| {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .filter_map(|(c, (key_w, about_w))| {
                    let (k, about) = keys.get(c * per_column + row)?;
                    Some(format!("{k:>key_w$} {about:<about_w$}"))
                })
                .collect();
            Line::from(cells.join(&" ".repeat(HELP_GAP)))
        })
        .collect();
    Clear.render(area, buf);
    let title = format!(" keys: {} ", s.view.title());
    Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)).render(area, buf);
}

/// Spaces between two columns of the help.
const HELP_GAP: usize = 3;
