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
/// its pid now belongs to a later process), `Some(true)` when it runs, and `None` when this
/// cannot be told (another host, or a system without `/proc`).
pub fn is_alive(process: &ProcessRef) -> Option<bool> {
    if process.host != host_name() || !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    match start_ticks(process.pid) {
        None => Some(false),
        Some(ticks) => Some(process.start_ticks.is_none_or(|recorded| recorded == ticks)),
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

/// Reads field 22 (`starttime`) of `/proc/PID/stat`. The command name (field 2) may contain
/// spaces and parentheses, so the fields are counted from the last `)`.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards, so field 22 is the 20th.
    after_name.split_whitespace().nth(19)?.parse().ok()
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
    fn other_host_is_unknown() {
        let mut me = current_process();
        me.host = "another-host.invalid".into();
        assert_eq!(is_alive(&me), None);
    }
}
