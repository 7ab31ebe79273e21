//! What a first-time user must be able to trust: controls act on what is selected, states and numbers are
//! named for what they are, messages go away, a restarted run starts from nothing.

use super::super::action::{Action, Control};
use super::super::effect::Effect;
use super::super::state::View;
use super::super::store::{RunDelta, RunStore};
use super::super::update::{MESSAGE_TICKS, update};
use super::{A, B, control_json, delta, epoch_line, screen, two_runs};
use crate::runs::record::{self, State as RunState, Status};
use std::collections::BTreeMap;

const C: &str = "20261126-081202-demo-cls-swav-t1";
const D: &str = "20261126-081203-demo-cls-moco-v2-t1";

#[test]
fn controls_act_on_the_selection_not_the_row_under_the_cursor() {
    let mut s = two_runs();
    update(&mut s, delta(C, "swav", 1, RunState::Running, None));
    update(&mut s, delta(D, "moco-v2", 1, RunState::Queued, None));
    for row in [1, 2, 3] {
        update(&mut s, Action::Top);
        (0..row).for_each(|_| {
            update(&mut s, Action::Down);
        });
        update(&mut s, Action::Select);
    }
    update(&mut s, Action::Top);
    assert_eq!(s.current_run().unwrap().id, A, "the cursor is on the finished run, outside the selection");
    let effects = update(&mut s, Action::RunControl(Control::Stop));
    let ids = vec![B.to_string(), C.to_string(), D.to_string()];
    assert_eq!(effects, [Effect::Control { control: Control::Stop, ids: ids.clone() }]);
    assert_eq!(effects[0].cli_args()[..2], ["runs", "stop"]);
    assert_eq!(effects[0].cli_args()[2..], [&ids[..], &["--json".to_string()]].concat());

    update(&mut s, Action::RunControl(Control::Kill));
    assert_eq!(s.confirm, Some((Control::Kill, ids.clone())));
    let question = screen(&s, 80, 24);
    assert!(question.lines().last().unwrap().starts_with("kill 3 selected runs? y to confirm"), "{question}");
    update(&mut s, Action::Confirm(false));

    let resumable = update(&mut s, Action::RunControl(Control::Resume));
    assert!(resumable.is_empty(), "nothing selected is stopped or failed");
    assert_eq!(s.message.as_deref(), Some("none of the 3 selected runs can be told to resume"));

    let (gone, stopped) = (format!("run {C} is gone"), format!("run {D} is stopped already"));
    let report = control_json("stop", &[(B, Ok("stopping")), (C, Err(&gone)), (D, Err(&stopped))]);
    update(&mut s, effects[0].finished(false, &report, ""));
    assert_eq!(s.message.as_deref(), Some(format!("stop 3 runs: 2 refused: {gone}; {stopped}").as_str()));
    let all = control_json("stop", &[(B, Ok("stopping")), (C, Ok("stopping")), (D, Ok("stopping"))]);
    update(&mut s, effects[0].finished(true, &all, ""));
    assert_eq!(s.message.as_deref(), Some("stop 3 runs: done"));
}

#[test]
fn the_selection_shows_in_every_view_and_esc_clears_it_after_the_filter() {
    let mut s = two_runs();
    update(&mut s, Action::Select);
    update(&mut s, Action::FilterStart);
    update(&mut s, Action::FilterInput('i'));
    update(&mut s, Action::FilterDone);
    for view in [View::Compare, View::Zoo, View::Leaderboard] {
        update(&mut s, Action::Show(view));
        let top = screen(&s, 80, 24).lines().next().unwrap().to_string();
        assert!(top.ends_with("1 selected  filter \"i\""), "{view:?}: {top}");
    }
    update(&mut s, Action::Show(View::Runs));
    update(&mut s, Action::Back);
    assert!(s.filter.is_empty() && s.selected.len() == 1, "the first Esc clears the filter");
    update(&mut s, Action::Back);
    assert!(s.selected.is_empty(), "the second clears the selection");
    assert_eq!(s.message.as_deref(), Some("cleared the selection of 1 runs"));
    assert!(!screen(&s, 80, 24).lines().next().unwrap().contains("selected"));
}

