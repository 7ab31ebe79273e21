//! Clicks select a tab or the row under the pointer, from where the last frame drew them.

use super::super::action::Action;
use super::super::state::View;
use super::super::update::update;
use super::{B, screen, two_runs, typical_zoo};

fn row_of(text: &str, needle: &str) -> u16 {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle:?} not on screen:\n{text}")) as u16
}

#[test]
fn a_click_on_a_tab_shows_its_view() {
    let mut s = two_runs();
    let top = screen(&s, 100, 24).lines().next().unwrap().to_string();
    let column = top.find("Leaderboard").unwrap() as u16;
    update(&mut s, Action::Click { column, row: 0 });
    assert_eq!(s.view, View::Leaderboard);
    let column = top.find("Zoo").unwrap() as u16;
    update(&mut s, Action::Click { column, row: 0 });
    assert_eq!(s.view, View::Zoo);
    update(&mut s, Action::Click { column: 99, row: 0 });
    assert_eq!(s.view, View::Zoo, "right of the last tab: nothing");
}

#[test]
fn a_click_on_a_row_moves_the_cursor_there() {
    let mut s = two_runs();
    update(&mut s, Action::Show(View::Runs));
    update(&mut s, Action::Top);
    let text = screen(&s, 80, 24);
    assert_ne!(s.current_run().unwrap().id, B);
    update(&mut s, Action::Click { column: 20, row: row_of(&text, "random") });
    assert_eq!(s.current_run().unwrap().id, B, "{text}");
    let header = row_of(&text, "state");
    update(&mut s, Action::Click { column: 20, row: header });
    assert_eq!(s.current_run().unwrap().id, B, "the header row is no run");

    let mut z = typical_zoo();
    update(&mut z, Action::Show(View::Zoo));
    let text = screen(&z, 80, 24);
    update(&mut z, Action::Click { column: 3, row: row_of(&text, " swav") });
    assert_eq!(z.current_model().unwrap().entry.id, "swav", "{text}");
    update(&mut z, Action::Down);
    let text = screen(&z, 80, 24);
    let category = text.lines().position(|l| l.trim_end().ends_with(':') && !l.starts_with(' ')).unwrap() as u16;
    let before = z.current_model().unwrap().entry.id.clone();
    update(&mut z, Action::Click { column: 3, row: category });
    assert_eq!(z.current_model().unwrap().entry.id, before, "a category heading is no model:\n{text}");
}
