//! The event loop: terminal events, a run-folder watcher, NVML and finished commands feed one channel;
//! the loop drains it, applies `update`, performs effects, and draws at most one frame per FRAME.

use super::action::{Action, HostView, ZooStatus};
use super::effect::Effect;
use super::env::TuiEnv;
use super::keymap::{self, Key, Keymap};
use super::path_complete;
use super::state::State;
use super::store::{self, RunStore};
use super::update::update;
use super::views::heat;
use crate::home::Ctx;
use crate::home::Home;
use crate::host::HostInfo;
use crate::sched::socket::{self, Request};
use crate::zoo::{Catalog, ModelPaths};
use anyhow::{Context, Result, bail};
use crossterm::event::{Event, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::time::Instant;

/// Where the Leaderboard's exports go, under the home.
pub const EXPORTS_DIR: &str = "exports";
/// Shortest time between two frames (about 15 per second).
const FRAME: Duration = Duration::from_millis(66);
/// How often run folders are checked for changes.
const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How often the zoo cache is looked at (also right after each command ends).
const ZOO_EVERY: Duration = Duration::from_secs(1);
/// How often NVML is asked again.
const GPUS_EVERY: Duration = Duration::from_secs(5);
const HOST_EVERY: Duration = Duration::from_secs(2);

enum Msg {
    Term(Event),
    RunsChanged,
    Do(Action),
    Signal,
}

/// Opens the TUI on the home's runs; returns the exit status once the user quits.
pub fn run(ctx: &Ctx) -> Result<i32> {
    if !std::io::stdout().is_terminal() {
        bail!("the TUI needs a terminal on stdout; use a subcommand instead (see medxfer --help)");
    }
    let keymap = Keymap::with_overrides(&ctx.config.tui.keymap)?;
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the TUI's runtime")?;
    let env = TuiEnv::embedded();
    let catalog = env.catalog.clone();
    let mut state = State::new(env, keymap, color);
    state.apply_config(&ctx.config);
    state.places = super::state::Places::of_this_process();
    let env = |name| std::env::var(name).ok();
    state.rich_color = heat::rich_color(env("COLORTERM").as_deref(), env("TERM").as_deref());
    let status = runtime.block_on(event_loop(ctx.home.clone(), catalog, state, ctx.config.tui.mouse));
    // A watcher's blocking read may still be running; quitting must not wait for it.
    runtime.shutdown_background();
    status
}

async fn event_loop(home: Home, catalog: Catalog, mut state: State, mouse: bool) -> Result<i32> {
    let (tx, mut rx) = unbounded_channel();
    let zoo_poke = Arc::new(Notify::new());
    spawn_input(tx.clone());
    spawn_watcher(home.runs.clone(), tx.clone());
    spawn_zoo_watcher(home.clone(), catalog, tx.clone(), zoo_poke.clone());
    spawn_gpu_probe(tx.clone());
    spawn_host_probe(home.clone(), tx.clone());
    spawn_clock(tx.clone());
    spawn_signal_handlers(tx.clone())?;
    let mut store = RunStore::new(home.runs.clone());
    let mut terminal = ratatui::init();
    if mouse {
        crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)
            .context("cannot turn on mouse reporting (set [tui] mouse = false)")?;
    }
    let mut last_frame: Option<Instant> = None;
    let mut more_to_read = false;
    let result: Result<()> = async {
        loop {
            if state.dirty && last_frame.is_none_or(|t| t.elapsed() >= FRAME) {
                terminal.draw(|frame| frame.render_widget(&state, frame.area()))?;
                state.dirty = false;
                last_frame = Some(Instant::now());
            }
            let msg = match (state.dirty, last_frame) {
                _ if more_to_read => Some(rx.try_recv().unwrap_or(Msg::RunsChanged)),
                (true, Some(t)) => tokio::select! {
                    msg = rx.recv() => msg,
                    _ = tokio::time::sleep_until(t + FRAME) => continue,
                },
                _ => rx.recv().await,
            };
            let Some(mut msg) = msg else { return Ok(()) };
            more_to_read = false;
            loop {
                if matches!(msg, Msg::Signal) {
                    return Ok(());
                }
                more_to_read |= handle(msg, &mut state, &mut store, &tx, &zoo_poke, &home);
                match rx.try_recv() {
                    Ok(next) => msg = next,
                    Err(_) => break,
                }
            }
            if state.quit {
                return Ok(());
            }
        }
    }
    .await;
    drop(terminal);
    restore_terminal();
    result.map(|()| 0)
}

