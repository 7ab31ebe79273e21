//! Moving around: views, cursors, Esc, the help and the message pop-up.

use super::super::state::{State, View};

/// The view `by` places after the current one (wrapping).
pub(super) fn step_view(s: &mut State, by: usize) {
    show(s, View::ALL[(s.view.index() + by) % View::ALL.len()]);
}

pub(super) fn show(s: &mut State, view: View) {
    s.view = view;
    s.filter_editing = false;
}

pub(super) fn move_cursor(s: &mut State, to: impl Fn(usize, usize) -> usize) {
    if s.detail.is_some() && s.view == View::Runs {
        // In a run's detail the keys scroll its log: "up" goes back in time.
        let lines = s.detail.as_ref().and_then(|id| s.runs.get(id)).map_or(0, |r| r.log_tail.len());
        let from_top = lines.saturating_sub(1).saturating_sub(s.log_scroll);
        s.log_scroll = lines.saturating_sub(1).saturating_sub(to(from_top, lines));
        return;
    }
    let rows = s.rows_in_view();
    let i = s.view.index();
    s.cursor[i] = to(s.cursor[i], rows);
}

/// Keeps every view's cursor on its rows (after rows came or went).
pub(super) fn clamp_cursors(s: &mut State) {
    let view = s.view;
    for v in View::ALL {
        s.view = v;
        let rows = s.rows_in_view();
        s.cursor[v.index()] = s.cursor[v.index()].min(rows.saturating_sub(1));
    }
    s.view = view;
}

pub(super) fn toggle_message(s: &mut State) {
    if s.message.is_none() && s.last_failure.is_none() {
        s.message = Some("no message to show".into());
    } else {
        s.popup = !s.popup;
    }
}

/// Esc closes the innermost thing open: pop-up, help, filter typing, run detail, filter, selection.
pub(super) fn back(s: &mut State) {
    if s.popup {
        s.popup = false;
    } else if s.help {
        s.help = false;
    } else if s.filter_editing {
        s.filter_editing = false;
        s.filter.clear();
    } else if s.detail.is_some() {
        s.detail = None;
        s.log_full = false;
    } else if !s.filter.is_empty() {
        s.filter.clear();
    } else if !s.selected.is_empty() {
        s.message = Some(format!("cleared the selection of {} runs", s.selected.len()));
        s.selected.clear();
    }
}

/// A click on the tab bar shows that view; on a list row it moves the cursor there (a run's detail closes
/// only through Esc, so a click inside it does nothing).
pub(super) fn click(s: &mut State, column: u16, row: u16) {
    if row == 0 {
        if let Some(view) = View::at_tab_column(column) {
            show(s, view);
        }
        return;
    }
    if s.detail.is_some() && s.view == View::Runs {
        return;
    }
    let hit = s.rows_on_screen.borrow().iter().find(|(y, _)| *y == row).map(|(_, index)| *index);
    if let Some(index) = hit {
        let i = s.view.index();
        s.cursor[i] = index;
    }
}
