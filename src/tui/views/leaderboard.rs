//! The leaderboard: per dataset, each init's mean ± population std over its finished trials, ranked;
//! runs scored under different conventions or annotation percentages are never ranked together.

use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub dataset: String,
    pub anno_percent: u32,
    pub metric: String,
    /// Rank within its (dataset, anno percent, conventions) group, from 1.
    pub rank: usize,
    pub init: String,
    pub trials: usize,
    pub mean: f64,
    pub std: f64,
}

/// The ranking, computed from the results in `s`.
pub fn rows(s: &State) -> Vec<BoardRow> {
    type GroupKey = (String, u32, String, String);
    let mut groups: BTreeMap<GroupKey, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for r in s.runs.values().filter_map(|run| run.result.as_ref()) {
        let conventions = serde_json::to_string(&r.conventions).unwrap_or_default();
        let key = (r.dataset.clone(), r.anno_percent, conventions, r.metric.clone());
        groups.entry(key).or_default().entry(r.init.clone()).or_default().push(r.mean);
    }
    let mut out = Vec::new();
    for ((dataset, anno_percent, _, metric), inits) in groups {
        let mut ranked: Vec<(String, usize, f64, f64)> = inits
            .into_iter()
            .map(|(init, values)| {
                let (mean, std) = mean_std(&values);
                (init, values.len(), mean, std)
            })
            .collect();
        ranked.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        for (i, (init, trials, mean, std)) in ranked.into_iter().enumerate() {
            let (dataset, metric) = (dataset.clone(), metric.clone());
            out.push(BoardRow { dataset, anno_percent, metric, rank: i + 1, init, trials, mean, std });
        }
    }
    out
}

/// Mean and population standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let rows = rows(s);
    let block = Block::default().borders(Borders::TOP).title(" Leaderboard (mean ± std over trials) ");
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Paragraph::new("no finished runs yet: results appear here as runs finish").render(inner, buf);
        return;
    }
    let cursor = s.cursor[View::Leaderboard.index()];
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let table_rows = rows.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, r)| {
        let cells = vec![
            r.dataset.clone(),
            format!("{}%", r.anno_percent),
            r.rank.to_string(),
            r.init.clone(),
            r.trials.to_string(),
            format!("{} {:.4} ± {:.4}", r.metric, r.mean, r.std),
        ];
        let row = Row::new(cells);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    let widths = [14, 5, 4, 22, 6, 24].map(Constraint::Length);
    Table::new(table_rows, widths)
        .header(Row::new(["dataset", "anno", "rank", "init", "trials", "score"]).style(fg(s, Color::Cyan)))
        .render(inner, buf);
}
