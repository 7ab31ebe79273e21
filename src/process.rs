//! Processes by identity: pid + start time (/proc/PID/stat field 22), so a reused pid is never taken
//! for the process that had it; sessions and signals to a whole session.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The start time (clock ticks since boot) of a live process; None when it is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a /proc/PID/stat line (the command name in field 2 may hold spaces and parentheses).
pub fn parse_start_time(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // fields[0] is field 3 (state).
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | None) {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

/// When the machine booted (/proc/stat btime), the origin of start times.
pub fn boot_time() -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The unit of start times (sysconf(_SC_CLK_TCK)).
pub fn clock_ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0)
}

/// True when `pid` is still the process that started at `start`.
pub fn is_same_live_process(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// Sends `signal` to the session/process group led by `pid` (launched runs lead their own).
pub fn signal_group(pid: u32, signal: i32) -> std::io::Result<()> {
    let pgid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Makes the command's process the leader of a new session (no controlling terminal, own process group).
pub fn new_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| if libc::setsid() < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_start_time(line), Some(987654));
        let zombie = "42 (x) Z 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_start_time(zombie), None);
    }

    #[test]
    fn this_process_is_alive_with_its_own_start_time() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        assert!(is_same_live_process(me, start));
        assert!(!is_same_live_process(me, start + 1));
    }

    #[test]
    fn launched_process_leads_its_own_session_and_dies_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        new_session(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        // SAFETY: getsid on a pid we own.
        let sid = unsafe { libc::getsid(child.id() as i32) };
        assert_eq!(sid, child.id() as i32);
        signal_group(child.id(), libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        drop(dir);
    }
}