#[test]
fn a_killed_run_reads_killed() {
    let mut s = two_runs();
    let mut status = Status::new(RunState::Stopped);
    status.reason = Some("killed by user".into());
    update(&mut s, Action::RunData(Box::new(RunDelta { id: B.into(), status: Some(status), ..RunDelta::default() })));
    assert_eq!(s.runs[B].state_name(), "killed");
    let row = screen(&s, 80, 24).lines().find(|l| l.contains("random")).unwrap().to_string();
    assert!(row.contains("killed") && !row.contains("stopped"), "{row}");
}

#[test]
fn the_detail_names_the_mean_auc_while_training_and_the_test_auc_after() {
    let mut s = two_runs();
    let mut line = epoch_line(5, 1e-4);
    line.val =
        BTreeMap::from([("auc.Atelectasis".into(), 0.61), ("auc.Cardiomegaly".into(), 0.99), ("auc_mean".into(), 0.8)]);
    update(&mut s, Action::RunData(Box::new(RunDelta { id: B.into(), lines: vec![line], ..RunDelta::default() })));
    assert_eq!(s.runs[B].metric(), Some(0.8), "the mean, not one class");
    update(&mut s, Action::Down);
    update(&mut s, Action::Open);
    let detail = screen(&s, 80, 24);
    assert!(detail.contains("val auc 0.8000") && !detail.contains("Cardiomegaly"), "{detail}");

    update(&mut s, Action::Back);
    update(&mut s, Action::Top);
    update(&mut s, Action::Open);
    let finished = screen(&s, 80, 24);
    assert!(finished.contains("test auc 0.9100"), "{finished}");
}

#[test]
fn status_messages_expire_and_a_new_one_starts_its_own_time() {
    let mut s = two_runs();
    update(&mut s, Action::CommandFinished { ok: true, message: "first".into() });
    for _ in 1..MESSAGE_TICKS {
        update(&mut s, Action::Tick);
    }
    assert_eq!(s.message.as_deref(), Some("first"));
    update(&mut s, Action::CommandFinished { ok: true, message: "second".into() });
    update(&mut s, Action::Tick);
    assert_eq!(s.message.as_deref(), Some("second"), "the new message is young");
    s.dirty = false;
    for _ in 1..MESSAGE_TICKS {
        update(&mut s, Action::Tick);
    }
    assert!(s.message.is_none());
    assert!(s.dirty, "the expiry redraws");
    s.dirty = false;
    update(&mut s, Action::Tick);
    assert!(!s.dirty, "a tick that changes nothing draws nothing");
}

