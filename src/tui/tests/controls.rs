//! Run controls from the Runs view: stop, kill, resume, restart through `medxfer runs <verb> ID`.

use super::super::action::{Action, Control};
use super::super::effect::Effect;
use super::super::keymap::{self, Keymap, parse_key};
use super::super::state::View;
use super::super::update::update;
use super::{A, B, control_json, screen, two_runs};
use std::collections::BTreeMap;

fn control(id: &str, control: Control) -> Effect {
    Effect::Control { control, ids: vec![id.into()] }
}

#[test]
fn resume_goes_straight_to_the_agent_through_runs_resume() {
    let mut s = two_runs();
    let effects = update(&mut s, Action::RunControl(Control::Resume));
    assert_eq!(effects, [control(A, Control::Resume)]);
    assert_eq!(effects[0].cli_args(), ["runs", "resume", A, "--json"]);
    assert_eq!(s.message.as_deref(), Some(format!("running: medxfer runs resume {A} --json").as_str()));
    let why = format!("run {A} is finished; use `runs restart {A}`");
    update(
        &mut s,
        effects[0].finished(false, &control_json("resume", &[(A, Err(&why))]), &format!("medxfer: {why}\n")),
    );
    assert_eq!(
        s.message.as_deref(),
        Some(format!("medxfer runs resume {A} --json failed: {why}").as_str()),
        "the agent's refusal is shown as it is"
    );
    // no report on stdout (the agent could not be started): the first line of stderr says why
    update(&mut s, effects[0].finished(false, "", "medxfer: cannot start the agent\nmore\n"));
    assert_eq!(
        s.message.as_deref(),
        Some(format!("medxfer runs resume {A} --json failed: medxfer: cannot start the agent").as_str())
    );
}

#[test]
fn kill_and_restart_ask_first_and_act_only_on_yes() {
    let mut s = two_runs();
    update(&mut s, Action::Down);
    assert!(update(&mut s, Action::RunControl(Control::Kill)).is_empty(), "nothing before the answer");
    assert_eq!(s.confirm, Some((Control::Kill, vec![B.into()])));
    let text = screen(&s, 80, 24);
    assert!(text.lines().last().unwrap().contains(&format!("kill {}", &B[..30])), "{text}");
    let wide = screen(&s, 160, 48);
    assert!(wide.lines().last().unwrap().contains(&format!("kill {B}? y to confirm")), "{wide}");
    assert_eq!(update(&mut s, Action::Confirm(true)), [control(B, Control::Kill)]);
    assert!(s.confirm.is_none());
    let done = control(B, Control::Kill).finished(true, &control_json("kill", &[(B, Ok("killed"))]), "");
    update(&mut s, done);
    assert_eq!(s.message.as_deref(), Some(format!("{B}: killed").as_str()));
    update(&mut s, control(B, Control::Kill).finished(true, "not json", &format!("{B}: killed\n")));
    assert_eq!(
        s.message.as_deref(),
        Some(format!("medxfer runs kill {B} --json: finished, but its --json output did not parse").as_str()),
        "the outcome is never guessed from stderr's wording"
    );

    update(&mut s, Action::Up);
    assert!(update(&mut s, Action::RunControl(Control::Restart)).is_empty());
    assert_eq!(s.confirm, Some((Control::Restart, vec![A.into()])));
    assert!(update(&mut s, Action::Confirm(false)).is_empty(), "no: nothing runs");
    assert_eq!(s.message.as_deref(), Some(format!("restart {A}: cancelled").as_str()));
    assert!(update(&mut s, Action::Confirm(true)).is_empty(), "the question was answered already");
}

#[test]
fn controls_work_from_the_open_detail_and_need_a_run() {
    let mut s = two_runs();
    update(&mut s, Action::Down);
    update(&mut s, Action::Open);
    assert_eq!(update(&mut s, Action::RunControl(Control::Stop)), [control(B, Control::Stop)]);
    let mut empty = super::super::state::State::new(crate::tui::env::TuiEnv::embedded(), Keymap::default(), false);
    assert!(update(&mut empty, Action::RunControl(Control::Restart)).is_empty());
    assert_eq!(empty.message.as_deref(), Some("no run under the cursor to restart"));
    assert!(empty.confirm.is_none());
}

#[test]
fn control_keys_are_bound_in_runs_listed_in_help_and_overridable() {
    let key = |t: &str| parse_key(t).unwrap();
    let map = Keymap::default();
    assert_eq!(map.action_for(key("K"), View::Runs), Some(Action::RunControl(Control::Kill)));
    assert_eq!(map.action_for(key("r"), View::Runs), Some(Action::RunControl(Control::Resume)));
    assert_eq!(map.action_for(key("R"), View::Runs), Some(Action::RunControl(Control::Restart)));
    assert_eq!(map.action_for(key("K"), View::Zoo), None);
    let map = Keymap::with_overrides(&BTreeMap::from([("kill_run".into(), "ctrl-k".into())])).unwrap();
    assert_eq!(map.action_for(key("ctrl-k"), View::Runs), Some(Action::RunControl(Control::Kill)));
    assert_eq!(map.action_for(key("K"), View::Runs), None);
    assert_eq!(keymap::confirm_action(key("y")), Action::Confirm(true));
    assert_eq!(keymap::confirm_action(key("enter")), Action::Confirm(true));
    assert_eq!(keymap::confirm_action(key("n")), Action::Confirm(false));
    assert_eq!(keymap::confirm_action(key("ctrl-y")), Action::Confirm(false));

    let mut s = two_runs();
    update(&mut s, Action::ToggleHelp);
    let text = screen(&s, 80, 24);
    for about in ["K kill the run (asks)", "r resume stopped/failed", "R restart anew (asks)"] {
        assert!(text.contains(about), "{about}:\n{text}");
    }
}
