//! The run detail's loss chart: braille lines on labelled axes, epochs on x, the best epoch and lr drops marked.

use super::super::action::Action;
use super::super::env::TuiEnv;
use super::super::keymap::Keymap;
use super::super::state::State;
use super::super::update::update;
use super::super::views::braille::dots_of;
use super::{A, delta, screen};
use crate::runs::record::State as RunState;

fn detail(color: bool) -> Vec<String> {
    let mut s = State::new(TuiEnv::embedded(), Keymap::default(), color);
    update(&mut s, delta(A, "imagenet", 1, RunState::Finished, Some(0.91)));
    update(&mut s, Action::Open);
    screen(&s, 100, 30).lines().map(str::to_string).collect()
}

/// The chart's rows: from the top y label to the x-label row that starts with "epoch".
fn chart_rows(lines: &[String]) -> (&[String], &str, &str) {
    let labels = lines.iter().rposition(|l| l.trim_start().starts_with("epoch ")).expect("an x-label row");
    let top = lines[..labels]
        .iter()
        .position(|l| l.split_whitespace().next().is_some_and(|w| w.contains('.') && w.parse::<f64>().is_ok()))
        .expect("a y label");
    (&lines[top..labels - 1], &lines[labels - 1], &lines[labels])
}

/// The highest dot row (0 = top) set in each braille dot column of the plot, by character column.
fn highest_dots(rows: &[String]) -> Vec<(usize, usize)> {
    let mut best: std::collections::BTreeMap<usize, usize> = Default::default();
    for (r, line) in rows.iter().enumerate() {
        for (c, ch) in line.chars().enumerate() {
            for (dx, dy) in dots_of(ch).unwrap_or_default() {
                let entry = best.entry(c * 2 + dx).or_insert(usize::MAX);
                *entry = (*entry).min(r * 4 + dy);
            }
        }
    }
    best.into_iter().collect()
}

#[test]
fn the_loss_chart_is_drawn_in_braille_on_labelled_axes() {
    let lines = detail(true);
    let (plot, axis, labels) = chart_rows(&lines);
    let text = lines.join("\n");
    assert!(plot.len() >= 8, "{text}");
    let dots = highest_dots(plot);
    let (first, last) = (dots.first().unwrap(), dots.last().unwrap());
    assert!(last.0 - first.0 > 100, "the lines span the plot's width: {dots:?}\n{text}");
    assert!(first.1 < last.1, "a falling loss starts high and ends low: {first:?} {last:?}\n{text}");
    let gaps = dots.windows(2).filter(|w| w[1].0 != w[0].0 + 1).count();
    assert_eq!(gaps, 0, "the points are joined into lines:\n{text}");
    let ticks: Vec<(usize, &str)> = labels.match_indices(char::is_numeric).collect();
    assert_eq!(ticks.iter().map(|t| t.1).collect::<String>(), "1234", "one label per epoch:\n{text}");
    for (col, _) in &ticks {
        assert!(matches!(axis.chars().nth(*col), Some('┴' | 'B' | 'L')), "a tick above each label:\n{axis}\n{labels}");
    }
    assert_eq!(axis.chars().nth(ticks[2].0), Some('B'), "best epoch 3 is marked at its label:\n{axis}\n{labels}");
    assert_eq!(axis.chars().nth(ticks[1].0), Some('L'), "the lr dropped at epoch 2:\n{axis}\n{labels}");
    let y_labels: Vec<f64> = plot.iter().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(y_labels.len(), 3, "top, middle and bottom of the loss axis:\n{text}");
    assert!(y_labels[0] > y_labels[1] && y_labels[1] > y_labels[2], "{y_labels:?}");
    assert!((y_labels[0] - 1.2 / 2.0).abs() < 1e-3 && (y_labels[2] - 1.0 / 5.0).abs() < 1e-3, "{y_labels:?}");
}

#[test]
fn without_colour_the_validation_curve_keeps_its_own_symbol() {
    let lines = detail(false);
    let (plot, _, _) = chart_rows(&lines);
    let text = lines.join("\n");
    assert!(plot.iter().any(|l| l.contains('o')), "val drawn as o:\n{text}");
    assert!(lines.iter().any(|l| l.contains("⠉⠒ train  o val")), "{text}");
    let colored = detail(true);
    assert!(!chart_rows(&colored).0.iter().any(|l| l.chars().skip(8).any(|c| c == 'o')), "in colour both are lines");
}
