//! `e` in Runs: `medxfer eval` of runs that have a best checkpoint, one after the other, and the Runs help
//! that shows every key whole at 80x24.

use super::super::action::Action;
use super::super::effect::Effect;
use super::super::keymap::{Keymap, parse_key};
use super::super::state::{State, View};
use super::super::store::RunDelta;
use super::super::update::{MESSAGE_TICKS, update};
use super::{A, B, delta, result, screen, spec, two_runs};
use crate::runs::record::{State as RunState, Status};

const QUEUED: &str = "20261126-081202-demo-cls-swav-t1";
const LAST: &str = "20261126-081203-demo-cls-moco-v2-t1";

fn eval(ids: &[&str]) -> Effect {
    Effect::Eval { ids: ids.iter().map(|id| id.to_string()).collect() }
}

/// A and B (both with a best epoch), a queued run without one, and a finished run at the bottom.
fn four_runs() -> State {
    let mut s = two_runs();
    let queued = Status::new(RunState::Queued);
    let spec = spec(QUEUED, "swav", 1);
    update(
        &mut s,
        Action::RunData(Box::new(RunDelta {
            id: QUEUED.into(),
            spec: Some(spec),
            status: Some(queued),
            ..RunDelta::default()
        })),
    );
    update(&mut s, delta(LAST, "moco-v2", 1, RunState::Finished, Some(0.8)));
    s
}

/// What `medxfer eval --run ID --json` prints on stdout.
fn eval_json(id: &str, mean: f64) -> String {
    serde_json::to_string(&result(&spec(id, "imagenet", 1), mean)).unwrap()
}

#[test]
fn e_evaluates_the_run_under_the_cursor_and_shows_the_test_result() {
    let mut s = two_runs();
    let effects = update(&mut s, Action::EvalRuns);
    assert_eq!(effects, [eval(&[A])]);
    assert_eq!(effects[0].cli_args(), ["eval", "--run", A, "--json"]);
    assert_eq!(s.message.as_deref(), Some(format!("running: medxfer eval --run {A} --json").as_str()));
    let done = effects[0].finished(true, &eval_json(A, 0.81234), "imagenet on demo-cls test: auc 0.81234; wrote x\n");
    assert!(update(&mut s, done).is_empty(), "nothing left to evaluate");
    assert_eq!(
        s.message.as_deref(),
        Some(format!("eval {A}: test auc 0.8123 on demo-cls (best epoch 2), saved in the run folder").as_str())
    );
    assert!(s.last_failure.is_none());
}

#[test]
fn a_failed_eval_says_why_and_opens_whole_in_the_pop_up() {
    let mut s = two_runs();
    let effects = update(&mut s, Action::EvalRuns);
    let why = format!("medxfer: dataset demo-cls: cannot read {A}/splits/test.txt: No such file or directory");
    update(&mut s, effects[0].finished(false, "", &format!("{why}\n")));
    let expected = format!("medxfer eval --run {A} --json failed: {why}");
    assert_eq!(s.message.as_deref(), Some(expected.as_str()));
    assert_eq!(s.last_failure.as_deref(), Some(expected.as_str()), "M shows it after the status line moved on");
    let ok_but_unreadable = effects[0].finished(true, "not json", "");
    assert!(matches!(ok_but_unreadable, Action::EvalDone { ok: false, .. }), "{ok_but_unreadable:?}");
    for _ in 0..MESSAGE_TICKS {
        update(&mut s, Action::Tick);
    }
    assert!(s.message.is_none(), "the status line moved on");
    update(&mut s, Action::ToggleMessage);
    let popup = screen(&s, 160, 30);
    assert!(popup.contains(" message (") && popup.contains("test.txt: No such file or directory"), "{popup}");
}

