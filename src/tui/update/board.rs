//! The Leaderboard view's keys: the published reference rows, the export.

use super::super::effect::Effect;
use super::super::state::{State, View};
use super::nav::clamp_cursors;
use crate::runs::{export, leaderboard};

pub(super) fn toggle_published(s: &mut State) {
    s.board_published = !s.board_published;
    s.refresh_board();
    clamp_cursors(s);
}

/// The leaderboard of the dataset under the Leaderboard cursor, as CSV, Markdown and the bars figure (the
/// `medxfer results` exports), with the published rows when they are shown.
pub(super) fn export(s: &mut State) -> Vec<Effect> {
    let Some(dataset) = s.board.get(s.cursor[View::Leaderboard.index()]).map(|r| r.dataset.clone()) else {
        s.message = Some("nothing to export yet: no finished runs".into());
        return Vec::new();
    };
    let options = leaderboard::Options { published: s.board_published, ..leaderboard::Options::default() };
    let board = match leaderboard::build(&super::super::board::results(&s.runs), &dataset, &options) {
        Ok(board) => board,
        Err(e) => {
            s.message = Some(format!("export failed: {}", crate::error::one_sentence(&e)));
            return Vec::new();
        }
    };
    let stem: String = dataset
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let figure = crate::plot::figure::bars(&board, crate::plot::figure::Spread::Std, None)
        .map(|bars| crate::plot::Figure::Bars { bars, p_values: false })
        .and_then(|f| f.render(crate::plot::Format::Svg));
    let svg = match figure {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            s.message = Some(format!("export failed: {}", crate::error::one_sentence(&e)));
            return Vec::new();
        }
    };
    let files = vec![
        (format!("leaderboard-{stem}.csv"), export::csv(&board)),
        (format!("leaderboard-{stem}.md"), export::markdown(&board)),
        (format!("leaderboard-{stem}.svg"), svg),
    ];
    let effect = Effect::Export { files };
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
}
