//! `i` in Zoo: a path prompt with Tab completion that runs `medxfer zoo import ID FILE`.

use super::super::action::Action;
use super::super::effect::Effect;
use super::super::path_complete::complete;
use super::super::update::update;
use super::{screen, typical_zoo, zoo_cursor_to, zoo_json};

#[test]
fn i_opens_a_path_prompt_that_completes_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("moco_v2_800ep_pretrain.pth.tar"), b"x").unwrap();
    std::fs::write(dir.path().join("moco_v1.pth"), b"x").unwrap();
    let mut s = typical_zoo();
    zoo_cursor_to(&mut s, "moco-v2");
    update(&mut s, Action::ZooImport);
    assert_eq!(s.import.as_ref().map(|p| p.id.as_str()), Some("moco-v2"));
    assert!(s.typing(), "keys type into the prompt");
    let typed = format!("{}/moc", dir.path().display());
    typed.chars().for_each(|c| {
        update(&mut s, Action::FilterInput(c));
    });
    let path = s.import.as_ref().unwrap().path.clone();
    update(&mut s, Action::PathCompleted(complete(&path, dir.path(), None)));
    let prompt = s.import.clone().unwrap();
    assert_eq!(prompt.path, format!("{}/moco_v", dir.path().display()));
    assert_eq!(prompt.candidates, ["moco_v1.pth", "moco_v2_800ep_pretrain.pth.tar"]);
    let text = screen(&s, 80, 24);
    assert!(text.contains("import a downloaded file for moco-v2"), "{text}");
    assert!(text.contains("moco_v1.pth  moco_v2_800ep_pretrain.pth.tar"), "the matches are listed:\n{text}");

    update(&mut s, Action::FilterInput('2'));
    let path = s.import.as_ref().unwrap().path.clone();
    update(&mut s, Action::PathCompleted(complete(&path, dir.path(), None)));
    let file = format!("{}/moco_v2_800ep_pretrain.pth.tar", dir.path().display());
    assert_eq!(s.import.as_ref().unwrap().path, file);
    let effects = update(&mut s, Action::FilterDone);
    assert_eq!(effects, [Effect::ZooImport { id: "moco-v2".into(), file: file.clone() }]);
    assert_eq!(effects[0].cli_args(), ["zoo", "import", "moco-v2", file.as_str(), "--json"]);
    assert!(s.import.is_none() && !s.typing());
    assert_eq!(s.current_model().unwrap().label(), "importing...");
    let why = "sha256 mismatch: the file is not the catalog's";
    let report = zoo_json("import", "moco-v2", Err(why), crate::zoo::ModelState::Failed { reason: why.into() });
    let failed = effects[0].finished(false, &report, &format!("medxfer: {why}\n"));
    update(&mut s, failed);
    assert!(s.message.as_deref().unwrap().ends_with(&format!("--json failed: {why}")), "{:?}", s.message);
    assert_eq!(s.current_model().unwrap().pending, None);
}

#[test]
fn the_prompt_refuses_an_empty_path_cancels_with_esc_and_needs_a_checkpoint() {
    let mut s = typical_zoo();
    zoo_cursor_to(&mut s, "moco-v2");
    update(&mut s, Action::ZooImport);
    assert!(update(&mut s, Action::FilterDone).is_empty());
    assert!(s.message.as_deref().unwrap().starts_with("type the path of the downloaded file"));
    update(&mut s, Action::PathCompleted(complete("nothing-like-this-", std::path::Path::new("/"), None)));
    assert!(screen(&s, 80, 24).contains("no file or folder starts with that"));
    update(&mut s, Action::Back);
    assert!(s.import.is_none());
    zoo_cursor_to(&mut s, "random");
    update(&mut s, Action::ZooImport);
    assert!(s.import.is_none());
    assert_eq!(s.message.as_deref(), Some("random has no checkpoint file to import"));
}
