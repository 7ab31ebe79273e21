//! The Leaderboard view: `runs::leaderboard`'s ranking per dataset (mean ± population std over trials);
//! runs scored under different conventions or annotation percentages are never ranked together. On demand:
//! the study's published numbers as unranked reference rows, and the per-class heat map (`heat`).

use super::super::board::BoardRow;
use super::super::keymap::Bind;
use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

/// "auc 0.9200 ± 0.0100"; one trial has no spread, and says so instead of "± 0.0000".
fn score(r: &BoardRow) -> String {
    if r.is_reference() || r.trials >= 2 {
        format!("{} {:.4} ± {:.4}", r.metric, r.mean, r.std)
    } else {
        format!("{} {:.4} (1 trial)", r.metric, r.mean)
    }
}

/// The rows the view shows: `State::board`, rebuilt by `update` when runs or the published switch change.
pub fn rows(s: &State) -> &[BoardRow] {
    &s.board
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
        super::heat::render(s, rows, cursor, inner, buf);
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
