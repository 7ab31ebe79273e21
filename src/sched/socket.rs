//! The agent's control socket `<home>/agent/agent.sock` (mode 0600): one JSON request per line, one JSON
//! reply per line. Clients start the agent detached when nobody answers.

use crate::home::Home;
use crate::sched::slots::Slot;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SOCKET_FILE: &str = "agent.sock";
pub const LOCK_FILE: &str = "agent.lock";
pub const LOG_FILE: &str = "agent.log";

pub fn socket_path(home: &Home) -> PathBuf {
    home.agent_dir.join(SOCKET_FILE)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    Status,
    /// New queued runs are on disk: look now.
    EnqueueNotify,
    /// SIGTERM a running run (a queued one becomes stopped).
    Stop {
        run: String,
    },
    /// SIGKILL a running run (a queued one becomes stopped).
    Kill {
        run: String,
    },
    /// Queue a stopped or failed run again; it resumes from last.ckpt.
    Requeue {
        run: String,
    },
    /// Queue a run again from scratch (drops metrics, checkpoints and result).
    Restart {
        run: String,
    },
    /// Delete a run folder; a finished result only with `force`.
    Rm {
        run: String,
        force: bool,
    },
    /// Stop launching queued runs (running ones go on).
    Pause,
    Resume,
    Shutdown,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply { ok: true, ..Reply::default() }
    }
    pub fn error(msg: impl Into<String>) -> Reply {
        Reply { ok: false, error: Some(msg.into()), status: None }
    }
}

/// What `medxfer agent status --json` prints: whether an agent answers, and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub running: bool,
    pub agent: Option<AgentStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub pid: u32,
    pub paused: bool,
    pub cpu_slots: usize,
    pub gpus: u32,
    pub gpu_slots_per_device: usize,
    pub running: Vec<RunningRun>,
    /// Queued run ids in launch order.
    pub queued: Vec<String>,
    /// Runs followed in Slurm.
    #[serde(default)]
    pub slurm: Vec<SlurmRun>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmRun {
    pub id: String,
    pub job_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningRun {
    pub id: String,
    pub pid: u32,
    pub slot: Slot,
    /// True when this agent took the run over from a previous one.
    pub adopted: bool,
}

/// Binds the socket with mode 0600, replacing a stale socket file (the caller holds the agent lock).
pub fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove stale socket {}", path.display())),
    }
    // SAFETY: umask only changes this process's file creation mask; restored right after bind.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set mode 0600 on {}", path.display()))?;
    Ok(listener)
}

/// Sends one request to the running agent and reads its reply.
pub fn request(home: &Home, req: &Request) -> Result<Reply> {
    let path = socket_path(home);
    let stream = UnixStream::connect(&path).with_context(|| format!("no agent answers on {}", path.display()))?;
    exchange(stream, req)
}

fn exchange(mut stream: UnixStream, req: &Request) -> Result<Reply> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).context("the agent closed the socket without a reply")?;
    serde_json::from_str(&reply).with_context(|| format!("the agent sent an unreadable reply {:?}", reply.trim()))
}

/// Like `request`, but an error reply becomes an error.
pub fn request_ok(home: &Home, req: &Request) -> Result<Reply> {
    let reply = request(home, req)?;
    if !reply.ok {
        bail!("{}", reply.error.unwrap_or_else(|| "the agent refused the request".into()));
    }
    Ok(reply)
}

/// True when an agent answers on the socket.
pub fn agent_answers(home: &Home) -> bool {
    request(home, &Request::Status).map(|r| r.ok).unwrap_or(false)
}

/// Starts `medxfer agent` detached (own session, output to `<home>/agent/agent.log`) unless one answers,
/// then waits until it does. Returns true when it started one.
pub fn ensure_agent(home: &Home) -> Result<bool> {
    if agent_answers(home) {
        return Ok(false);
    }
    let exe = std::env::current_exe().context("cannot find the medxfer executable to start the agent")?;
    let log_path = home.agent_dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("agent").stdin(std::process::Stdio::null()).stdout(log.try_clone()?).stderr(log);
    crate::process::new_session(&mut cmd);
    let mut child = cmd.spawn().context("cannot start the agent")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if agent_answers(home) {
            // The agent outlives us; reap it in a thread if it exits while we still run.
            std::thread::spawn(move || child.wait());
            return Ok(true);
        }
        if let Ok(Some(status)) = child.try_wait()
            && !agent_answers(home)
        {
            bail!("the agent exited ({status}) before answering; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the agent did not answer on {} within 20 s; see {}", socket_path(home).display(), log_path.display())
}

/// A request and the connection its reply goes to.
pub type Incoming = (Request, UnixStream);

/// Accepts connections; each line read becomes an `Incoming` for the agent's loop (which replies in order).
pub fn serve(listener: UnixListener, tx: mpsc::Sender<Incoming>) {
    for stream in listener.incoming().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || read_requests(stream, tx));
    }
}

fn read_requests(stream: UnixStream, tx: mpsc::Sender<Incoming>) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let Ok(reader_half) = stream.try_clone() else { return };
    for line in BufReader::new(reader_half).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(mut writer) = stream.try_clone() else { return };
        match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                if tx.send((req, writer)).is_err() {
                    return;
                }
            }
            Err(e) => send_reply(&mut writer, &Reply::error(format!("unreadable request {:?}: {e}", line.trim()))),
        }
    }
}

pub fn send_reply(stream: &mut UnixStream, reply: &Reply) {
    if let Ok(mut line) = serde_json::to_string(reply) {
        line.push('\n');
        let _ = stream.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line_with_a_cmd() {
        let r = Request::Rm { run: "x".into(), force: true };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(s, r#"{"cmd":"rm","run":"x","force":true}"#);
        assert_eq!(serde_json::from_str::<Request>(r#"{"cmd":"enqueue-notify"}"#).unwrap(), Request::EnqueueNotify);
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"format-disk"}"#).is_err());
    }

    #[test]
    fn bound_socket_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.sock");
        std::fs::write(&p, b"stale").unwrap();
        let _l = bind(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
