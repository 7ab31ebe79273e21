//! The Runs table and one run's detail (loss curves with LR-drop and best-epoch marks, log tail).

use super::super::keymap::Bind;
use super::super::state::{RunView, State, View};
use super::chart::{self, Curve, XAxis};
use super::{cursor_style, fg, num, scroll_offset};
use crate::runs::record::State as RunState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

/// The table's columns: header, width, and the order in which they are dropped when the terminal is too
/// narrow (lowest first; 0 = never).
const COLUMNS: [(&str, u16, u8); 14] = [
    ("", 1, 0),
    ("state", 8, 0),
    ("model", 14, 0),
    ("dataset", 10, 3),
    ("t", 2, 6),
    ("a%", 3, 6),
    ("epoch", 5, 9),
    ("train", 7, 2),
    ("val", 7, 8),
    ("metric", 6, 0),
    ("img/s", 7, 4),
    ("GPU", 5, 5),
    ("ETA", 6, 7),
    ("id", 44, 1),
];

/// The indices of the columns that fit in `width` (one space between columns), in table order.
pub fn fitting_columns(width: u16) -> Vec<usize> {
    let mut shown: Vec<usize> = (0..COLUMNS.len()).collect();
    let needed = |shown: &[usize]| shown.iter().map(|&i| COLUMNS[i].1 + 1).sum::<u16>().saturating_sub(1);
    let mut by_priority: Vec<usize> = (0..COLUMNS.len()).filter(|&i| COLUMNS[i].2 > 0).collect();
    by_priority.sort_by_key(|&i| COLUMNS[i].2);
    for drop in by_priority {
        if needed(&shown) <= width {
            break;
        }
        shown.retain(|&i| i != drop);
    }
    shown
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    match s.detail.as_ref().and_then(|id| s.runs.get(id)) {
        Some(run) => render_detail(s, run, area, buf),
        None => render_table(s, area, buf),
    }
}

fn render_table(s: &State, area: Rect, buf: &mut Buffer) {
    let runs = s.visible_runs();
    let inner = Block::default().borders(Borders::TOP).inner(area);
    let shown = fitting_columns(inner.width);
    let cursor = s.cursor[View::Runs.index()];
    // Without the id column, the title names the run under the cursor (t1 and t1-a50 look alike otherwise).
    let id_shown = shown.iter().any(|&i| COLUMNS[i].0 == "id");
    let current = runs.get(cursor).filter(|_| !id_shown).map_or(String::new(), |r| format!("· {} ", r.id));
    let title = format!(" Runs {} (sort: {}) {current}", runs.len(), s.sort.name());
    let block = Block::default().borders(Borders::TOP).title(title);
    block.render(area, buf);
    if runs.is_empty() {
        let hint = format!("no runs yet: press {} in Launch for the demo sweep", s.keymap.key_of(Bind::DemoSweep));
        Paragraph::new(hint).render(inner, buf);
        return;
    }
    let header: Vec<&str> = shown.iter().map(|&i| COLUMNS[i].0).collect();
    let widths = shown.iter().map(|&i| Constraint::Length(COLUMNS[i].1));
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let rows = runs.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, run)| {
        s.row_drawn(inner.y + 1 + (i - offset) as u16, i);
        let row = Row::new(shown.iter().map(|&c| cell(s, run, c)));
        if i == cursor { row.style(cursor_style()) } else { row.style(fg(s, state_color(run))) }
    });
    Table::new(rows, widths).header(Row::new(header).style(fg(s, Color::Cyan))).column_spacing(1).render(inner, buf);
}

/// The text of column `column` (an index into COLUMNS) for `run`.
fn cell(s: &State, run: &RunView, column: usize) -> String {
    match COLUMNS[column].0 {
        "" => {
            if s.selected.contains(&run.id) {
                "+".into()
            } else {
                String::new()
            }
        }
        "state" => run.state_name().into(),
        "model" => run.model().into(),
        "dataset" => run.dataset().into(),
        "t" => run.spec.as_ref().map_or("-".into(), |sp| sp.trial.to_string()),
        "a%" => run.anno_percent().to_string(),
        "epoch" => run.status.as_ref().map_or("-".into(), |st| st.epoch.to_string()),
        "train" => num(run.train.last(), 4),
        "val" => num(run.val.last(), 4),
        "metric" => num(run.metric(), 3),
        "img/s" => num(run.last.as_ref().map(|l| l.images_per_s), 1),
        "GPU" => run.device(),
        "ETA" => run.eta_s().map_or("-".into(), format_duration),
        _ => run.id.clone(),
    }
}

