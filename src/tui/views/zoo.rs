//! The Zoo view: every init the runs use, with how many runs each has and its best result.

use super::super::state::{State, View};
use super::{cursor_style, fg, num, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub init: String,
    pub runs: usize,
    pub finished: usize,
    pub best: Option<f64>,
}

pub fn models(s: &State) -> Vec<ModelRow> {
    let mut by_init: BTreeMap<&str, ModelRow> = BTreeMap::new();
    for run in s.runs.values().filter(|r| r.spec.is_some()) {
        let row = by_init.entry(run.model()).or_insert_with(|| ModelRow {
            init: run.model().into(),
            runs: 0,
            finished: 0,
            best: None,
        });
        row.runs += 1;
        if let Some(result) = &run.result {
            row.finished += 1;
            row.best = Some(row.best.map_or(result.mean, |b: f64| b.max(result.mean)));
        }
    }
    by_init.into_values().collect()
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let rows = models(s);
    let block = Block::default().borders(Borders::TOP).title(" Zoo: models used by runs ");
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Paragraph::new("no runs yet, so no models in use").render(inner, buf);
        return;
    }
    let cursor = s.cursor[View::Zoo.index()];
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let table_rows = rows.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, m)| {
        let row = Row::new([m.init.clone(), m.runs.to_string(), m.finished.to_string(), num(m.best, 4)]);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    Table::new(table_rows, [24, 6, 9, 8].map(Constraint::Length))
        .header(Row::new(["model", "runs", "finished", "best"]).style(fg(s, Color::Cyan)))
        .render(inner, buf);
}
