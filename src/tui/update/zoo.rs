//! The Zoo view's keys: pull (download, verify, convert) or verify the model under the cursor.

use super::super::effect::Effect;
use super::super::keymap::Bind;
use super::super::state::State;
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
