//! Compare: all trials of a model as a mean curve inside a min–max band, or every run on its own.

use super::super::action::Action;
use super::super::curve::Series;
use super::super::state::{State, View};
use super::super::store::RunDelta;
use super::super::update::update;
use super::super::views::chart::{BAND, band_columns};
use super::super::views::compare::groups;
use super::{A, B, delta, screen, two_runs};
use crate::runs::record::State as RunState;

const A2: &str = "20261126-081202-demo-cls-imagenet-t2";

/// A and A2 are trials of imagenet; A2's validation loss is twice A's.
fn three_runs() -> State {
    let mut s = two_runs();
    let Action::RunData(mut d) = delta(A2, "imagenet", 2, RunState::Finished, Some(0.93)) else { unreachable!() };
    for line in &mut d.lines {
        line.val_loss = line.val_loss.map(|v| v * 2.0);
    }
    update(&mut s, Action::RunData(Box::new(RunDelta { ..*d })));
    s
}

#[test]
fn select_trials_picks_every_trial_of_the_model_under_the_cursor() {
    let mut s = three_runs();
    update(&mut s, Action::SelectTrials);
    assert_eq!(s.selected.iter().map(String::as_str).collect::<Vec<_>>(), [A, A2]);
    assert_eq!(s.message.as_deref(), Some("selected the 2 trials of imagenet on demo-cls (100%) for Compare"));
    update(&mut s, Action::SelectTrials);
    assert!(s.selected.is_empty(), "again: unselects them");
    update(&mut s, Action::SelectTrials);
    update(&mut s, Action::Top);
    update(&mut s, Action::Down);
    assert_eq!(s.current_run().unwrap().id, B);
    update(&mut s, Action::Select);
    let grouped: Vec<Vec<&str>> = groups(&s).iter().map(|g| g.iter().map(|r| r.id.as_str()).collect()).collect();
    assert_eq!(grouped, [vec![A, A2], vec![B]]);
    update(&mut s, Action::Show(View::Compare));
    update(&mut s, Action::ToggleBands);
    assert_eq!(groups(&s).len(), 3, "every run on its own");
}

#[test]
fn band_columns_hold_the_lowest_highest_and_mean() {
    let (mut a, mut b) = (Series::default(), Series::default());
    for x in 0..4 {
        a.push(f64::from(x), 1.0 + f64::from(x));
        b.push(f64::from(x), 3.0 + f64::from(x));
    }
    b.push(4.0, 10.0);
    let cols = band_columns(&[&a, &b], 0.0, 5.0, 5);
    assert_eq!(cols[0], Some((1.0, 3.0, 2.0)));
    assert_eq!(cols[3], Some((4.0, 6.0, 5.0)));
    assert_eq!(cols[4], Some((10.0, 10.0, 10.0)), "only b reaches x = 4");
}

#[test]
fn compare_draws_trials_as_mean_and_band_at_80x24_and_wide() {
    let mut s = three_runs();
    update(&mut s, Action::SelectTrials);
    update(&mut s, Action::Top);
    update(&mut s, Action::Down);
    assert_eq!(s.current_run().unwrap().id, B);
    update(&mut s, Action::Select);
    update(&mut s, Action::Show(View::Compare));
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen(&s, w, h);
        assert!(text.contains("val loss, trials as mean and min-max band (m toggles; band ░)"), "{text}");
        assert!(text.contains("a imagenet on demo-cls 100%: 2 trials  val mean 0.3600 [0.2400 .. 0.4800]"), "{text}");
        assert!(text.contains(&format!("b {B}  val 0.2400")), "{text}");
        let plot: String = text.lines().skip(4).collect();
        assert!(plot.contains(BAND) && plot.contains('a') && plot.contains('b'), "{text}");
    }
    update(&mut s, Action::ToggleBands);
    let text = screen(&s, 80, 24);
    assert!(text.contains("val loss, every run") && text.contains(&format!("c {A2}")), "{text}");
    assert!(!text.lines().skip(5).collect::<String>().contains(BAND), "no band:\n{text}");
}
