//! The Zoo view's keys: pull (download, verify, convert), verify, or import a downloaded file for the model
//! under the cursor.

use super::super::action::Action;
use super::super::effect::Effect;
use super::super::keymap::Bind;
use super::super::state::{ImportPrompt, State};
use crate::zoo::ModelState;

pub(super) fn pull_or_verify(s: &mut State, pull: bool) -> Vec<Effect> {
    let Some(model) = s.current_model() else {
        s.message = Some("no model under the cursor".into());
        return Vec::new();
    };
    let id = model.entry.id.clone();
    if !model.entry.has_file() {
        s.message = Some(format!("{id} has no checkpoint: nothing to {}", if pull { "pull" } else { "verify" }));
        return Vec::new();
    }
    if let Some(verb) = model.pending {
        s.message = Some(format!("{id} is already {verb}"));
        return Vec::new();
    }
    let downloaded = matches!(
        model.state(),
        Some(ModelState::Downloaded | ModelState::Verified | ModelState::Converted | ModelState::Failed { .. })
    );
    if !pull && !downloaded {
        let key = s.keymap.key_of(Bind::ZooPull);
        s.message = Some(format!("{id} is not downloaded: press {key} to pull it first"));
        return Vec::new();
    }
    let effect = if pull { Effect::ZooPull { id: id.clone() } } else { Effect::ZooVerify { id: id.clone() } };
    if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == id) {
        m.pending = Some(if pull { "pulling" } else { "verifying" });
    }
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
}

/// `i`: opens the path prompt for a manually downloaded file of the model under the cursor.
pub(super) fn import_start(s: &mut State) {
    let Some(model) = s.current_model() else {
        s.message = Some("no model under the cursor".into());
        return;
    };
    let id = model.entry.id.clone();
    if !model.entry.has_file() {
        s.message = Some(format!("{id} has no checkpoint file to import"));
        return;
    }
    if let Some(verb) = model.pending {
        s.message = Some(format!("{id} is already {verb}"));
        return;
    }
    s.import = Some(ImportPrompt { id, ..ImportPrompt::default() });
}

/// Keys while the import prompt is open: type, Tab to complete, Enter to import, Esc to cancel.
pub(super) fn import_edit(s: &mut State, action: Action) -> Vec<Effect> {
    let Some(prompt) = s.import.as_mut() else { return Vec::new() };
    match action {
        Action::FilterInput(c) => {
            prompt.path.push(c);
            prompt.candidates.clear();
            prompt.matches = None;
        }
        Action::FilterBackspace => {
            prompt.path.pop();
            prompt.candidates.clear();
            prompt.matches = None;
        }
        Action::PathCompleted(done) => {
            prompt.path = done.text;
            prompt.candidates = done.candidates;
            prompt.matches = Some(done.matches);
        }
        Action::Back => s.import = None,
        Action::FilterDone if prompt.path.trim().is_empty() => {
            s.message = Some("type the path of the downloaded file (Tab completes), or Esc to cancel".into());
        }
        Action::FilterDone => {
            let prompt = s.import.take().unwrap_or_default();
            let effect = Effect::ZooImport { id: prompt.id.clone(), file: prompt.path.trim().to_string() };
            if let Some(m) = s.zoo.iter_mut().find(|m| m.entry.id == prompt.id) {
                m.pending = Some("importing");
            }
            s.message = Some(format!("running: {}", effect.describe()));
            return vec![effect];
        }
        _ => {}
    }
    Vec::new()
}
