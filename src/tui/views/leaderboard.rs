//! The Leaderboard view: `runs::leaderboard`'s ranking per dataset (mean ± population std over trials);
//! runs scored under different conventions or annotation percentages are never ranked together. On demand:
//! the study's published numbers as unranked reference rows, and the per-class heat map (`heat`).

use super::super::keymap::Bind;
use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use crate::runs::leaderboard;
use crate::runs::record::RunResult;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct BoardRow {
    pub dataset: String,
    pub anno_percent: u32,
    pub metric: String,
    /// The ranking group (dataset, anno percent, metric, conventions) it belongs to, numbered from 0.
    pub group: usize,
    /// Rank within its group, from 1; 0 for a published reference row.
    pub rank: usize,
    pub init: String,
    pub trials: usize,
    pub mean: f64,
    pub std: f64,
    /// Mean over trials per class (empty for reference rows).
    pub per_class: BTreeMap<String, f64>,
}

impl BoardRow {
    pub fn is_reference(&self) -> bool {
        self.rank == 0
    }
}

/// The ranking per dataset from `runs::leaderboard` (population std, imagenet baseline), each dataset followed
/// by its published reference rows when they are shown (then every dataset with published numbers is listed).
/// "auc 0.9200 ± 0.0100"; one trial has no spread, and says so instead of "± 0.0000".
fn score(r: &BoardRow) -> String {
    if r.is_reference() || r.trials >= 2 {
        format!("{} {:.4} ± {:.4}", r.metric, r.mean, r.std)
    } else {
        format!("{} {:.4} (1 trial)", r.metric, r.mean)
    }
}

pub fn rows(s: &State) -> Vec<BoardRow> {
    let results = results(s);
    let mut datasets: BTreeSet<&str> = results.iter().map(|r| r.dataset.as_str()).collect();
    if s.board_published {
        datasets.extend(s.published.iter().map(|p| p.dataset.as_str()));
    }
    let options = leaderboard::Options::default();
    let mut out = Vec::new();
    let mut group_index = 0;
    for dataset in datasets {
        let Ok(board) = leaderboard::build(&results, dataset, &options) else { continue };
        for group in &board.groups {
            for row in &group.rows {
                out.push(BoardRow {
                    dataset: dataset.to_string(),
                    anno_percent: group.anno_percent,
                    metric: group.metric.clone(),
                    group: group_index,
                    rank: row.rank,
                    init: row.init.clone(),
                    trials: row.summary.n,
                    mean: row.summary.mean,
                    std: row.summary.std.unwrap_or(f64::NAN),
                    per_class: row.per_class.clone(),
                });
            }
            group_index += 1;
        }
        if s.board_published {
            for p in s.published.iter().filter(|p| p.dataset == dataset) {
                out.push(BoardRow {
                    dataset: dataset.to_string(),
                    anno_percent: 100,
                    metric: p.metric.clone(),
                    group: group_index,
                    rank: 0,
                    init: p.init.clone(),
                    trials: 0,
                    mean: p.mean_percent / 100.0,
                    std: p.std_percent / 100.0,
                    per_class: BTreeMap::new(),
                });
            }
            group_index += 1;
        }
    }
    out
}

/// Every finished run's result.
pub fn results(s: &State) -> Vec<RunResult> {
    s.runs.values().filter_map(|run| run.result.clone()).collect()
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let rows = rows(s);
    let key = |name| s.keymap.key_of(name);
    let title = format!(
        " Leaderboard (mean ± std over trials)  {} per-class  {} published  {} export ",
        key(Bind::HeatMap),
        key(Bind::Published),
        key(Bind::Export)
    );
    let block = Block::default().borders(Borders::TOP).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if rows.is_empty() {
        Paragraph::new("no finished runs yet: results appear here as runs finish").render(inner, buf);
        return;
    }
    let cursor = s.cursor[View::Leaderboard.index()];
    if s.board_heat {
        super::heat::render(s, &rows, cursor, inner, buf);
        return;
    }
    let offset = scroll_offset(cursor, inner.height.saturating_sub(1) as usize);
    let table_rows = rows.iter().enumerate().skip(offset).take(inner.height as usize).map(|(i, r)| {
        let cells = vec![
            r.dataset.clone(),
            format!("{}%", r.anno_percent),
            if r.is_reference() { "paper".into() } else { r.rank.to_string() },
            r.init.clone(),
            if r.is_reference() { "-".into() } else { r.trials.to_string() },
            score(r),
        ];
        let row = Row::new(cells);
        if i == cursor {
            row.style(cursor_style())
        } else if r.is_reference() {
            row.style(fg(s, Color::DarkGray))
        } else {
            row
        }
    });
    let widths = [14, 5, 5, 22, 6, 24].map(Constraint::Length);
    Table::new(table_rows, widths)
        .header(Row::new(["dataset", "anno", "rank", "init", "trials", "score"]).style(fg(s, Color::Cyan)))
        .render(inner, buf);
}
