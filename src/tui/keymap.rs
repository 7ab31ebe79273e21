//! Keys are data: default bindings per action name, patched by `[tui.keymap]` in config.toml
//! (action name = key, e.g. `quit = "ctrl-q"`).

use super::action::{Action, Control};
use super::state::View;
use anyhow::{Result, bail};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;

/// Where an action's keys work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scope {
    Everywhere,
    Only(&'static [View]),
}

/// A binding as code names it (`Keymap::key_of`); config.toml names it by `Binding::name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    Quit,
    Help,
    NextView,
    PrevView,
    ViewZoo,
    ViewDatasets,
    ViewLaunch,
    ViewRuns,
    ViewCompare,
    ViewLeaderboard,
    ViewGpus,
    Up,
    Down,
    Top,
    Bottom,
    Open,
    ZooDetails,
    Back,
    Select,
    SelectTrials,
    CompareBands,
    Filter,
    Sort,
    DemoSweep,
    StopRun,
    KillRun,
    ResumeRun,
    FullLog,
    WholeMessage,
    RestartRun,
    EvalRun,
    More,
    Less,
    Edit,
    ChooseConverted,
    DryRun,
    Enqueue,
    HeatMap,
    Published,
    Export,
    ZooPull,
    ZooVerify,
    ZooImport,
    DataCheck,
}

/// A bindable action: its id, its config name, what it does, where it works, its default keys.
pub struct Binding {
    pub id: Bind,
    pub name: &'static str,
    pub about: &'static str,
    pub scope: Scope,
    pub action: fn() -> Action,
    pub defaults: &'static [&'static str],
}

const RUNS: Scope = Scope::Only(&[View::Runs]);
const LAUNCH: Scope = Scope::Only(&[View::Launch]);
const BOARD: Scope = Scope::Only(&[View::Leaderboard]);

