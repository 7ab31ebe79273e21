//! Leaderboard: the per-class heat map (256, 16 and no colours), the published reference rows, export.

use super::super::action::Action;
use super::super::effect::Effect;
use super::super::state::{State, View};
use super::super::update::update;
use super::super::views::heat::{heat_color, rich_color};
use super::super::views::leaderboard::rows;
use super::{A, B, delta, line_with, screen, two_runs};
use crate::runs::record::State as RunState;
use ratatui::style::Color;
use ratatui::{Terminal, backend::TestBackend};

const CLASSES: [&str; 3] = ["Atelectasis", "Effusion", "Mass"];

/// Finished runs with per-class values: imagenet twice (A and a second trial), random once (B).
fn board(color: bool, rich: bool) -> State {
    let mut s = two_runs();
    s.color = color;
    s.rich_color = rich;
    let t2 = "20261126-081202-demo-cls-imagenet-t2";
    // The per-class values arrive in result.json, as the run-folder watcher reports it.
    let mut finished = |id: &str, init: &str, trial: u32, mean: f64, v: [f64; 3]| {
        let Action::RunData(mut data) = delta(id, init, trial, RunState::Finished, Some(mean)) else { unreachable!() };
        data.result.as_mut().unwrap().per_class = CLASSES.iter().map(|c| c.to_string()).zip(v).collect();
        update(&mut s, Action::RunData(data));
    };
    finished(A, "imagenet", 1, 0.91, [0.90, 0.80, 0.70]);
    finished(t2, "imagenet", 2, 0.93, [0.92, 0.82, 0.72]);
    finished(B, "random", 1, 0.61, [0.60, 0.55, 0.50]);
    update(&mut s, Action::Show(View::Leaderboard));
    s
}

fn cell_bg(s: &State, text: &str) -> Color {
    let (w, h) = (80, 24);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal.draw(|f| f.render_widget(s, f.area())).unwrap();
    let buf = terminal.backend().buffer();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(x) = line.find(text) {
            return buf[(x as u16 + text.len() as u16 - 1, y)].bg;
        }
    }
    panic!("{text:?} not on screen:\n{}", screen(s, w, h));
}

#[test]
fn heat_map_shows_per_class_means_best_first_at_80x24_and_wide() {
    let mut s = board(false, false);
    update(&mut s, Action::ToggleHeatMap);
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, w, h);
        assert!(text.contains("demo-cls 100% auc: per-class auc (mean over trials, %)"), "{text}");
        let header = line_with(&text, "Effusion");
        assert!(header.contains("Atelectasis") && header.contains("Mass"), "{header}");
        let imagenet = line_with(&text, "imagenet ");
        assert!(imagenet.contains("91.0") && imagenet.contains("81.0") && imagenet.contains("71.0"), "{text}");
        assert!(line_with(&text, "random ").contains("60.0"), "{text}");
        assert!(text.find("imagenet ").unwrap() < text.find("random ").unwrap(), "best first:\n{text}");
    }
    update(&mut s, Action::ToggleHeatMap);
    assert!(screen(&s, 80, 24).contains("auc 0.9200 ± 0.0100"), "the ranking again");
}

#[test]
fn heat_colours_degrade_from_256_to_16_to_none() {
    assert_eq!(heat_color(0.0, true), Color::Indexed(196));
    assert_eq!(heat_color(1.0, true), Color::Indexed(46));
    assert_eq!(heat_color(0.0, false), Color::Red);
    assert_eq!(heat_color(1.0, false), Color::Green);
    assert_eq!(heat_color(0.5, false), Color::Yellow);
    assert!(rich_color(Some("truecolor"), Some("screen")));
    assert!(rich_color(None, Some("xterm-256color")));
    assert!(!rich_color(None, Some("xterm")) && !rich_color(None, None));

    for (color, rich, high, low) in [
        (true, true, Color::Indexed(46), Color::Indexed(196)),
        (true, false, Color::Green, Color::Red),
        (false, false, Color::Reset, Color::Reset),
    ] {
        let mut s = board(color, rich);
        update(&mut s, Action::ToggleHeatMap);
        assert_eq!(cell_bg(&s, "91.0"), high, "the highest value, imagenet's Atelectasis");
        assert_eq!(cell_bg(&s, "50.0"), low, "the lowest value, random's Mass");
    }
}

