//! The Runs table, one run's detail (loss curves with LR-drop and best-epoch marks, log tail), and Compare.

use super::super::state::{RunView, State, View};
use super::chart::{self, Curve};
use super::{cursor_style, fg, num, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

/// Terminals at least this wide get the extra columns (GPU, ETA, id).
const WIDE: u16 = 120;

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    match s.detail.as_ref().and_then(|id| s.runs.get(id)) {
        Some(run) => render_detail(s, run, area, buf),
        None => render_table(s, area, buf),
    }
}

fn render_table(s: &State, area: Rect, buf: &mut Buffer) {
    let runs = s.visible_runs();
    let wide = area.width >= WIDE;
    let title = format!(" Runs {} (sort: {}) ", runs.len(), s.sort.name());
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if runs.is_empty() {
        let hint = format!("no runs yet: press {} in Launch for the demo sweep", s.keymap.key_of("demo_sweep"));
        Paragraph::new(hint).render(inner, buf);
        return;
    }
    let mut header = vec!["", "state", "model", "dataset", "t", "epoch", "train", "val", "metric", "img/s"];
    let mut widths = vec![1, 8, 14, 10, 2, 5, 7, 7, 6, 7];
    if wide {
        header.extend(["GPU", "ETA", "id"]);
        widths.extend([6, 8, 44]);
    }
    let cursor = s.cursor[View::Runs.index()];
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let rows = runs.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, run)| {
        let row = Row::new(cells(s, run, wide));
        if i == cursor { row.style(cursor_style()) } else { row.style(fg(s, state_color(run))) }
    });
    Table::new(rows, widths.into_iter().map(Constraint::Length))
        .header(Row::new(header).style(fg(s, Color::Cyan)))
        .column_spacing(1)
        .render(inner, buf);
}

fn cells(s: &State, run: &RunView, wide: bool) -> Vec<String> {
    let last = run.last.as_ref();
    let mut cells = vec![
        if s.selected.contains(&run.id) { "+".into() } else { String::new() },
        run.state_name().into(),
        run.model().into(),
        run.dataset().into(),
        run.spec.as_ref().map_or("-".into(), |sp| sp.trial.to_string()),
        run.status.as_ref().map_or("-".into(), |st| st.epoch.to_string()),
        num(run.train.last(), 4),
        num(run.val.last(), 4),
        num(run.metric(), 3),
        num(last.map(|l| l.images_per_s), 1),
    ];
    if wide {
        cells.push(run.spec.as_ref().map_or("-".into(), |sp| sp.device.device.clone()));
        cells.push(run.eta_s().map_or("-".into(), format_duration));
        cells.push(run.id.clone());
    }
    cells
}

fn state_color(run: &RunView) -> Color {
    match run.state_name() {
        "running" => Color::Green,
        "failed" => Color::Red,
        "stopped" => Color::Yellow,
        _ => Color::Reset,
    }
}

pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s / 60 % 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

fn render_detail(s: &State, run: &RunView, area: Rect, buf: &mut Buffer) {
    let log_rows = if area.height >= 30 { 8 } else { 3 };
    let [head, curves, log] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(4), Constraint::Length(log_rows)]).areas(area);
    let status = run.status.as_ref();
    let best = status.and_then(|st| st.best_epoch);
    let planned = run.spec.as_ref().map_or("?".into(), |sp| sp.hyper.epochs.to_string());
    let lines = vec![
        Line::from(format!("{}  [{}]", run.id, run.state_name())).style(fg(s, state_color(run))),
        Line::from(format!(
            "epoch {}/{planned}  best {}  val {}  {} {}  lr {}",
            status.map_or(0, |st| st.epoch),
            best.map_or("-".into(), |b| b.to_string()),
            num(run.val.last(), 4),
            run.val_metric.as_ref().map_or("metric", |m| m.0.as_str()),
            num(run.metric(), 4),
            run.last.as_ref().map_or("-".into(), |l| format!("{:.2e}", l.lr)),
        )),
        Line::from("loss: * train  o val   marks: L lr drop  B best epoch"),
    ];
    Paragraph::new(lines).render(head, buf);
    let mut marks: Vec<(f64, char)> = run.lr_drops.iter().map(|x| (*x, 'L')).collect();
    if let Some(x) = best.and_then(|b| run.epoch_steps.get(&b)) {
        marks.push((*x, 'B'));
    }
    let curves_drawn = [
        Curve { series: &run.train, symbol: '*', style: fg(s, Color::Green) },
        Curve { series: &run.val, symbol: 'o', style: fg(s, Color::Yellow) },
    ];
    chart::render(&curves_drawn, &marks, curves, buf);
    let reason = status.and_then(|st| st.reason.clone()).map(|r| format!("reason: {r}"));
    let tail: Vec<Line> = reason
        .into_iter()
        .chain(run.log_tail.iter().rev().take(log_rows as usize).rev().cloned())
        .map(Line::from)
        .collect();
    Paragraph::new(tail).block(Block::default().borders(Borders::TOP).title(" log ")).render(log, buf);
}

/// Compare: the validation loss of every selected run on one chart, one letter per run.
pub fn render_compare(s: &State, area: Rect, buf: &mut Buffer) {
    let runs: Vec<&RunView> = s.selected.iter().filter_map(|id| s.runs.get(id)).collect();
    if runs.is_empty() {
        let hint = format!("select runs with {} in Runs to compare their validation loss", s.keymap.key_of("select"));
        Paragraph::new(hint).render(area, buf);
        return;
    }
    let legend_rows = runs.len().min(6) as u16;
    let [legend, curves] = Layout::vertical([Constraint::Length(legend_rows), Constraint::Min(3)]).areas(area);
    let symbols = "abcdefghijklmnopqrstuvwxyz";
    let colors = [Color::Green, Color::Yellow, Color::Cyan, Color::Magenta, Color::Blue, Color::Red];
    let mut lines = Vec::new();
    let mut drawn = Vec::new();
    for (i, (run, symbol)) in runs.iter().zip(symbols.chars().cycle()).enumerate() {
        let style = fg(s, colors[i % colors.len()]);
        lines.push(Line::from(format!("{symbol} {}  val {}", run.id, num(run.val.last(), 4))).style(style));
        drawn.push(Curve { series: &run.val, symbol, style });
    }
    Paragraph::new(lines).render(legend, buf);
    chart::render(&drawn, &[], curves, buf);
}