#[test]
fn a_run_without_a_best_checkpoint_is_refused_in_one_sentence() {
    let mut s = four_runs();
    update(&mut s, Action::Top);
    update(&mut s, Action::Down);
    update(&mut s, Action::Down);
    assert_eq!(s.current_run().unwrap().id, QUEUED);
    assert!(update(&mut s, Action::EvalRuns).is_empty());
    assert_eq!(
        s.message.as_deref(),
        Some(format!("{QUEUED} has no best checkpoint to evaluate yet (it comes with the run's first epoch)").as_str())
    );
    update(&mut s, Action::Select);
    assert!(update(&mut s, Action::EvalRuns).is_empty(), "the selection alone counts");
    assert_eq!(
        s.message.as_deref(),
        Some("none of the 1 selected runs has a best checkpoint to evaluate (it comes with a run's first epoch)")
    );
    let mut empty = State::new(crate::tui::env::TuiEnv::embedded(), Keymap::default(), false);
    assert!(update(&mut empty, Action::EvalRuns).is_empty());
    assert_eq!(empty.message.as_deref(), Some("no run under the cursor to evaluate"));
}

#[test]
fn e_evaluates_the_selection_one_run_after_the_other_not_the_cursor() {
    let mut s = four_runs();
    for row in [0, 1, 2] {
        update(&mut s, Action::Top);
        (0..row).for_each(|_| {
            update(&mut s, Action::Down);
        });
        update(&mut s, Action::Select);
    }
    update(&mut s, Action::Bottom);
    assert_eq!(s.current_run().unwrap().id, LAST, "the cursor is outside the selection");
    let effects = update(&mut s, Action::EvalRuns);
    assert_eq!(effects, [eval(&[A, B])], "the queued run has no checkpoint; the cursor's run is not selected");
    assert_eq!(
        s.message.as_deref(),
        Some(
            format!(
                "running: medxfer eval --run {A} --json (then 1 more); 1 selected without a best checkpoint left out"
            )
            .as_str()
        )
    );
    assert!(update(&mut s, Action::EvalRuns).is_empty(), "one eval at a time");
    assert_eq!(
        s.message.as_deref(),
        Some(format!("medxfer eval of {A} is running: press e again once it has ended").as_str())
    );
    let next = update(&mut s, effects[0].finished(true, &eval_json(A, 0.9), ""));
    assert_eq!(next, [eval(&[B])], "the next run starts when the first ends");
    let message = s.message.clone().unwrap_or_default();
    assert!(
        message.starts_with(&format!("eval {A}: test auc 0.9000"))
            && message.ends_with(&format!("; next: medxfer eval --run {B} --json")),
        "{message}"
    );
    let last = update(&mut s, next[0].finished(false, "", "medxfer: no space left on device\n"));
    assert!(last.is_empty());
    assert!(s.evaluating.is_none(), "the chain has ended");
    assert_eq!(
        s.message.as_deref(),
        Some(format!("medxfer eval --run {B} --json failed: medxfer: no space left on device").as_str())
    );

    update(&mut s, Action::Open);
    assert_eq!(update(&mut s, Action::EvalRuns), [eval(&[LAST])], "in a run's detail, e evaluates that run");
}

#[test]
fn e_is_bound_in_runs_only_and_overridable() {
    let key = |t: &str| parse_key(t).unwrap();
    let map = Keymap::default();
    assert_eq!(map.action_for(key("e"), View::Runs), Some(Action::EvalRuns));
    assert_eq!(map.action_for(key("e"), View::Leaderboard), Some(Action::Export));
    assert_eq!(map.action_for(key("e"), View::Launch), Some(Action::Edit));
    assert_eq!(map.action_for(key("e"), View::Zoo), None);
    let map = Keymap::with_overrides(&[("eval_run".to_string(), "E".to_string())].into()).unwrap();
    assert_eq!(map.action_for(key("E"), View::Runs), Some(Action::EvalRuns));
    assert_eq!(map.action_for(key("e"), View::Runs), None);
}

#[test]
fn the_runs_help_shows_every_binding_whole_inside_its_box_at_80x24() {
    let mut s = two_runs();
    update(&mut s, Action::ToggleHelp);
    let text = screen(&s, 80, 24);
    let help = s.keymap.help(View::Runs);
    assert!(help.iter().any(|(k, about)| k == "e" && *about == "evaluate the best checkpoint"), "{help:?}");
    let boxed: Vec<&str> = text.lines().filter(|l| l.matches('│').count() == 2).collect();
    for (keys, about) in &help {
        let entry = format!("{keys} {about}");
        let line = boxed.iter().find(|l| l.contains(&entry));
        assert!(line.is_some(), "{entry:?} whole inside the box:\n{text}");
    }
    assert!(text.contains(" keys: Runs "), "{text}");
}