pub const BINDINGS: &[Binding] = &[
    Binding {
        id: Bind::Quit,
        name: "quit",
        about: "quit (runs keep going)",
        scope: Scope::Everywhere,
        action: || Action::Quit,
        defaults: &["q"],
    },
    Binding {
        id: Bind::Help,
        name: "help",
        about: "show or hide this help",
        scope: Scope::Everywhere,
        action: || Action::ToggleHelp,
        defaults: &["?"],
    },
    Binding {
        id: Bind::NextView,
        name: "next_view",
        about: "next view",
        scope: Scope::Everywhere,
        action: || Action::NextView,
        defaults: &["tab", "l", "right"],
    },
    Binding {
        id: Bind::PrevView,
        name: "prev_view",
        about: "previous view",
        scope: Scope::Everywhere,
        action: || Action::PrevView,
        defaults: &["backtab", "h", "left"],
    },
    Binding {
        id: Bind::ViewZoo,
        name: "view_zoo",
        about: "Zoo view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Zoo),
        defaults: &["1"],
    },
    Binding {
        id: Bind::ViewDatasets,
        name: "view_datasets",
        about: "Datasets view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Datasets),
        defaults: &["2"],
    },
    Binding {
        id: Bind::ViewLaunch,
        name: "view_launch",
        about: "Launch view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Launch),
        defaults: &["3"],
    },
    Binding {
        id: Bind::ViewRuns,
        name: "view_runs",
        about: "Runs view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Runs),
        defaults: &["4"],
    },
    Binding {
        id: Bind::ViewCompare,
        name: "view_compare",
        about: "Compare view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Compare),
        defaults: &["5"],
    },
    Binding {
        id: Bind::ViewLeaderboard,
        name: "view_leaderboard",
        about: "Leaderboard view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Leaderboard),
        defaults: &["6"],
    },
    Binding {
        id: Bind::ViewGpus,
        name: "view_gpus",
        about: "GPUs view",
        scope: Scope::Everywhere,
        action: || Action::Show(View::Gpus),
        defaults: &["7"],
    },
    Binding {
        id: Bind::Up,
        name: "up",
        about: "move up",
        scope: Scope::Everywhere,
        action: || Action::Up,
        defaults: &["up", "k"],
    },
    Binding {
        id: Bind::Down,
        name: "down",
        about: "move down",
        scope: Scope::Everywhere,
        action: || Action::Down,
        defaults: &["down", "j"],
    },
    Binding {
        id: Bind::Top,
        name: "top",
        about: "first row",
        scope: Scope::Everywhere,
        action: || Action::Top,
        defaults: &["g", "home"],
    },
    Binding {
        id: Bind::Bottom,
        name: "bottom",
        about: "last row",
        scope: Scope::Everywhere,
        action: || Action::Bottom,
        defaults: &["G", "end"],
    },
    Binding {
        id: Bind::Open,
        name: "open",
        about: "open run curves and log",
        scope: RUNS,
        action: || Action::Open,
        defaults: &["enter"],
    },
    Binding {
        id: Bind::ZooDetails,
        name: "zoo_details",
        about: "show/hide model details",
        scope: Scope::Only(&[View::Zoo]),
        action: || Action::ToggleZooDetails,
        defaults: &["enter"],
    },
    Binding {
        id: Bind::Back,
        name: "back",
        about: "close detail/filter/help",
        scope: Scope::Everywhere,
        action: || Action::Back,
        defaults: &["esc"],
    },
    Binding {
        id: Bind::Select,
        name: "select",
        about: "select run/model",
        scope: Scope::Only(&[View::Runs, View::Launch]),
        action: || Action::Select,
        defaults: &["space"],
    },
    Binding {
        id: Bind::SelectTrials,
        name: "select_trials",
        about: "select model's trials",
        scope: RUNS,
        action: || Action::SelectTrials,
        defaults: &["T"],
    },
    Binding {
        id: Bind::CompareBands,
        name: "compare_bands",
        about: "mean+band / every run",
        scope: Scope::Only(&[View::Compare]),
        action: || Action::ToggleBands,
        defaults: &["m"],
    },
    Binding {
        id: Bind::Filter,
        name: "filter",
        about: "filter runs by text",
        scope: RUNS,
        action: || Action::FilterStart,
        defaults: &["/"],
    },
    Binding {
        id: Bind::Sort,
        name: "sort",
        about: "cycle the sort column",
        scope: RUNS,
        action: || Action::CycleSort,
        defaults: &["s"],
    },
    Binding {
        id: Bind::DemoSweep,
        name: "demo_sweep",
        about: "enqueue the demo sweep",
        scope: Scope::Only(&[View::Zoo, View::Launch, View::Runs]),
        action: || Action::DemoSweep,
        defaults: &["d"],
    },
    Binding {
        id: Bind::StopRun,
        name: "stop_run",
        about: "stop the run (SIGTERM)",
        scope: RUNS,
        action: || Action::RunControl(Control::Stop),
        defaults: &["x"],
    },
    Binding {
        id: Bind::KillRun,
        name: "kill_run",
        about: "kill the run (asks)",
        scope: RUNS,
        action: || Action::RunControl(Control::Kill),
        defaults: &["K"],
    },
    Binding {
        id: Bind::ResumeRun,
        name: "resume_run",
        about: "resume stopped/failed",
        scope: RUNS,
        action: || Action::RunControl(Control::Resume),
        defaults: &["r"],
    },
    Binding {
        id: Bind::FullLog,
        name: "full_log",
        about: "full-screen log",
        scope: RUNS,
        action: || Action::ToggleFullLog,
        defaults: &["L"],
    },
    Binding {
        id: Bind::WholeMessage,
        name: "whole_message",
        about: "the whole last message",
        scope: Scope::Everywhere,
        action: || Action::ToggleMessage,
        defaults: &["M"],
    },
    Binding {
        id: Bind::RestartRun,
        name: "restart_run",
        about: "restart anew (asks)",
        scope: RUNS,
        action: || Action::RunControl(Control::Restart),
        defaults: &["R"],
    },
    Binding {
        id: Bind::EvalRun,
        name: "eval_run",
        about: "evaluate the best checkpoint",
        scope: RUNS,
        action: || Action::EvalRuns,
        defaults: &["e"],
    },
    Binding {
        id: Bind::More,
        name: "more",
        about: "next dataset, +1 trial",
        scope: LAUNCH,
        action: || Action::More,
        defaults: &["+", "="],
    },
    Binding {
        id: Bind::Less,
        name: "less",
        about: "prev dataset, -1 trial",
        scope: LAUNCH,
        action: || Action::Less,
        defaults: &["-"],
    },
    Binding {
        id: Bind::Edit,
        name: "edit",
        about: "type anno % or overrides",
        scope: LAUNCH,
        action: || Action::Edit,
        defaults: &["e"],
    },
    Binding {
        id: Bind::ChooseConverted,
        name: "choose_converted",
        about: "choose converted models",
        scope: LAUNCH,
        action: || Action::ChooseConverted,
        defaults: &["a"],
    },
    Binding {
        id: Bind::DryRun,
        name: "dry_run",
        about: "dry run: new vs existing",
        scope: LAUNCH,
        action: || Action::DryRun,
        defaults: &["p"],
    },
    Binding {
        id: Bind::Enqueue,
        name: "enqueue",
        about: "enqueue the sweep",
        scope: LAUNCH,
        action: || Action::Enqueue,
        defaults: &["enter"],
    },
    Binding {
        id: Bind::HeatMap,
        name: "heat_map",
        about: "per-class heat map",
        scope: BOARD,
        action: || Action::ToggleHeatMap,
        defaults: &["c"],
    },
    Binding {
        id: Bind::Published,
        name: "published",
        about: "published reference rows",
        scope: BOARD,
        action: || Action::TogglePublished,
        defaults: &["r"],
    },
    Binding {
        id: Bind::Export,
        name: "export",
        about: "export CSV and Markdown",
        scope: BOARD,
        action: || Action::Export,
        defaults: &["e"],
    },
    Binding {
        id: Bind::ZooPull,
        name: "zoo_pull",
        about: "pull and convert model",
        scope: Scope::Only(&[View::Zoo]),
        action: || Action::ZooPull,
        defaults: &["p"],
    },
    Binding {
        id: Bind::ZooVerify,
        name: "zoo_verify",
        about: "verify the download",
        scope: Scope::Only(&[View::Zoo]),
        action: || Action::ZooVerify,
        defaults: &["v"],
    },
    Binding {
        id: Bind::ZooImport,
        name: "zoo_import",
        about: "import a downloaded file",
        scope: Scope::Only(&[View::Zoo]),
        action: || Action::ZooImport,
        defaults: &["i"],
    },
    Binding {
        id: Bind::DataCheck,
        name: "data_check",
        about: "check the dataset",
        scope: Scope::Only(&[View::Datasets]),
        action: || Action::DataCheck,
        defaults: &["c"],
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

/// Parses "q", "G", "ctrl-q", "enter", "esc", "tab", "backtab", "space", "up", "f1", ...
pub fn parse_key(text: &str) -> Option<Key> {
    let (ctrl, rest) = match text.strip_prefix("ctrl-") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        f if f.len() > 1 && f.starts_with('f') => KeyCode::F(f[1..].parse().ok().filter(|n| (1..=12).contains(n))?),
        c if c.chars().count() == 1 => KeyCode::Char(c.chars().next()?),
        _ => return None,
    };
    Some(Key { code, ctrl })
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Key {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        Key { code: ev.code, ctrl }
    }
}

/// The keys in force: per binding (in `BINDINGS` order), its key texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    keys: Vec<Vec<(String, Key)>>,
}

