//! The Launch view's sweep builder: choosing models, dataset, trials, label percentages and overrides,
//! the plan, and the `medxfer sweep` it enqueues.

use super::super::action::Action;
use super::super::effect::Effect;
use super::super::launch::{self, Field, Row};
use super::super::state::{State, View};
use super::super::update::update;
use super::{screen, typical_zoo};
use crate::sched::sweep::SweepRequest;

fn to_row(s: &mut State, row: Row) {
    update(s, Action::Show(View::Launch));
    update(s, Action::Top);
    while launch::row(s.cursor()) != row {
        let before = s.cursor();
        update(s, Action::Down);
        assert_ne!(before, s.cursor(), "{row:?} not in the form");
    }
}

fn to_model(s: &mut State, id: &str) {
    let i = s.zoo.iter().position(|m| m.entry.id == id).unwrap();
    to_row(s, Row::Model(i));
}

fn type_into(s: &mut State, field: Field, text: &str) {
    to_row(s, Row::Field(field));
    update(s, Action::Edit);
    while s.launch.text_mut(field).is_some_and(|t| !t.is_empty()) {
        update(s, Action::FilterBackspace);
    }
    for c in text.chars() {
        update(s, Action::FilterInput(c));
    }
    update(s, Action::FilterDone);
}

#[test]
fn the_form_builds_the_plan_and_enter_enqueues_it_through_medxfer_sweep() {
    let mut s = typical_zoo();
    assert!(update(&mut s, Action::Show(View::Launch)).is_empty());
    assert!(update(&mut s, Action::Enqueue).is_empty(), "no model chosen");
    assert_eq!(s.message.as_deref(), Some("choose at least one model with space"));

    to_model(&mut s, "barlowtwins");
    update(&mut s, Action::Select);
    to_model(&mut s, "random");
    update(&mut s, Action::Select);
    to_row(&mut s, Row::Field(Field::Trials));
    update(&mut s, Action::More);
    update(&mut s, Action::More);
    update(&mut s, Action::Less);
    assert_eq!(s.launch.trials, 2);
    type_into(&mut s, Field::Anno, "10, 100");
    type_into(&mut s, Field::Sets, "epochs=3 image_size=32");

    let plan = launch::plan(&s).unwrap();
    assert_eq!(plan.models, ["barlowtwins", "random"], "in the Zoo view's order");
    assert_eq!(plan.run_count(), 8);
    let names: Vec<String> = plan.run_names().collect();
    assert_eq!(names[..3], ["demo-cls-barlowtwins-t1-a10", "demo-cls-barlowtwins-t2-a10", "demo-cls-barlowtwins-t1"]);
    assert!(launch::not_converted(&s, &plan).is_empty(), "barlowtwins is converted, random needs nothing");

    let dry = update(&mut s, Action::DryRun);
    let [Effect::DryRun(sweep)] = dry.as_slice() else { panic!("{dry:?}") };
    assert!(dry[0].cli_args().join(" ").ends_with("--set image_size=32 --executor local --dry-run --json"), "{dry:?}");
    let reason = "--set image_size=32: the disk is on fire";
    update(&mut s, dry[0].finished(false, "", &format!("medxfer: {reason}")));
    assert_eq!(s.message.as_deref(), Some(format!("dry run refused: {reason}").as_str()));
    assert!(update(&mut s, Action::Enqueue).is_empty(), "the command refused this plan");
    let report = serde_json::json!({"count": 8, "new": 6, "existing": 2, "runs": []});
    update(&mut s, dry[0].finished(true, &report.to_string(), ""));
    assert_eq!(s.message.as_deref(), Some("dry run: 8 runs, 6 new, 2 already exist"));

    let effects = update(&mut s, Action::Enqueue);
    assert_eq!(effects, [Effect::EnqueueSweep(sweep.clone())], "the dry run plans the very sweep Enter enqueues");
    assert_eq!(
        effects,
        [Effect::EnqueueSweep(SweepRequest {
            dataset: "demo-cls".into(),
            models: vec!["barlowtwins".into(), "random".into()],
            trials: 2,
            anno_percents: vec![10, 100],
            overrides: vec![("epochs".into(), "3".into()), ("image_size".into(), "32".into())],
            executor: Some("local".into()),
            ..SweepRequest::default()
        })]
    );
    assert_eq!(
        effects[0].cli_args().join(" "),
        "sweep --dataset demo-cls --models barlowtwins,random --trials 2 --anno-percent 10,100 --set epochs=3 --set image_size=32 --executor local --json"
    );
    assert!(s.message.as_deref().unwrap().starts_with("launching 8 runs: medxfer sweep"), "{:?}", s.message);
    update(&mut s, effects[0].finished(true, r#"{"count": 8, "new": 6, "existing": 2, "runs": []}"#, ""));
    assert_eq!(
        s.message.as_deref(),
        Some(
            "sweep queued: 6 new runs of barlowtwins, random on demo-cls at 10,100% labels, 2 trials each \
             (epochs=3 image_size=32) (2 exist already)"
        )
    );
}

#[test]
fn bad_fields_are_named_before_anything_is_enqueued() {
    let mut s = typical_zoo();
    to_model(&mut s, "random");
    update(&mut s, Action::Select);
    type_into(&mut s, Field::Sets, "epochs=3 flavour=mint");
    assert!(update(&mut s, Action::Enqueue).is_empty());
    let message = s.message.clone().unwrap_or_default();
    assert!(message.starts_with("overrides: --set flavour=mint: unknown key \"flavour\"; the keys: "), "{message}");
    type_into(&mut s, Field::Sets, "lr");
    assert_eq!(launch::plan(&s).unwrap_err(), "overrides: --set \"lr\": expected KEY=VALUE");
    type_into(&mut s, Field::Sets, "");
    type_into(&mut s, Field::Anno, "0,50");
    assert_eq!(launch::plan(&s).unwrap_err(), "anno %: \"0\" is not a percentage between 1 and 100");
    type_into(&mut s, Field::Anno, "100");
    assert_eq!(launch::plan(&s).unwrap().anno_percents, Vec::<u32>::new(), "100 is the command's default");
}

#[test]
fn esc_undoes_typing_and_more_less_cycle_the_dataset() {
    let mut s = typical_zoo();
    type_into(&mut s, Field::Anno, "50");
    update(&mut s, Action::Edit);
    assert!(s.typing());
    update(&mut s, Action::FilterInput(','));
    assert!(screen(&s, 80, 24).lines().last().unwrap().contains("anno %: 50,_"));
    update(&mut s, Action::Back);
    assert_eq!(s.launch.anno, "50");
    assert!(!s.typing());

    to_row(&mut s, Row::Field(Field::Dataset));
    let first = s.launch.dataset.clone();
    update(&mut s, Action::More);
    assert_ne!(s.launch.dataset, first);
    update(&mut s, Action::Less);
    assert_eq!(s.launch.dataset, first);
    for _ in 0..s.datasets.len() {
        update(&mut s, Action::Less);
    }
    assert_eq!(s.launch.dataset, first, "wraps around");
    update(&mut s, Action::Edit);
    assert!(!s.typing(), "the dataset is chosen, not typed");
}

#[test]
fn choose_converted_toggles_every_converted_model_and_warns_of_unconverted_ones() {
    let mut s = typical_zoo();
    update(&mut s, Action::Show(View::Launch));
    update(&mut s, Action::ChooseConverted);
    assert_eq!(s.launch.models.iter().collect::<Vec<_>>(), ["barlowtwins"]);
    update(&mut s, Action::ChooseConverted);
    assert!(s.launch.models.is_empty());
    to_model(&mut s, "chexpert");
    update(&mut s, Action::Select);
    assert_eq!(launch::not_converted(&s, &launch::plan(&s).unwrap()), ["chexpert"], "verified but not converted");
    let text = screen(&s, 80, 24);
    assert!(text.contains("not converted: chexpert"), "{text}");
}

#[test]
fn launch_view_at_80x24_and_wide_shows_form_models_and_plan() {
    let mut s = typical_zoo();
    to_model(&mut s, "barlowtwins");
    update(&mut s, Action::Select);
    to_model(&mut s, "imagenet");
    update(&mut s, Action::Select);
    to_row(&mut s, Row::Field(Field::Trials));
    for _ in 0..11 {
        update(&mut s, Action::More);
    }
    let text = screen(&s, 80, 24);
    assert!(text.contains("dataset    demo-cls"), "{text}");
    assert!(text.contains("trials     12"), "{text}");
    assert!(text.contains("overrides  (none)"), "{text}");
    assert!(text.contains("models (2 chosen)"), "{text}");
    assert!(text.contains("root       (generated demo)") && text.contains("executor   local"), "{text}");
    assert!(text.contains("[x] imagenet") && text.contains("[x] barlowtwins") && text.contains("[ ] swav"), "{text}");
    assert!(text.contains("24 runs, blocked:"), "{text}");
    let plan: String = text.lines().filter_map(|l| l.split('│').nth(1)).collect();
    assert!(plan.contains("not converted: imagenet: pull with p in Zoo, or unselect"), "{text}");
    assert!(text.contains("demo-cls-imagenet-t1") && text.contains("... and 9 more"), "{text}");
    assert_eq!(text.lines().count(), 24);

    to_model(&mut s, "random");
    let text = screen(&s, 80, 24);
    assert!(text.contains("random"), "the model list scrolls to the cursor:\n{text}");
    assert!(!text.contains("[x] imagenet"), "scrolled past:\n{text}");

    let wide = screen(&s, 160, 48);
    assert!(wide.contains("[x] imagenet") && wide.contains("random"), "all 22 models fit:\n{wide}");
    assert!(wide.contains("demo-cls-barlowtwins-t12") && !wide.contains("... and"), "every run listed:\n{wide}");
}

#[test]
fn tab_completes_a_folder_field_and_lists_the_matches_beside_it() {
    use super::super::path_complete::Completion;
    let mut s = typical_zoo();
    to_row(&mut s, Row::Field(Field::Root));
    assert_eq!(s.path_being_typed(), None, "not typing yet");
    update(&mut s, Action::Edit);
    for c in "/da".chars() {
        update(&mut s, Action::FilterInput(c));
    }
    assert_eq!(s.path_being_typed(), Some("/da"));
    let done = Completion { text: "/data/".into(), candidates: vec!["cxr/".into(), "retina/".into()], matches: 2 };
    update(&mut s, Action::PathCompleted(done));
    assert_eq!(s.launch.root, "/data/");
    let status = screen(&s, 100, 24).lines().last().unwrap().to_string();
    assert!(status.contains("root: /data/_") && status.contains("cxr/  retina/"), "{status}");
    update(&mut s, Action::PathCompleted(Completion { text: "/data/x".into(), candidates: vec![], matches: 0 }));
    assert!(screen(&s, 100, 24).lines().last().unwrap().contains("(no match)"));
    to_row(&mut s, Row::Field(Field::Anno));
    update(&mut s, Action::Edit);
    assert_eq!(s.path_being_typed(), None, "anno % is not a path: Tab does nothing there");
}

#[test]
fn a_typed_folder_is_made_absolute_from_where_the_tui_started_and_remembered() {
    use super::super::state::Places;
    use std::path::PathBuf;
    let mut s = typical_zoo();
    s.places = Places { cwd: "/work/here".into(), user_home: Some("/home/u".into()) };
    to_row(&mut s, Row::Field(Field::Root));
    update(&mut s, Action::Edit);
    "data/x".chars().for_each(|c| {
        update(&mut s, Action::FilterInput(c));
    });
    let effects = update(&mut s, Action::FilterDone);
    let Some(Effect::RememberPaths { paths, .. }) = effects.first() else { panic!("{effects:?}") };
    assert_eq!(paths.root, Some(PathBuf::from("/work/here/data/x")));
    type_into(&mut s, Field::TrainList, "~/lists/train.txt");
    assert_eq!(s.launch.train_list, "/home/u/lists/train.txt");
    assert_eq!(s.dataset_paths["demo-cls"].train_list, Some(PathBuf::from("/home/u/lists/train.txt")));
}
