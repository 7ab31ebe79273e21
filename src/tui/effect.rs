//! Effects: the work `update` asks the app for, each a run of medxfer's own command line (or, for an export,
//! files to write), and the decoding of that command's outcome back into an action (`Effect::finished`).

use super::action::{Action, Control, DataCheck};
use crate::data::check::{CheckReport, Kind};
use crate::runs::record::RunResult;
use crate::sched::report::ControlReport;
use crate::sched::sweep::{PlanSummary, SweepRequest};
use crate::zoo::report::{ZooOutcome, ZooReport};

/// Work for the agent, performed by running medxfer's own command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `medxfer sweep`: write the sweep's missing runs as queued folders.
    EnqueueSweep(SweepRequest),
    /// The sweep planned with `--dry-run`: writes nothing, says which runs exist (the dry-run key).
    DryRun(SweepRequest),
    /// The same, started by the form itself whenever it makes a new plan: Enter waits for its answer.
    Preflight(SweepRequest),
    /// `medxfer runs <verb> ID...`.
    Control {
        control: Control,
        ids: Vec<String>,
    },
    /// `medxfer eval --run ID --json` of the first run: its best checkpoint on its dataset's test split; the
    /// others are evaluated after it, one at a time (each loads a model and the test set).
    Eval {
        ids: Vec<String>,
    },
    ZooPull {
        id: String,
    },
    ZooVerify {
        id: String,
    },
    /// `medxfer zoo import ID FILE`: verify, install and convert a manually downloaded file.
    ZooImport {
        id: String,
        file: String,
    },
    DataCheck {
        dataset: String,
    },
    /// Files written (atomically) under `<home>/exports/`: (file name, contents). Runs no command.
    Export {
        files: Vec<(String, String)>,
    },
    /// The dataset's folders written to config.toml's `[datasets.<name>]`. Runs no command.
    RememberPaths {
        dataset: String,
        paths: crate::config::DatasetPaths,
    },
}

impl Effect {
    /// The medxfer arguments that perform the effect.
    pub fn cli_args(&self) -> Vec<String> {
        match self {
            // --json: the outcome is read back as a `PlanSummary`, not from the text.
            Effect::EnqueueSweep(request) => [request.args(), vec!["--json".into()]].concat(),
            Effect::DryRun(request) | Effect::Preflight(request) => {
                [request.args(), vec!["--dry-run".into(), "--json".into()]].concat()
            }
            // --json on the commands below too: the outcome is read back as a `ControlReport` or `ZooReport`.
            Effect::Control { control, ids } => ["runs", control.verb()]
                .into_iter()
                .map(String::from)
                .chain(ids.iter().cloned())
                .chain(["--json".to_string()])
                .collect(),
            Effect::Eval { ids } => {
                let first = ids.first().cloned().unwrap_or_default();
                vec!["eval".into(), "--run".into(), first, "--json".into()]
            }
            Effect::ZooPull { id } => vec!["zoo".into(), "pull".into(), id.clone(), "--json".into()],
            Effect::ZooVerify { id } => vec!["zoo".into(), "verify".into(), id.clone(), "--json".into()],
            Effect::ZooImport { id, file } => {
                vec!["zoo".into(), "import".into(), id.clone(), file.clone(), "--json".into()]
            }
            Effect::DataCheck { dataset } => vec!["data".into(), "check".into(), dataset.clone(), "--json".into()],
            Effect::Export { .. } | Effect::RememberPaths { .. } => Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Effect::Export { files } => {
                format!("export {}", files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>().join(", "))
            }
            Effect::RememberPaths { dataset, .. } => format!("remember {dataset}'s folders in config.toml"),
            _ => format!("medxfer {}", self.cli_args().join(" ")),
        }
    }

    /// The action that reports an export's end: the paths written, or why not.
    pub fn exported(written: Result<Vec<std::path::PathBuf>, String>) -> Action {
        match written {
            Ok(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                Action::CommandFinished { ok: true, message: format!("exported {}", names.join(" and ")) }
            }
            Err(why) => Action::CommandFinished { ok: false, message: format!("export failed: {why}") },
        }
    }