#[test]
fn a_second_demo_sweep_that_queues_nothing_says_so() {
    let mut s = two_runs();
    let effects = update(&mut s, Action::DemoSweep);
    let nothing = effects[0].finished(true, r#"{"count": 1, "new": 0, "existing": 1, "runs": []}"#, "");
    assert_eq!(
        nothing,
        Action::CommandFinished {
            ok: false,
            message: "nothing queued: the 1 runs of this sweep exist already (R in Runs trains one again)".into()
        }
    );
    let queued = effects[0].finished(true, r#"{"count": 1, "new": 1, "existing": 0, "runs": []}"#, "");
    assert!(
        matches!(&queued, Action::CommandFinished { ok: true, message } if message.starts_with("sweep queued: 1 new"))
    );
}

#[test]
fn the_runs_table_tells_label_fractions_apart_and_names_the_run_under_the_cursor() {
    let mut s = two_runs();
    let Action::RunData(mut half) =
        delta("20261126-081200-demo-cls-imagenet-t1-a50", "imagenet", 1, RunState::Finished, Some(0.8))
    else {
        unreachable!()
    };
    half.spec.as_mut().unwrap().data.anno_percent = 50;
    update(&mut s, Action::RunData(half));
    let text = screen(&s, 80, 24);
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("imagenet")).collect();
    assert!(rows.iter().any(|r| r.contains(" 50 ")) && rows.iter().any(|r| r.contains(" 100 ")), "{text}");
    assert!(text.lines().nth(1).unwrap().contains(&format!("· {A}")), "{text}");
}

#[test]
fn a_restarted_run_forgets_its_old_curves_and_result() {
    let home = tempfile::tempdir().unwrap();
    let run = home.path().join(A);
    std::fs::create_dir(&run).unwrap();
    let line = |epoch: u32| serde_json::to_string(&epoch_line(epoch, 1e-4)).unwrap() + "\n";
    std::fs::write(run.join(record::METRICS_FILE), (1..=4).map(line).collect::<String>()).unwrap();
    let mut s = two_runs();
    let spec = super::spec(A, "imagenet", 1);
    std::fs::write(run.join(record::RESULT_FILE), serde_json::to_string(&super::result(&spec, 0.91)).unwrap()).unwrap();
    let mut store = RunStore::new(home.path().to_path_buf());
    store.refresh(|d| {
        update(&mut s, Action::RunData(Box::new(d)));
    });
    assert!(s.runs[A].result.is_some() && s.runs[A].val.len() == 8, "the delta's 4 lines and the file's 4");

    // `runs restart`: metrics.jsonl and result.json are removed; the new trainer writes a fresh, longer file.
    std::fs::remove_file(run.join(record::RESULT_FILE)).unwrap();
    std::fs::remove_file(run.join(record::METRICS_FILE)).unwrap();
    let fresh = (1..=2).map(|e| line(e).replace("\"epoch\"", "\"epoch\"  ")).collect::<String>().repeat(3);
    std::fs::write(run.join(record::METRICS_FILE), fresh).unwrap();
    store.refresh(|d| {
        update(&mut s, Action::RunData(Box::new(d)));
    });
    let restarted = &s.runs[A];
    assert!(restarted.result.is_none(), "the old result is gone");
    assert_eq!(restarted.val.len(), 6, "only the new file's lines");
}

#[test]
fn the_zoo_shows_sixteen_models_at_80x24_and_cuts_nothing_at_120() {
    let mut s = super::typical_zoo();
    update(&mut s, Action::Show(View::Zoo));
    let text = screen(&s, 80, 24);
    let models = s.zoo.iter().filter(|m| text.lines().any(|l| l.starts_with(&format!(" {} ", m.entry.id)))).count();
    assert!(models >= 16, "{models} models at 80x24:\n{text}");

    let wide = screen(&s, 120, 40);
    assert!(wide.contains("self-supervised-imagenet:"), "{wide}");
    for id in ["simclr-v1", "inat2021"] {
        let row = wide.lines().find(|l| l.starts_with(&format!(" {id} "))).unwrap();
        assert!(row.contains("(manual)"), "{row}");
    }
    while s.current_model().unwrap().entry.id != "simclr-v1" {
        update(&mut s, Action::Down);
    }
    let wide = screen(&s, 120, 40);
    let steps = s.current_model().unwrap().entry.steps.clone();
    assert!(!steps.is_empty());
    let details: String =
        wide.lines().map(|l| l.chars().skip(72).collect::<String>().trim().to_string() + " ").collect();
    for (i, step) in steps.iter().enumerate() {
        let start = format!("{}. {}", i + 1, step.split_whitespace().next().unwrap());
        assert!(details.contains(&start), "step {start:?} shown:\n{wide}");
    }
    assert!(details.contains("medxfer zoo import simclr-v1 FILE"), "{wide}");
    for word in ["Self-Supervised", "Representations"] {
        let whole = wide.lines().any(|l| l.contains(word));
        let paper = &s.current_model().unwrap().entry.paper;
        assert!(!paper.contains(word) || whole, "{word} kept whole:\n{wide}");
    }
}

fn with_log(s: &mut super::super::state::State, id: &str, lines: usize, reason: Option<&str>) {
    let mut status = Status::new(RunState::Failed);
    status.reason = reason.map(str::to_string);
    let log_tail = Some((1..=lines).map(|i| format!("line {i:03} of the log")).collect());
    update(
        s,
        Action::RunData(Box::new(RunDelta { id: id.into(), status: Some(status), log_tail, ..RunDelta::default() })),
    );
}

#[test]
fn the_log_scrolls_fills_the_screen_and_shows_the_whole_reason() {
    let mut s = two_runs();
    let reason =
        format!("trainer exited without a result 3 times; see {}", "/very/long/home/runs/".repeat(4) + "train.log");
    with_log(&mut s, A, 40, Some(&reason));
    update(&mut s, Action::Open);
    let detail = screen(&s, 80, 24);
    assert!(detail.contains("line 040 of the log") && detail.contains("line 038 of the log"), "{detail}");
    let joined: String = detail.lines().map(str::trim_end).collect();
    assert!(joined.contains(&format!("reason: {reason}")), "the whole reason, wrapped:\n{detail}");
    for _ in 0..5 {
        update(&mut s, Action::Up);
    }
    let up = screen(&s, 80, 24);
    assert!(up.contains("line 035 of the log") && !up.contains("line 040 of the log"), "{up}");
    assert!(up.contains("5 lines up"), "{up}");
    update(&mut s, Action::Bottom);
    assert_eq!(s.log_scroll, 0);
    update(&mut s, Action::Top);
    assert_eq!(s.log_scroll, 39, "the first line");

    update(&mut s, Action::ToggleFullLog);
    update(&mut s, Action::Bottom);
    let full = screen(&s, 80, 24);
    let shown = (1..=40).filter(|i| full.contains(&format!("line {i:03} of"))).count();
    assert!(shown >= 15, "{shown} log lines over the whole view:\n{full}");
    assert!(!full.contains("⠉⠒ train"), "no curves in the full log:\n{full}");
    update(&mut s, Action::Back);
    assert!(s.detail.is_none() && !s.log_full);
}

#[test]
fn the_whole_failure_opens_in_a_pop_up() {
    let mut s = two_runs();
    let long = format!("medxfer zoo pull swav failed: {}", "a very long reason that does not fit ".repeat(5));
    update(&mut s, Action::CommandFinished { ok: false, message: long.clone() });
    for _ in 0..MESSAGE_TICKS {
        update(&mut s, Action::Tick);
    }
    assert!(s.message.is_none(), "expired from the status line");
    update(&mut s, Action::ToggleMessage);
    let text = screen(&s, 80, 24);
    let joined: String = text.lines().map(|l| l.trim_matches(|c| c == '│' || c == ' ')).collect::<Vec<_>>().join(" ");
    assert!(joined.contains("a very long reason that does not fit a very long"), "{text}");
    assert!(text.contains("message (esc or M closes)"), "{text}");
    update(&mut s, Action::Back);
    assert!(!s.popup);
}

#[test]
fn progress_and_eta_show_before_the_first_epoch_ends() {
    let mut s = two_runs();
    let id = "20261126-081209-demo-cls-swav-t1";
    let Action::RunData(mut d) = delta(id, "swav", 1, RunState::Running, None) else { unreachable!() };
    d.lines = vec![super::step_line(3)];
    update(&mut s, Action::RunData(d));
    let run = &s.runs[id];
    assert_eq!(run.epoch_progress(), Some((3, 50)));
    // 10 epochs of 50 batches of 32 images (the study's batch size), 3 batches done, 8 images/s.
    let batch = run.spec.as_ref().unwrap().hyper.batch_size as f64;
    assert_eq!(run.eta_s(), Some((500.0 - 3.0) * batch / 8.0));
    update(&mut s, Action::Bottom);
    update(&mut s, Action::Open);
    assert!(screen(&s, 80, 24).contains("(step 3/50)"), "{}", screen(&s, 80, 24));
}

#[test]
fn launch_refuses_runs_that_are_sure_to_fail_until_the_preflight_passes() {
    use super::super::launch::{Field, Outcome};
    let mut s = super::typical_zoo();
    update(&mut s, Action::Show(View::Launch));
    for id in ["imagenet", "barlowtwins"] {
        s.launch.models.insert(id.into());
    }
    assert!(update(&mut s, Action::Enqueue).is_empty(), "imagenet is not converted");
    assert_eq!(
        s.message.as_deref(),
        Some("nothing enqueued: not converted: imagenet: pull with p in Zoo, or unselect")
    );
    assert!(s.launch.preflight.is_none(), "a plan the form already refuses is not sent to the command");
    s.launch.models.remove("imagenet");

    // A dataset with no image folder: refused by the form, with the row to fill in.
    while s.launch.dataset != "chestxray14" {
        s.cursor[View::Launch.index()] = 0;
        update(&mut s, Action::More);
    }
    assert!(update(&mut s, Action::Enqueue).is_empty());
    let msg = s.message.clone().unwrap();
    assert!(msg.contains("root: type the folder chestxray14's images are under"), "{msg}");
    s.cursor[View::Launch.index()] = 1;
    update(&mut s, Action::Edit);
    for c in "/data/cxr".chars() {
        assert!(update(&mut s, Action::FilterInput(c)).is_empty(), "no preflight while typing");
    }
    let effects = update(&mut s, Action::FilterDone);
    let [Effect::RememberPaths { dataset, paths }, Effect::Preflight(request)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!((dataset.as_str(), paths.root.as_deref()), ("chestxray14", Some(std::path::Path::new("/data/cxr"))));
    assert_eq!(request.root.as_deref(), Some(std::path::Path::new("/data/cxr")));
    assert_eq!(s.launch.outcome_for(request), Some(&Outcome::Checking));
    assert!(update(&mut s, Action::Enqueue).is_empty(), "not before the preflight answers");
    assert!(s.message.as_deref().unwrap().starts_with("still checking the plan"), "{:?}", s.message);

    // The command refuses: the sentence shows in the plan and Enter keeps refusing.
    let why = "dataset chestxray14: its val list /data/cxr/val.txt does not exist; pass --val-list FILE";
    let preflight = Effect::Preflight(request.clone());
    update(&mut s, preflight.finished(false, "", &format!("medxfer: {why}")));
    assert!(update(&mut s, Action::Enqueue).is_empty());
    assert_eq!(s.message.as_deref(), Some(format!("nothing enqueued: {why}").as_str()));
    let plan: String = screen(&s, 120, 40).lines().filter_map(|l| l.split('│').nth(1)).collect();
    assert!(plan.contains("its val list /data/cxr/val.txt does not exist"), "{plan}");

    // Another dataset and back: the folder typed for chestxray14 comes back with it.
    s.cursor[View::Launch.index()] = 0;
    update(&mut s, Action::More);
    assert_eq!(s.launch.text(Field::Root), "");
    update(&mut s, Action::Less);
    assert_eq!(s.launch.text(Field::Root), "/data/cxr");

    // Fixed (here: the list given): a new preflight; its plan makes Enter enqueue that very request.
    s.cursor[View::Launch.index()] = 3;
    update(&mut s, Action::Edit);
    "/lists/val.txt".chars().for_each(|c| {
        update(&mut s, Action::FilterInput(c));
    });
    let effects = update(&mut s, Action::FilterDone);
    let [Effect::RememberPaths { .. }, Effect::Preflight(request)] = effects.as_slice() else { panic!("{effects:?}") };
    let summary = serde_json::json!({"count": 1, "new": 1, "existing": 0, "runs": [],
        "estimate": {"max_run_s": 7500.0, "max_total_s": 7500.0, "s_per_image_epoch": 0.5, "measured_in": "r1"}});
    update(&mut s, Effect::Preflight(request.clone()).finished(true, &summary.to_string(), ""));
    let text = screen(&s, 120, 40);
    assert!(text.contains("1 runs, 1 new: enter to enqueue"), "{text}");
    assert!(text.contains("time: up to 2h05m per run"), "{text}");
    let effects = update(&mut s, Action::Enqueue);
    assert_eq!(effects, [Effect::EnqueueSweep(request.clone())]);
}
