//! Fault injection on a running lab: `freeze`/`thaw` (SIGSTOP/SIGCONT every process of a
//! host), `kill`/`revive` (its sshd, or everything but its init), `cut`/`heal` (all its
//! traffic, both directions). Each leaves the host in a state a real machine can be in, so
//! an SSH client sees what it would see in production (see docs/lab.md for the errors).

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::db;
use crate::error::{LabError, Result};
use crate::host;
use crate::lab::{Lab, SSHD_TIMEOUT, wait_for_port, wait_until};
use crate::procs;
use crate::run::{command, run, run_with_input};

/// nft table a `cut` adds inside the host's netns (never touches anyone else's rules).
const CUT_TABLE: &str = "apimlab_cut";

/// Which processes `kill` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillScope {
    /// The host's sshd and its sessions ("connection refused"; nohup'd daemons live on).
    Sshd,
    /// Every process but the host's init: like a crash with the machine still up.
    All,
}

impl Lab {
    /// SIGSTOP every process of the host: TCP still connects (the kernel answers), but
    /// nothing responds, e.g. ssh fails with "Connection timed out during banner exchange".
    pub fn freeze(&self, name: &str) -> Result<()> {
        let ns = self.mntns(self.host(name)?)?;
        // Twice: a process forked between the scan and the signals is caught the second time.
        for _ in 0..2 {
            procs::signal_all(&procs::pids_in(ns), libc::SIGSTOP);
        }
        Ok(())
    }

    /// SIGCONT every process of the host.
    pub fn thaw(&self, name: &str) -> Result<()> {
        let ns = self.mntns(self.host(name)?)?;
        procs::signal_all(&procs::pids_in(ns), libc::SIGCONT);
        Ok(())
    }

    /// SIGKILL the host's sshd and its sessions (new connections are refused at once), or
    /// with [`KillScope::All`] every process but the host's init.
    pub fn kill(&self, name: &str, scope: KillScope) -> Result<()> {
        let host = self.host(name)?;
        let ns = self.mntns(host)?;
        let pids = procs::pids_in(ns);
        let victims: Vec<i32> = match scope {
            KillScope::Sshd => {
                let Some(listener) =
                    procs::pid_from_file(ns, &self.paths(host).private("/run/sshd.pid"))
                else {
                    return Ok(());
                };
                let sshd_exe = fs::read_link(format!("/proc/{listener}/exe")).ok();
                procs::with_descendants(listener, &pids)
                    .into_iter()
                    .filter(|&p| {
                        p == listener || fs::read_link(format!("/proc/{p}/exe")).ok() == sshd_exe
                    })
                    .collect()
            }
            KillScope::All => pids
                .into_iter()
                .filter(|&p| {
                    // Keep the anchor (outside the host's pid namespace) and the init (pid 1 inside).
                    procs::status_of(p)
                        .is_some_and(|s| s.ns_pids.len() > 1 && s.ns_pids.last() != Some(&1))
                })
                .collect(),
        };
        procs::signal_all(&victims, libc::SIGKILL);
        // Wait until the host's init has reaped them. A zombie (or a leader whose threads
        // are still exiting) may still hold its listening socket: its files are released by
        // the last exiting thread, after the namespace links in /proc are already gone.
        wait_until(Duration::from_secs(5), || {
            victims.iter().all(|&p| {
                procs::status_of(p).is_none() || procs::mntns_of(p).is_some_and(|m| m != ns)
            })
        });
        Ok(())
    }

    /// Restarts what `kill` stopped: sshd, and on the db host mariadbd.
    pub fn revive(&self, name: &str) -> Result<()> {
        let host = self.host(name)?;
        let paths = self.paths(host);
        if self.sshd_pid(name)?.is_none() {
            host::start_sshd(self.spec(), &paths)?;
            wait_for_port(host, 22, SSHD_TIMEOUT, &paths.log("sshd.log"))?;
        }
        if host.is_db && !db::answering(&paths) {
            db::start(self.spec(), &paths)?;
        }
        Ok(())
    }

    /// Drops all of the host's traffic in both directions: an nft table inside the host's
    /// netns (connections to and from it time out); without nft, its veth goes down.
    pub fn cut(&self, name: &str) -> Result<()> {
        let host = self.host(name)?;
        let paths = self.paths(host);
        let marker = paths.dir.join("cut");
        if marker.exists() {
            return Ok(());
        }
        let how = if nft_available() {
            let rules = format!(
                "table inet {CUT_TABLE} {{\n\
                   chain input {{ type filter hook input priority -300; policy accept; iifname \"eth0\" drop; }}\n\
                   chain output {{ type filter hook output priority -300; policy accept; oifname \"eth0\" drop; }}\n\
                 }}\n"
            );
            run_with_input(
                &mut self.in_netns(host, &["nft", "-f", "-"]),
                Some(rules.as_bytes()),
            )?;
            "nft"
        } else {
            run(command("ip").args(["link", "set", &self.spec().veth_name(&host.name), "down"]))?;
            "link"
        };
        fs::write(&marker, how).map_err(LabError::io(&marker))
    }

    /// Undoes `cut`.
    pub fn heal(&self, name: &str) -> Result<()> {
        let host = self.host(name)?;
        let marker = self.paths(host).dir.join("cut");
        match fs::read_to_string(&marker).ok().as_deref() {
            Some("nft") => {
                run(&mut self.in_netns(host, &["nft", "delete", "table", "inet", CUT_TABLE]))?;
            }
            Some(_) => {
                run(command("ip").args(["link", "set", &self.spec().veth_name(&host.name), "up"]))?;
            }
            None => return Ok(()),
        }
        fs::remove_file(&marker).map_err(LabError::io(&marker))
    }
}

fn nft_available() -> bool {
    Path::new("/usr/sbin/nft").exists() || Path::new("/sbin/nft").exists()
}