impl Default for Keymap {
    fn default() -> Self {
        let keys = BINDINGS
            .iter()
            .map(|b| b.defaults.iter().filter_map(|t| Some((t.to_string(), parse_key(t)?))).collect())
            .collect();
        Keymap { keys }
    }
}

impl Keymap {
    /// The defaults with `overrides` (action name → key) applied; an overridden key leaves other actions.
    pub fn with_overrides(overrides: &BTreeMap<String, String>) -> Result<Keymap> {
        let mut map = Keymap::default();
        for (name, text) in overrides {
            let Some(index) = BINDINGS.iter().position(|b| b.name == name) else {
                let known: Vec<&str> = BINDINGS.iter().map(|b| b.name).collect();
                bail!("config.toml [tui.keymap]: unknown action {name:?} (known: {})", known.join(", "));
            };
            let Some(key) = parse_key(text) else {
                bail!(
                    "config.toml [tui.keymap] {name} = {text:?}: not a key (try \"q\", \"ctrl-q\", \"enter\", \"f1\")"
                );
            };
            for keys in &mut map.keys {
                keys.retain(|(_, k)| *k != key);
            }
            map.keys[index] = vec![(text.clone(), key)];
        }
        Ok(map)
    }

    /// The action bound to `key` in `view`, if any.
    pub fn action_for(&self, key: Key, view: View) -> Option<Action> {
        BINDINGS
            .iter()
            .zip(&self.keys)
            .find(|(b, keys)| in_scope(b.scope, view) && keys.iter().any(|(_, k)| *k == key))
            .map(|(b, _)| (b.action)())
    }

    /// (keys, what they do) for every action usable in `view`.
    pub fn help(&self, view: View) -> Vec<(String, &'static str)> {
        BINDINGS
            .iter()
            .zip(&self.keys)
            .filter(|(b, keys)| in_scope(b.scope, view) && !keys.is_empty())
            .map(|(b, keys)| (keys.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(" "), b.about))
            .collect()
    }

    /// The first key text of the binding `id` ("" when unbound).
    pub fn key_of(&self, id: Bind) -> &str {
        BINDINGS.iter().position(|b| b.id == id).and_then(|i| self.keys[i].first()).map_or("", |(t, _)| t.as_str())
    }
}

fn in_scope(scope: Scope, view: View) -> bool {
    match scope {
        Scope::Everywhere => true,
        Scope::Only(views) => views.contains(&view),
    }
}