fn state_color(run: &RunView) -> Color {
    match run.state_name() {
        "running" => Color::Green,
        "failed" | "killed" => Color::Red,
        "stopped" => Color::Yellow,
        _ => Color::Reset,
    }
}

pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s / 60 % 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

fn render_detail(s: &State, run: &RunView, area: Rect, buf: &mut Buffer) {
    if s.log_full {
        render_log(s, run, area, buf);
        return;
    }
    let log_rows = if area.height >= 30 { 10 } else { 6 };
    let [head, curves, log] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(4), Constraint::Length(log_rows)]).areas(area);
    let status = run.status.as_ref();
    let best = status.and_then(|st| st.best_epoch);
    let planned = run.spec.as_ref().map_or("?".into(), |sp| sp.hyper.epochs.to_string());
    let pace = match (run.state(), run.last.as_ref().map(|l| l.images_per_s).filter(|r| *r > 0.0)) {
        (Some(RunState::Running), Some(rate)) => {
            format!("  {rate:.1} img/s  ETA {}", run.eta_s().map_or("-".into(), format_duration))
        }
        _ => String::new(),
    };
    let lines = vec![
        Line::from(format!("{}  [{}]{pace}", run.id, run.state_name())).style(fg(s, state_color(run))),
        Line::from(format!(
            "epoch {}/{planned}{}  best {}  val loss {}  {} {}  lr {}",
            status.map_or(0, |st| st.epoch),
            run.epoch_progress().map_or(String::new(), |(done, of)| format!(" (step {done}/{of})")),
            best.map_or("-".into(), |b| b.to_string()),
            num(run.val.last(), 4),
            run.metric_label(),
            num(run.metric(), 4),
            run.last.as_ref().map_or("-".into(), |l| format!("{:.2e}", l.lr)),
        )),
        Line::from(if s.color {
            "loss: ⠉⠒ train (green)  ⠉⠒ val (yellow)   marks: L lr drop  B best epoch"
        } else {
            "loss: ⠉⠒ train  o val   marks: L lr drop  B best epoch"
        }),
    ];
    Paragraph::new(lines).render(head, buf);
    let mut marks: Vec<(f64, char)> = run.lr_drops.iter().map(|x| (*x, 'L')).collect();
    if let Some(x) = best.and_then(|b| run.epoch_steps.get(&b)) {
        marks.push((*x, 'B'));
    }
    let train = Curve { series: &run.train, symbol: '*', style: fg(s, Color::Green) };
    let val = Curve { series: &run.val, symbol: 'o', style: fg(s, Color::Yellow) };
    let axis = XAxis { name: "epoch", ticks: run.epoch_steps.iter().map(|(e, x)| (*x, e.to_string())).collect() };
    if s.color {
        chart::render_lines(&[train, val], &[], &marks, &axis, curves, buf);
    } else {
        chart::render_lines(&[train], &[val], &marks, &axis, curves, buf);
    }
    render_log(s, run, log, buf);
}

/// The run's reason (whole) and its log, wrapped to the width, ending `s.log_scroll` lines before the end.
fn render_log(s: &State, run: &RunView, area: Rect, buf: &mut Buffer) {
    let keys = format!(
        "{}/{} scroll, {} full screen",
        s.keymap.key_of(Bind::Up),
        s.keymap.key_of(Bind::Down),
        s.keymap.key_of(Bind::FullLog)
    );
    let title =
        if s.log_scroll > 0 { format!(" log ({} lines up; {keys}) ", s.log_scroll) } else { format!(" log ({keys}) ") };
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    let width = inner.width.max(1) as usize;
    let reason = run.status.as_ref().and_then(|st| st.reason.as_deref()).map(|r| format!("reason: {r}"));
    let mut top: Vec<Line> =
        reason.iter().flat_map(|r| wrap(r, width)).map(|l| Line::from(l).style(fg(s, Color::Red))).collect();
    top.truncate(inner.height as usize / 2);
    let room = (inner.height as usize).saturating_sub(top.len());
    let end = run.log_tail.len().saturating_sub(s.log_scroll);
    let mut log: Vec<String> = Vec::new();
    for line in run.log_tail[..end].iter().rev() {
        let mut wrapped = wrap(line, width);
        wrapped.extend(log);
        log = wrapped;
        if log.len() >= room {
            break;
        }
    }
    let skip = log.len().saturating_sub(room);
    top.extend(log.into_iter().skip(skip).map(Line::from));
    Paragraph::new(top).render(inner, buf);
}

/// `text` cut into lines of `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}
