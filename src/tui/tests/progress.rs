//! In-epoch progress in a run's detail: the step in the epoch, images/s and the ETA from the step lines.

use super::super::action::Action;
use super::super::update::update;
use super::{delta, screen, step_line, two_runs};
use crate::runs::record::State as RunState;

const ID: &str = "20261126-081209-demo-cls-swav-t1";

#[test]
fn the_detail_of_a_running_run_shows_its_step_rate_and_eta_at_80x24() {
    let mut s = two_runs();
    let Action::RunData(mut d) = delta(ID, "swav", 1, RunState::Running, None) else { unreachable!() };
    d.lines = vec![step_line(3)];
    update(&mut s, Action::RunData(d));
    update(&mut s, Action::Bottom);
    update(&mut s, Action::Open);
    let text = screen(&s, 80, 24);
    // 10 epochs of 50 batches of 32 images, 3 batches done, 8 images/s: 497 * 32 / 8 = 1988 s.
    let head = text.lines().nth(1).unwrap_or_default();
    assert_eq!(head.trim_end(), format!("{ID}  [running]  8.0 img/s  ETA 33m08s"), "{text}");
    assert!(text.contains("(step 3/50)"), "{text}");

    let Action::RunData(mut d) = delta(ID, "swav", 1, RunState::Stopped, None) else { unreachable!() };
    d.lines = Vec::new();
    update(&mut s, Action::RunData(d));
    let stopped = screen(&s, 80, 24);
    let head = stopped.lines().nth(1).unwrap_or_default();
    assert_eq!(head.trim_end(), format!("{ID}  [stopped]"), "no pace once it stopped:\n{stopped}");
}
