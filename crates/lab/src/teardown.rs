//! Taking a lab apart: every process of its hosts (found by mount namespace), its links and
//! netns (by the lab's tagged names), its mounts (by path), then the state dir. Also how
//! a host's mount namespace is identified, which `Lab` uses for everything it does to a host.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::HostPaths;
use crate::lab::wait_until;
use crate::net;
use crate::procs;
use crate::spec::{Host, LabSpec};

/// Whether teardown deletes the state dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Files {
    Delete,
    /// After a failed `up`: the logs stay readable.
    Keep,
}

/// Stops processes, then removes links and netns, then unmounts, then deletes the state dir.
/// The order matters: a live process or netns handle keeps the mounts busy.
pub(crate) fn teardown(
    spec: &LabSpec,
    hosts: &[Host],
    mut anchors: Vec<Child>,
    files: Files,
) -> Result<()> {
    let t0 = Instant::now();
    // The shaper's nft table lives in the controller's namespace: it would outlive the lab.
    crate::shape::remove(spec)?;
    let ids = namespace_ids(spec, hosts);
    // The anchors are the only host processes outside the hosts' pid namespaces.
    let anchor_pids: Vec<i32> = procs::scan(&ids)
        .into_iter()
        .map(|(pid, _)| pid)
        .filter(|&pid| procs::status_of(pid).is_some_and(|s| s.ns_pids.len() == 1))
        .collect();
    stop_processes(&ids);
    tracing::debug!("lab: down stopped after {:?}", t0.elapsed());
    for anchor in &mut anchors {
        let _ = anchor.wait();
    }
    reap_own_anchors(spec, hosts);
    // An anchor exits only after its init, and an init only after every process of its pid
    // namespace has been reaped: then no socket or file of the host is open any more.
    wait_until(Duration::from_secs(3), || {
        anchor_pids
            .iter()
            .all(|&pid| procs::status_of(pid).is_none_or(|s| s.state == 'Z'))
    });
    tracing::debug!("lab: down anchors after {:?}", t0.elapsed());
    net::destroy(spec)?;
    tracing::debug!("lab: down net after {:?}", t0.elapsed());
    unmount_under(&spec.state_dir)?;
    tracing::debug!("lab: down unmounted after {:?}", t0.elapsed());
    if files == Files::Delete && spec.state_dir.exists() {
        fs::remove_dir_all(&spec.state_dir).map_err(LabError::io(&spec.state_dir))?;
        tracing::debug!("lab: down deleted after {:?}", t0.elapsed());
    }
    Ok(())
}

/// Mount namespace ids of the lab's running hosts.
fn namespace_ids(spec: &LabSpec, hosts: &[Host]) -> Vec<u64> {
    hosts
        .iter()
        .filter_map(|host| host_namespace(&HostPaths::new(&spec.state_dir, &host.name)))
        .collect()
}

/// The id of the host's mount namespace, read from its bound handle. Only a bound handle
/// counts: it keeps the namespace alive, so its id cannot have been reused by another
/// namespace (ids are recycled; a recorded number could name someone else's processes).
pub(crate) fn host_namespace(paths: &HostPaths) -> Option<u64> {
    let nsfs_dev = fs::metadata("/proc/self/ns/mnt").ok()?.dev();
    let meta = fs::metadata(paths.handle("mnt")).ok()?;
    (meta.dev() == nsfs_dev).then(|| meta.ino())
}

/// SIGTERM (plus SIGCONT for frozen ones) to every lab process, SIGKILL after 3 s.
fn stop_processes(ids: &[u64]) {
    let pids: Vec<i32> = procs::scan(ids).into_iter().map(|(p, _)| p).collect();
    if pids.is_empty() {
        return;
    }
    procs::signal_all(&pids, libc::SIGTERM);
    procs::signal_all(&pids, libc::SIGCONT);
    let gone = |ids: &[u64]| procs::scan(ids).is_empty();
    if !wait_until(Duration::from_secs(3), || gone(ids)) {
        let left: Vec<i32> = procs::scan(ids).into_iter().map(|(p, _)| p).collect();
        procs::signal_all(&left, libc::SIGKILL);
        wait_until(Duration::from_secs(3), || gone(ids));
    }
}

/// Reaps anchors that are our own children but have no `Child` handle (a lab re-opened
/// from its state dir in the process that started it). Anchors of another process (the
/// CLI's `up`) belong to the machine's pid 1, which may take a second or two to reap them:
/// such a zombie holds no namespace, mount or socket, so `down` does not wait for it.
fn reap_own_anchors(spec: &LabSpec, hosts: &[Host]) {
    let me = std::process::id() as i32;
    for host in hosts {
        let file = HostPaths::new(&spec.state_dir, &host.name).anchor_file();
        let Some(pid) = fs::read_to_string(file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            continue;
        };
        if procs::status_of(pid).is_some_and(|s| s.ppid == me) {
            let mut code = 0;
            // SAFETY: waitpid on our own child; it has been killed, so this returns promptly.
            unsafe { libc::waitpid(pid, &mut code, 0) };
        }
    }
}

/// Unmounts everything at or under `dir`, deepest first; errors if anything stays mounted.
fn unmount_under(dir: &Path) -> Result<()> {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return Ok(());
        }
        // Only the outermost mounts: detaching one takes everything beneath it along, in one
        // syscall (one RCU grace period instead of one per namespace handle). Every process
        // of the lab is gone by now, so nothing can still be using them.
        let outermost = mounts.iter().filter(|m| {
            !mounts
                .iter()
                .any(|other| m.starts_with(other) && m != &other)
        });
        for mount in outermost {
            detach(mount);
        }
    }
    let left = mounts_under(dir);
    if left.is_empty() {
        Ok(())
    } else {
        Err(LabError::StillMounted {
            dir: dir.to_path_buf(),
            mounts: left
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// `umount -l`: detaches the mount and everything mounted beneath it.
#[cfg(target_os = "linux")]
fn detach(mount: &Path) {
    let Ok(c_path) = std::ffi::CString::new(mount.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: umount2 with a valid NUL-terminated path; no memory is shared.
    unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) };
}

/// Elsewhere a lab never came up (`ensure_root` refuses), so there is nothing mounted.
#[cfg(not(target_os = "linux"))]
fn detach(_mount: &Path) {}

/// Mount points at or under `dir` in this process's mount namespace, in mount order.
pub(crate) fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}
