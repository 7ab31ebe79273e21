//! The Datasets view: every dataset spec the data module knows (dataset/*.toml, the demos included), the
//! runs that used each, and the outcome of `medxfer data check` for the one under the cursor.

use super::super::action::DataCheck;
use super::super::keymap::Bind;
use super::super::state::{DatasetInfo, State, View};
use super::{cursor_style, fg, scroll_offset};
use crate::runs::record::Task;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget, Wrap};
use std::collections::BTreeMap;

/// (runs, finished) per dataset name.
pub fn usage(s: &State) -> BTreeMap<&str, (usize, usize)> {
    let mut by_name: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (run, spec) in s.runs.values().filter_map(|r| Some((r, r.spec.as_ref()?))) {
        let u = by_name.entry(spec.dataset.as_str()).or_default();
        u.0 += 1;
        u.1 += usize::from(run.result.is_some());
    }
    by_name
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "classification",
        Task::Segmentation => "segmentation",
    }
}

/// The check column: a short word for the table.
fn check_label(check: &Option<DataCheck>) -> String {
    match check {
        None => "-".into(),
        Some(DataCheck::Running) => "checking...".into(),
        Some(DataCheck::Done { problems, .. }) if problems.is_empty() => "ok".into(),
        Some(DataCheck::Done { problems, .. }) => format!("{} problem(s)", problems.len()),
        Some(DataCheck::Failed(_)) => "failed".into(),
    }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::TOP).title(format!(" Datasets: {} specs ", s.datasets.len()));
    let inner = block.inner(area);
    block.render(area, buf);
    let details_height = (inner.height / 2).clamp(3, 10);
    let [list, details] = Layout::vertical([Constraint::Min(3), Constraint::Length(details_height)]).areas(inner);
    let usage = usage(s);
    let cursor = s.cursor[View::Datasets.index()];
    let offset = scroll_offset(cursor, list.height.saturating_sub(1) as usize);
    let rows = s.datasets.iter().enumerate().skip(offset).take(list.height as usize).map(|(i, d)| {
        s.row_drawn(list.y + 1 + (i - offset) as u16, i);
        let (runs, finished) = usage.get(d.name.as_str()).copied().unwrap_or_default();
        let kind = if d.demo { "demo" } else { "needs --root" };
        let row = Row::new([
            d.name.clone(),
            task_name(d.task).into(),
            d.metric.into(),
            kind.into(),
            runs.to_string(),
            finished.to_string(),
            check_label(&d.check),
        ]);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    let widths = [12, 14, 6, 12, 4, 8].map(Constraint::Length).into_iter().chain([Constraint::Min(6)]);
    Table::new(rows, widths)
        .header(
            Row::new(["dataset", "task", "metric", "source", "runs", "finished", "check"]).style(fg(s, Color::Cyan)),
        )
        .render(list, buf);
    if let Some(d) = s.current_dataset() {
        render_details(s, d, details, buf);
    }
}

fn render_details(s: &State, d: &DatasetInfo, area: Rect, buf: &mut Buffer) {
    let key = s.keymap.key_of(Bind::DataCheck);
    let mut lines = vec![Line::from(d.description.clone())];
    match &d.check {
        None => lines.push(Line::from(format!("press {key} to run `medxfer data check {}`", d.name))),
        Some(DataCheck::Running) => lines.push(Line::from(format!("medxfer data check {} is running...", d.name))),
        Some(DataCheck::Failed(reason)) => {
            lines.push(Line::from(format!("check failed: {reason}")).style(fg(s, Color::Red)))
        }
        Some(DataCheck::Done { splits, listed, found, problems }) => {
            let per_split: Vec<String> = splits.iter().map(|(name, n)| format!("{name} {n}")).collect();
            lines.push(Line::from(format!("images: {found} of {listed} listed found ({})", per_split.join(", "))));
            if problems.is_empty() {
                lines.push(Line::from("no problems found").style(fg(s, Color::Green)));
            } else {
                lines.push(Line::from(format!("{} problem(s):", problems.len())).style(fg(s, Color::Red)));
                lines.extend(problems.iter().map(|p| Line::from(format!("  {p}"))));
            }
        }
    }
    let block = Block::default().borders(Borders::TOP).title(format!(" {} ", d.name));
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(block).render(area, buf);
}
