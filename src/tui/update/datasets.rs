//! The Datasets view's key: `medxfer data check` for the dataset under the cursor.

use super::super::action::DataCheck;
use super::super::effect::Effect;
use super::super::state::State;

pub(super) fn check(s: &mut State) -> Vec<Effect> {
    let Some(dataset) = s.current_dataset() else {
        s.message = Some("no dataset under the cursor".into());
        return Vec::new();
    };
    let name = dataset.name.clone();
    if dataset.check == Some(DataCheck::Running) {
        s.message = Some(format!("{name} is already being checked"));
        return Vec::new();
    }
    let effect = Effect::DataCheck { dataset: name.clone() };
    if let Some(d) = s.datasets.iter_mut().find(|d| d.name == name) {
        d.check = Some(DataCheck::Running);
    }
    s.message = Some(format!("running: {}", effect.describe()));
    vec![effect]
}
