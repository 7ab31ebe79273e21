//! The Datasets view: the datasets the runs use, with their task and run counts.

use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use crate::runs::record::Task;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub name: String,
    pub task: Task,
    pub runs: usize,
    pub finished: usize,
}

pub fn datasets(s: &State) -> Vec<DatasetRow> {
    let mut by_name: BTreeMap<&str, DatasetRow> = BTreeMap::new();
    for (run, spec) in s.runs.values().filter_map(|r| Some((r, r.spec.as_ref()?))) {
        let row = by_name.entry(spec.dataset.as_str()).or_insert_with(|| DatasetRow {
            name: spec.dataset.clone(),
            task: spec.task,
            runs: 0,
            finished: 0,
        });
        row.runs += 1;
        row.finished += usize::from(run.result.is_some());
    }
    by_name.into_values().collect()
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let rows = datasets(s);
    let block = Block::default().borders(Borders::TOP).title(" Datasets used by runs ");
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Paragraph::new("no runs yet; the demo datasets demo-cls and demo-seg are always available").render(inner, buf);
        return;
    }
    let cursor = s.cursor[View::Datasets.index()];
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let table_rows = rows.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, d)| {
        let task = match d.task {
            Task::Classification => "classification",
            Task::Segmentation => "segmentation",
        };
        let row = Row::new([d.name.clone(), task.into(), d.runs.to_string(), d.finished.to_string()]);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    Table::new(table_rows, [20, 16, 6, 9].map(Constraint::Length))
        .header(Row::new(["dataset", "task", "runs", "finished"]).style(fg(s, Color::Cyan)))
        .render(inner, buf);
}