/// A click selects, the wheel moves like up/down; other mouse events do nothing.
fn mouse_action(ev: MouseEvent) -> Option<Action> {
    match ev.kind {
        MouseEventKind::Down(MouseButton::Left) => Some(Action::Click { column: ev.column, row: ev.row }),
        MouseEventKind::ScrollUp => Some(Action::Up),
        MouseEventKind::ScrollDown => Some(Action::Down),
        _ => None,
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor (also what the panic hook does).
fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
    let _ = crossterm::execute!(std::io::stdout(), crossterm::cursor::Show);
}

/// Applies one message; true when run folders have more to read (the loop reads on after a frame).
fn handle(
    msg: Msg,
    state: &mut State,
    store: &mut RunStore,
    tx: &UnboundedSender<Msg>,
    poke: &Arc<Notify>,
    home: &Home,
) -> bool {
    let apply = |action: Action, state: &mut State| {
        for effect in update(state, action) {
            match effect {
                Effect::Export { files } => spawn_export(files, home.root.join(EXPORTS_DIR), tx.clone()),
                Effect::RememberPaths { dataset, paths } => {
                    spawn_remember(home.config_file.clone(), dataset, paths, tx.clone())
                }
                effect => spawn_effect(effect, tx.clone(), poke.clone()),
            }
        }
    };
    let actions = match msg {
        Msg::Term(Event::Key(ev)) if ev.kind == KeyEventKind::Press => {
            let key = Key::from_event(&ev);
            let action = if state.confirm.is_some() {
                Some(keymap::confirm_action(key))
            } else if state.typing() {
                keymap::filter_action(key)
            } else {
                state.keymap.action_for(key, state.view)
            };
            let action = match (action, state.path_being_typed()) {
                (Some(Action::Complete), Some(typed)) => {
                    let places = &state.places;
                    Some(Action::PathCompleted(path_complete::complete(
                        typed,
                        &places.cwd,
                        places.user_home.as_deref(),
                    )))
                }
                (action, _) => action,
            };
            action.into_iter().collect()
        }
        Msg::Term(Event::Resize(..)) => vec![Action::Redraw],
        Msg::Term(Event::Mouse(_)) if state.confirm.is_some() || state.typing() => Vec::new(),
        Msg::Term(Event::Mouse(ev)) => mouse_action(ev).into_iter().collect(),
        Msg::Term(_) | Msg::Signal => Vec::new(),
        Msg::RunsChanged => {
            let (removed, more) = store.refresh(|delta| apply(Action::RunData(Box::new(delta)), state));
            for id in removed {
                apply(Action::RunRemoved(id), state);
            }
            return more;
        }
        Msg::Do(action) => vec![action],
    };
    for action in actions {
        apply(action, state);
    }
    false
}

/// Reads terminal events on a thread of its own (crossterm's read blocks).
fn spawn_input(tx: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            if tx.send(Msg::Term(event)).is_err() {
                break;
            }
        }
    });
}

/// Sends a data-less notice whenever a run folder's files change; the loop then reads what changed.
fn spawn_watcher(dir: PathBuf, tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut seen = None;
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            tick.tick().await;
            let scan_dir = dir.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || store::fingerprint(&scan_dir)).await else { return };
            if seen.as_ref() != Some(&now) {
                seen = Some(now);
                if tx.send(Msg::RunsChanged).is_err() {
                    return;
                }
            }
        }
    });
}

/// Every catalog model's state as `medxfer zoo list --json` reports it (`zoo::state_of`), its cache path and
/// its zoo.lock pin. Reads a few small files; never blocks on another process.
pub fn zoo_statuses(home: &Home, catalog: &Catalog) -> Vec<ZooStatus> {
    let pins = crate::zoo::pins::Pins::new(&home.root.join("zoo.lock"));
    catalog
        .entries
        .iter()
        .map(|entry| {
            let state = crate::zoo::state_of(home, entry);
            let file = entry.has_file().then(|| ModelPaths::new(home, entry).file);
            let pinned = match (&entry.sha256, &file) {
                (None, Some(f)) if f.is_file() => pins.get(&entry.id).ok().flatten().map(|p| p.sha256),
                _ => None,
            };
            ZooStatus { id: entry.id.clone(), state, file, pinned }
        })
        .collect()
}