#[test]
fn published_rows_are_shown_on_demand_unranked() {
    let mut s = board(false, false);
    let before = rows(&s).len();
    assert_eq!(before, 2);
    update(&mut s, Action::TogglePublished);
    let all = rows(&s);
    let references: Vec<_> = all.iter().filter(|r| r.is_reference()).collect();
    assert!(!references.is_empty());
    assert_eq!(references.len(), s.published.len(), "every published dataset is listed");
    assert!(references.iter().any(|r| r.dataset == "chestxray14" && r.init == "imagenet"), "{references:?}");
    let text = screen(&s, 80, 24);
    assert!(line_with(&text, "chestxray14").contains("paper"), "{text}");
    assert!(!line_with(&text, "demo-cls").contains("paper"), "{text}");
    update(&mut s, Action::Bottom);
    update(&mut s, Action::TogglePublished);
    assert_eq!(rows(&s).len(), 2);
    assert_eq!(s.cursor(), 1, "the cursor comes back onto the remaining rows");
}

#[test]
fn export_writes_csv_markdown_and_the_figure_of_the_cursor_dataset() {
    let mut s = board(false, false);
    let effects = update(&mut s, Action::Export);
    let [Effect::Export { files }] = effects.as_slice() else { panic!("{effects:?}") };
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["leaderboard-demo-cls.csv", "leaderboard-demo-cls.md", "leaderboard-demo-cls.svg"]);
    assert!(files[2].1.starts_with("<svg") && files[2].1.contains(">\nimagenet\n</text>"), "{}", files[2].1);
    assert!(files[0].1.starts_with("source,dataset,"), "{}", files[0].1);
    assert!(files[0].1.contains("medxfer,demo-cls,100,auc"), "{}", files[0].1);
    assert!(!files[0].1.contains("published"), "no reference rows unless shown");
    assert!(files[1].1.contains("| 1 | imagenet | 2 |"), "{}", files[1].1);
    assert_eq!(
        s.message.as_deref(),
        Some("running: export leaderboard-demo-cls.csv, leaderboard-demo-cls.md, leaderboard-demo-cls.svg")
    );
    update(&mut s, Effect::exported(Ok(vec!["/h/exports/a.csv".into(), "/h/exports/a.md".into()])));
    assert_eq!(s.message.as_deref(), Some("exported /h/exports/a.csv and /h/exports/a.md"));
    update(&mut s, Effect::exported(Err("disk full".into())));
    assert_eq!(s.message.as_deref(), Some("export failed: disk full"));

    update(&mut s, Action::TogglePublished);
    let effects = update(&mut s, Action::Export);
    let [Effect::Export { files }] = effects.as_slice() else { panic!("{effects:?}") };
    assert!(files[1].1.contains("Published"), "shown reference rows are exported too:\n{}", files[1].1);
    assert!(files[2].1.contains("(published)"), "and drawn:\n{}", files[2].1);

    let mut empty = State::new(crate::tui::env::TuiEnv::embedded(), super::super::keymap::Keymap::default(), false);
    update(&mut empty, Action::Show(View::Leaderboard));
    assert!(update(&mut empty, Action::Export).is_empty());
    assert_eq!(empty.message.as_deref(), Some("nothing to export yet: no finished runs"));
}

#[test]
fn leaderboard_keys_are_in_its_help() {
    let mut s = board(false, false);
    update(&mut s, Action::ToggleHelp);
    let text = screen(&s, 80, 24);
    for entry in ["c per-class heat map", "r published reference rows", "e export CSV and Markdown"] {
        assert!(text.contains(entry), "{entry}:\n{text}");
    }
}

#[test]
fn heat_map_snapshot_80x24_no_color() {
    let mut s = board(false, false);
    update(&mut s, Action::ToggleHeatMap);
    let text = screen(&s, 80, 24);
    let mut expected = vec![
        " 1 Zoo  2 Datasets  3 Launch  4 Runs  5 Compare  6 Leaderboard  7 GPUs",
        " Leaderboard (mean ± std over trials)  c per-class  r published  e export ──────",
        "demo-cls 100% auc: per-class auc (mean over trials, %)",
        "               Atelectasis    Effusion        Mass",
        "imagenet              91.0        81.0        71.0",
        "random                60.0        55.0        50.0",
    ];
    expected.resize(23, "");
    expected.push("? help  q quit");
    assert_eq!(text, expected.join("\n"));
}

#[test]
fn board_rows_follow_the_results_as_runs_come_and_go() {
    let mut s = two_runs();
    let inits = |s: &State| s.board.iter().map(|r| r.init.clone()).collect::<Vec<_>>();
    assert_eq!(inits(&s), ["imagenet"], "B is still running");
    update(&mut s, delta(B, "random", 1, RunState::Finished, Some(0.61)));
    assert_eq!(inits(&s), ["imagenet", "random"]);
    update(&mut s, Action::RunRemoved(A.into()));
    assert_eq!(inits(&s), ["random"]);
}
