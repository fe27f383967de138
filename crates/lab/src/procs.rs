//! Finding and signalling a host's processes. A process belongs to a lab host when its
//! mount namespace is that host's: one scan of /proc finds sshd, sessions, daemons started
//! with nohup from a session, and `exec` children alike. Processes are never matched by
//! name (other tenants of the machine run their own sshd and mariadbd).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

/// Mount namespace id (the inode in `mnt:[N]`) of `pid`, if it is still alive and readable.
pub(crate) fn mntns_of(pid: i32) -> Option<u64> {
    let link = fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    parse_ns_link(&link.to_string_lossy())
}

/// `mnt:[4026532281]` -> 4026532281.
pub(crate) fn parse_ns_link(text: &str) -> Option<u64> {
    let start = text.find('[')? + 1;
    let end = text.find(']')?;
    text.get(start..end)?.parse().ok()
}

/// Every live process whose mount namespace is one of `ids`, as (pid, namespace id).
pub(crate) fn scan(ids: &[u64]) -> Vec<(i32, u64)> {
    let mut found = Vec::new();
    if ids.is_empty() {
        return found;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ns) = mntns_of(pid).filter(|ns| ids.contains(ns)) {
            found.push((pid, ns));
        }
    }
    found
}

/// The pids of one namespace.
pub(crate) fn pids_in(ns: u64) -> Vec<i32> {
    scan(&[ns]).into_iter().map(|(pid, _)| pid).collect()
}

/// Sends `signal` to each pid; processes that are already gone are skipped.
pub(crate) fn signal_all(pids: &[i32], signal: i32) {
    for &pid in pids {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Fields of /proc/PID/status we need.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcStatus {
    /// Pids from the outermost to the innermost pid namespace.
    pub ns_pids: Vec<i32>,
    pub ppid: i32,
    /// `R`, `S`, `T` (stopped), `Z`, ...
    pub state: char,
}

pub(crate) fn status_of(pid: i32) -> Option<ProcStatus> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut status = ProcStatus::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("NSpid:") {
            status.ns_pids = rest
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
        } else if let Some(rest) = line.strip_prefix("PPid:") {
            status.ppid = rest.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("State:") {
            status.state = rest.trim().chars().next().unwrap_or('?');
        }
    }
    Some(status)
}

/// Translates an in-namespace pid (from a pid file inside a host) to the controller's pid.
pub(crate) fn controller_pid(ns: u64, inner_pid: i32) -> Option<i32> {
    pids_in(ns).into_iter().find(|&pid| {
        status_of(pid).is_some_and(|s| s.ns_pids.len() > 1 && s.ns_pids.last() == Some(&inner_pid))
    })
}

/// Reads a pid file written inside a host and translates it; None if absent or dead.
pub(crate) fn pid_from_file(ns: u64, file: &Path) -> Option<i32> {
    let inner: i32 = fs::read_to_string(file).ok()?.trim().parse().ok()?;
    controller_pid(ns, inner).filter(|&pid| status_of(pid).is_some_and(|s| s.state != 'Z'))
}

/// `pid` and every descendant of it among `pids`.
pub(crate) fn with_descendants(root: i32, pids: &[i32]) -> Vec<i32> {
    let parents: HashMap<i32, i32> = pids
        .iter()
        .filter_map(|&p| status_of(p).map(|s| (p, s.ppid)))
        .collect();
    let mut tree = vec![root];
    let mut changed = true;
    while changed {
        changed = false;
        for (&pid, &ppid) in &parents {
            if tree.contains(&ppid) && !tree.contains(&pid) {
                tree.push(pid);
                changed = true;
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespace_links() {
        assert_eq!(parse_ns_link("mnt:[4026532281]"), Some(4026532281));
        assert_eq!(parse_ns_link("garbage"), None);
    }

    #[test]
    fn finds_own_process_by_namespace() {
        let me = std::process::id() as i32;
        let ns = mntns_of(me).expect("own mount namespace is readable");
        assert!(pids_in(ns).contains(&me));
    }
}