/// While text is typed (the filter, a Launch field, a path), keys edit it instead of acting; Tab completes a path.
pub fn filter_action(key: Key) -> Option<Action> {
    match key.code {
        KeyCode::Enter => Some(Action::FilterDone),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Backspace => Some(Action::FilterBackspace),
        KeyCode::Tab => Some(Action::Complete),
        KeyCode::Char(c) if !key.ctrl => Some(Action::FilterInput(c)),
        _ => None,
    }
}

/// While a question is pending, y or enter answers yes and any other key no.
pub fn confirm_action(key: Key) -> Action {
    Action::Confirm(!key.ctrl && matches!(key.code, KeyCode::Char('y') | KeyCode::Enter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(t: &str) -> Key {
        parse_key(t).unwrap()
    }

    #[test]
    fn defaults_bind_the_documented_keys() {
        let map = Keymap::default();
        assert_eq!(map.action_for(key("q"), View::Zoo), Some(Action::Quit));
        assert_eq!(map.action_for(key("6"), View::Runs), Some(Action::Show(View::Leaderboard)));
        assert_eq!(map.action_for(key("j"), View::Runs), Some(Action::Down));
        assert_eq!(map.action_for(key("enter"), View::Runs), Some(Action::Open));
        assert_eq!(map.action_for(key("x"), View::Gpus), None, "stop works only in Runs");
        assert_eq!(map.action_for(key("p"), View::Zoo), Some(Action::ZooPull));
        assert_eq!(map.action_for(key("v"), View::Zoo), Some(Action::ZooVerify));
        assert_eq!(map.action_for(key("d"), View::Zoo), Some(Action::DemoSweep));
        assert_eq!(map.action_for(key("c"), View::Datasets), Some(Action::DataCheck));
        assert_eq!(map.action_for(key("p"), View::Runs), None, "pull works only in Zoo");
        assert_eq!(map.action_for(key("c"), View::Zoo), None, "check works only in Datasets");
    }

    #[test]
    fn overrides_replace_keys_and_free_them_elsewhere() {
        let overrides = BTreeMap::from([("quit".to_string(), "ctrl-q".to_string()), ("sort".into(), "q".into())]);
        let map = Keymap::with_overrides(&overrides).unwrap();
        assert_eq!(map.action_for(key("ctrl-q"), View::Runs), Some(Action::Quit));
        assert_eq!(map.action_for(key("q"), View::Runs), Some(Action::CycleSort));
        assert_eq!(map.action_for(key("q"), View::Zoo), None);
        assert_eq!(map.key_of(Bind::Quit), "ctrl-q");
    }

    #[test]
    fn each_binding_id_names_one_binding() {
        for (i, b) in BINDINGS.iter().enumerate() {
            let same: Vec<&str> = BINDINGS.iter().filter(|o| o.id == b.id).map(|o| o.name).collect();
            assert_eq!(same, [b.name], "binding {i}");
        }
        let map = Keymap::default();
        assert_eq!(map.key_of(Bind::ZooPull), "p");
        assert_eq!(map.key_of(Bind::NextView), "tab", "the first of its keys");
    }

    #[test]
    fn bad_overrides_name_the_action_or_key() {
        let err = Keymap::with_overrides(&BTreeMap::from([("fly".into(), "f".into())])).unwrap_err();
        assert!(err.to_string().contains("unknown action \"fly\""), "{err}");
        let err = Keymap::with_overrides(&BTreeMap::from([("quit".into(), "ctrl-".into())])).unwrap_err();
        assert!(err.to_string().contains("quit = \"ctrl-\""), "{err}");
    }

    #[test]
    fn help_lists_only_the_keys_of_the_view() {
        let map = Keymap::default();
        let runs = map.help(View::Runs);
        assert!(runs.iter().any(|(k, _)| k == "x"));
        assert!(!map.help(View::Gpus).iter().any(|(k, _)| k == "x"));
        let zoo = map.help(View::Zoo);
        for k in ["p", "v", "d"] {
            assert!(zoo.iter().any(|(keys, _)| keys == k), "{k} in Zoo help: {zoo:?}");
        }
        assert!(map.help(View::Datasets).iter().any(|(k, _)| k == "c"));
    }

    #[test]
    fn every_binding_is_in_the_help_of_each_view_it_works_in() {
        let map = Keymap::default();
        for view in View::ALL {
            let help = map.help(view);
            for b in BINDINGS.iter().filter(|b| in_scope(b.scope, view)) {
                assert!(help.iter().any(|(_, about)| *about == b.about), "{} missing from {view:?} help", b.name);
            }
        }
        let overridden = Keymap::with_overrides(&BTreeMap::from([("zoo_pull".into(), "P".into())])).unwrap();
        assert_eq!(overridden.action_for(key("P"), View::Zoo), Some(Action::ZooPull));
        assert!(overridden.help(View::Zoo).iter().any(|(k, _)| k == "P"));
    }
}
