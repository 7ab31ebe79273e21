//! The Leaderboard view: `runs::leaderboard`'s ranking per dataset (mean ± population std over trials);
//! runs scored under different conventions or annotation percentages are never ranked together.

use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use crate::runs::leaderboard;
use crate::runs::record::RunResult;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::BTreeSet;

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

/// The ranking per dataset from `runs::leaderboard` (population std, imagenet baseline).
pub fn rows(s: &State) -> Vec<BoardRow> {
    let results: Vec<RunResult> = s.runs.values().filter_map(|run| run.result.clone()).collect();
    let datasets: BTreeSet<&str> = results.iter().map(|r| r.dataset.as_str()).collect();
    let options = leaderboard::Options::default();
    let mut out = Vec::new();
    for dataset in datasets {
        let Ok(board) = leaderboard::build(&results, dataset, &options) else { continue };
        for group in &board.groups {
            for row in &group.rows {
                out.push(BoardRow {
                    dataset: dataset.to_string(),
                    anno_percent: group.anno_percent,
                    metric: group.metric.clone(),
                    rank: row.rank,
                    init: row.init.clone(),
                    trials: row.summary.n,
                    mean: row.summary.mean,
                    std: row.summary.std.unwrap_or(f64::NAN),
                });
            }
        }
    }
    out
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