/// Reports the zoo cache's states every ZOO_EVERY, or at once when poked (a command ended), when they changed.
fn spawn_zoo_watcher(home: Home, catalog: Catalog, tx: UnboundedSender<Msg>, poke: Arc<Notify>) {
    tokio::spawn(async move {
        let mut seen = None;
        loop {
            let (h, c) = (home.clone(), catalog.clone());
            let Ok(now) = tokio::task::spawn_blocking(move || zoo_statuses(&h, &c)).await else { return };
            if seen.as_ref() != Some(&now) {
                seen = Some(now.clone());
                if tx.send(Msg::Do(Action::ZooStates(now))).is_err() {
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(ZOO_EVERY) => {}
                _ = poke.notified() => {}
            }
        }
    });
}

/// One `Action::Tick` a second: the clock that ages status-line messages (update itself reads no clock).
fn spawn_clock(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            if tx.send(Msg::Do(Action::Tick)).is_err() {
                return;
            }
        }
    });
}

fn spawn_gpu_probe(tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GPUS_EVERY);
        loop {
            tick.tick().await;
            let Ok(gpus) = tokio::task::spawn_blocking(crate::gpu::nvml_gpus).await else { return };
            if tx.send(Msg::Do(Action::Gpus(gpus))).is_err() {
                return;
            }
        }
    });
}

/// CPUs, memory and load from /proc, and the agent's status if one answers (the probe never starts one).
fn spawn_host_probe(home: Home, tx: UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(HOST_EVERY);
        loop {
            tick.tick().await;
            let home = home.clone();
            let Ok(view) = tokio::task::spawn_blocking(move || read_host(&home)).await else { return };
            if tx.send(Msg::Do(Action::Host(Box::new(view)))).is_err() {
                return;
            }
        }
    });
}

/// The machine now and the agent's status, if an agent answers on the home's socket.
pub fn read_host(home: &Home) -> HostView {
    HostView {
        host: HostInfo::read(),
        agent: socket::request(home, &Request::Status).ok().and_then(|reply| reply.status),
    }
}

/// SIGHUP (the SSH link dropped) and SIGTERM end the loop, which restores the terminal.
fn spawn_signal_handlers(tx: UnboundedSender<Msg>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    for kind in [SignalKind::hangup(), SignalKind::terminate()] {
        let mut stream = signal(kind).context("cannot listen for SIGHUP/SIGTERM")?;
        let tx = tx.clone();
        tokio::spawn(async move {
            stream.recv().await;
            let _ = tx.send(Msg::Signal);
        });
    }
    Ok(())
}

/// Writes exported files atomically under `dir` (created when missing), off the loop's thread.
fn spawn_export(files: Vec<(String, String)>, dir: PathBuf, tx: UnboundedSender<Msg>) {
    tokio::task::spawn_blocking(move || {
        let write = || -> std::io::Result<Vec<PathBuf>> {
            std::fs::create_dir_all(&dir)?;
            let mut written = Vec::new();
            for (name, contents) in &files {
                let path = dir.join(name);
                crate::atomic::write(&path, contents.as_bytes())?;
                written.push(path);
            }
            Ok(written)
        };
        let outcome = write().map_err(|e| format!("cannot write under {}: {e}", dir.display()));
        let _ = tx.send(Msg::Do(Effect::exported(outcome)));
    });
}

/// Writes a dataset's folders into config.toml, off the loop's thread.
fn spawn_remember(config_file: PathBuf, dataset: String, paths: crate::config::DatasetPaths, tx: UnboundedSender<Msg>) {
    tokio::task::spawn_blocking(move || {
        let written = crate::config::remember_dataset_paths(&config_file, &dataset, &paths);
        let why = written.as_ref().err().map(crate::error::one_sentence).unwrap_or_default();
        let effect = Effect::RememberPaths { dataset, paths };
        let _ = tx.send(Msg::Do(effect.finished(why.is_empty(), "", &why)));
    });
}

/// Runs the effect's medxfer command; `Effect::finished` turns its outcome into the action sent back, and
/// the zoo watcher looks again (a pull or verify changed the cache).
fn spawn_effect(effect: Effect, tx: UnboundedSender<Msg>, poke: Arc<Notify>) {
    tokio::spawn(async move {
        let output = match std::env::current_exe() {
            Ok(exe) => {
                tokio::process::Command::new(exe)
                    .args(effect.cli_args())
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
            }
            Err(e) => Err(e),
        };
        let action = match output {
            Ok(out) => effect.finished(
                out.status.success(),
                &String::from_utf8_lossy(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
            ),
            Err(e) => effect.finished(false, "", &format!("could not start: {e}")),
        };
        poke.notify_one();
        let _ = tx.send(Msg::Do(action));
    });
}