    /// The action that reports the command's end (exit success, stdout, stderr) back to `update`.
    pub fn finished(&self, ok: bool, stdout: &str, stderr: &str) -> Action {
        let command = self.describe();
        let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = || lines().next().unwrap_or("no message").to_string();
        let failed = || format!("{command} failed: {}", first());
        let unreadable = || format!("{command}: finished, but its --json output did not parse");
        match self {
            Effect::EnqueueSweep(request) => {
                let message = match serde_json::from_str::<PlanSummary>(stdout) {
                    Ok(plan) if ok && plan.new == 0 => format!(
                        "nothing queued: the {} runs of this sweep exist already (R in Runs trains one again)",
                        plan.count
                    ),
                    Ok(plan) if ok => queued(request, &plan),
                    _ => failed(),
                };
                Action::CommandFinished { ok: ok && message.starts_with("sweep queued"), message }
            }
            Effect::DryRun(request) | Effect::Preflight(request) => {
                let outcome = match serde_json::from_str::<PlanSummary>(stdout) {
                    Ok(plan) if ok => Ok(Box::new(plan)),
                    // the command's own sentence, without the "medxfer: " every refusal starts with
                    _ => Err(first().trim_start_matches("medxfer: ").to_string()),
                };
                let announce = matches!(self, Effect::DryRun(_));
                Action::Preflighted { request: Box::new(request.clone()), outcome, announce }
            }
            Effect::Control { control, .. } => {
                let message = match serde_json::from_str::<ControlReport>(stdout) {
                    Ok(report) => controlled(&command, control.verb(), &report),
                    Err(_) if ok => unreadable(),
                    Err(_) => failed(),
                };
                Action::CommandFinished { ok, message }
            }
            Effect::Eval { ids } => {
                let (id, rest) = ids.split_first().map_or(("", &[][..]), |(id, rest)| (id.as_str(), rest));
                let message = match serde_json::from_str::<RunResult>(stdout) {
                    Ok(r) if ok => format!(
                        "eval {id}: test {} {:.4} on {} (best epoch {}), saved in the run folder",
                        r.metric, r.mean, r.dataset, r.best_epoch
                    ),
                    _ if ok => unreadable(),
                    _ => failed(),
                };
                Action::EvalDone { ok: ok && message.starts_with("eval "), message, rest: rest.to_vec() }
            }
            Effect::ZooPull { id } | Effect::ZooVerify { id } | Effect::ZooImport { id, .. } => {
                let report = serde_json::from_str::<ZooReport>(stdout).ok();
                let message = match report.as_ref().and_then(|r| r.model(id)) {
                    Some(ZooOutcome { ok: true, message, .. }) => {
                        format!("{id}: {}", message.as_deref().unwrap_or("done"))
                    }
                    Some(ZooOutcome { error, .. }) => {
                        format!("{command} failed: {}", error.as_deref().unwrap_or("no message"))
                    }
                    None if ok => unreadable(),
                    None => failed(),
                };
                Action::ZooDone { id: id.clone(), ok, message }
            }
            Effect::DataCheck { dataset } => {
                let check = match serde_json::from_str::<CheckReport>(stdout) {
                    Ok(report) => check_summary(report),
                    Err(_) => DataCheck::Failed(first()),
                };
                Action::DataChecked { dataset: dataset.clone(), check }
            }
            Effect::RememberPaths { dataset, .. } => {
                let message = if ok {
                    format!("remembered {dataset}'s folders in config.toml")
                } else {
                    format!("could not remember {dataset}'s folders: {}", first())
                };
                Action::CommandFinished { ok, message }
            }
            Effect::Export { files } => {
                let why = || lines().next().unwrap_or("no message").to_string();
                Effect::exported(if ok { Ok(files.iter().map(|f| f.0.clone().into()).collect()) } else { Err(why()) })
            }
        }
    }
}

/// The status line after `runs <verb> ID... --json`: one run's outcome, or how many of several were refused,
/// each refusal named.
fn controlled(command: &str, verb: &str, report: &ControlReport) -> String {
    let refused: Vec<&str> = report.refused().map(|r| r.error.as_deref().unwrap_or("no message")).collect();
    match (report.runs.as_slice(), refused.is_empty()) {
        ([one], true) => format!("{}: {}", one.id, one.outcome.as_deref().unwrap_or("done")),
        ([_], false) => format!("{command} failed: {}", refused.join("; ")),
        (runs, true) => format!("{verb} {} runs: done", runs.len()),
        (runs, false) => format!("{verb} {} runs: {} refused: {}", runs.len(), refused.len(), refused.join("; ")),
    }
}

/// The status line after a sweep was queued: how many runs are new, of what, and with which settings.
fn queued(request: &SweepRequest, plan: &PlanSummary) -> String {
    let trials = request.trials;
    let each = if trials == 1 { "1 trial each".to_string() } else { format!("{trials} trials each") };
    let anno = if request.anno_percents.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = request.anno_percents.iter().map(u32::to_string).collect();
        format!(" at {}% labels", list.join(","))
    };
    let existing = if plan.existing > 0 { format!(" ({} exist already)", plan.existing) } else { String::new() };
    let sets: Vec<String> = request.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "sweep queued: {} new runs of {} on {}{anno}, {each} ({}){existing}",
        plan.new,
        request.models.join(", "),
        request.dataset,
        sets.join(" ")
    )
}

/// `data check --json`'s report as the Datasets view keeps it: items per split, how many listed images
/// exist (the report's count of missing images), the problems.
fn check_summary(report: CheckReport) -> DataCheck {
    let splits: Vec<(String, usize)> = report.splits.into_iter().map(|s| (s.split, s.items)).collect();
    let listed = splits.iter().map(|s| s.1).sum();
    let missing = report.counts.get(&Kind::MissingImage).copied().unwrap_or(0);
    DataCheck::Done { splits, listed, found: listed.saturating_sub(missing), problems: report.errors }
}
