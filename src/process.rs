//! Identity and liveness of the process that holds a claim, read without `unsafe` through
//! Linux's `/proc`.

use std::sync::OnceLock;

use crate::model::ProcessRef;

/// Returns the identity of the current process: host name, pid and start time.
pub fn current_process() -> ProcessRef {
    static CURRENT: OnceLock<ProcessRef> = OnceLock::new();
    CURRENT
        .get_or_init(|| {
            let pid = std::process::id();
            ProcessRef {
                host: host_name(),
                pid,
                start_ticks: start_ticks(pid),
            }
        })
        .clone()
}

/// Returns whether the process still exists: `Some(false)` when it is on this host and gone (or
/// its pid now belongs to a later process, or it has exited and waits to be reaped as a
/// zombie), `Some(true)` when it runs, and `None` when this cannot be known (another host, or a
/// system without `/proc`).
pub fn is_alive(process: &ProcessRef) -> Option<bool> {
    if process.host != host_name() || !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    match stat_fields(process.pid) {
        // A zombie (`Z`) or dead (`X`) process has exited; only its parent has not reaped it.
        None | Some(('Z' | 'X', _)) => Some(false),
        Some((_, ticks)) => Some(process.start_ticks.is_none_or(|recorded| recorded == ticks)),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .or_else(|| {
            std::env::var("COMPUTERNAME")
                .ok()
                .filter(|name| !name.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Reads field 22 (`starttime`) of `/proc/PID/stat`.
fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, ticks)| ticks)
}

/// Reads field 3 (`state`, such as `R`, `S` or `Z`) and field 22 (`starttime`) of
/// `/proc/PID/stat`. The command name (field 2) may contain spaces and parentheses, so the
/// fields are counted from the last `)`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is taken, so field 22 is the 19th of the rest.
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive() {
        let me = current_process();
        assert_eq!(me.pid, std::process::id());
        if cfg!(target_os = "linux") {
            assert!(me.start_ticks.is_some());
            assert_eq!(is_alive(&me), Some(true));
        }
    }

    #[test]
    fn reused_pid_is_not_alive() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut me = current_process();
        me.start_ticks = me.start_ticks.map(|ticks| ticks + 1);
        assert_eq!(is_alive(&me), Some(false));
    }

    #[test]
    fn unreaped_child_is_not_alive() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let gone = ProcessRef {
            host: host_name(),
            pid,
            start_ticks: start_ticks(pid),
        };
        // Wait until the child has exited but is not reaped yet: a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat_fields(pid).is_some_and(|(state, _)| state != 'Z') {
            assert!(
                std::time::Instant::now() < deadline,
                "the child did not exit"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(is_alive(&gone), Some(false));
        child.wait().unwrap();
        assert_eq!(is_alive(&gone), Some(false));
    }

    #[test]
    fn other_host_is_unknown() {
        let mut me = current_process();
        me.host = "another-host.invalid".into();
        assert_eq!(is_alive(&me), None);
    }
}
