//! Shaped links between the controller and the hosts: a one-way delay and a rate per
//! direction, per host or through one shared uplink.
//!
//! The kernel here has no netem (tc's `tbf` limits rate but cannot delay), so the shaping is
//! a user-space relay (`shaper.py`, run by python3 on the controller). An nft table in the
//! controller's namespace redirects the controller's new connections to each host's port 22
//! to the relay's port for that host on the controller's lab address; the relay connects on
//! with a packet mark the rule skips. Nothing changes for the hosts or the inventory: every
//! SSH client on the controller (apim-deploy, OpenSSH's scp) crosses the same shaped link.
//! Traffic among the hosts stays unshaped, as a fast network among them. Connections opened
//! before `shape` keep their unshaped path.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::{Lab, wait_until};
use crate::run::{command, describe, run, run_with_input};
use crate::spec::LabSpec;

const SCRIPT: &str = include_str!("shaper.py");
/// The relay's packet mark: its own connections to the hosts are not redirected again.
const MARK: u32 = 0x5a;
/// The relay's port for the host at index i is `PORT_BASE + i` on the controller address.
const PORT_BASE: u16 = 2200;

/// How the links between the controller and the hosts are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Delay each way, in milliseconds (a round trip costs twice this).
    pub delay_ms: u32,
    /// Controller to host, in Mbit/s (0: unlimited).
    pub up_mbit: f64,
    /// Host to controller, in Mbit/s (0: unlimited).
    pub down_mbit: f64,
    /// One link for all hosts (each direction shared), instead of one link per host.
    pub shared_uplink: bool,
}

/// Bytes the relay carried for one host (up: controller to host).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct LinkBytes {
    pub up: u64,
    pub down: u64,
}

fn dir(spec: &LabSpec) -> PathBuf {
    spec.state_dir.join("shaper")
}

fn table(spec: &LabSpec) -> String {
    format!("apimlab_shape_{}", spec.tag)
}

impl Lab {
    /// Shapes the links between the controller and every host (replacing an earlier shape).
    pub fn shape(&self, shape: &Shape) -> Result<()> {
        self.unshape()?;
        let spec = self.spec();
        let dir = dir(spec);
        fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let script = dir.join("shaper.py");
        fs::write(&script, SCRIPT).map_err(LabError::io(&script))?;
        let controller = spec.controller_address().to_string();
        let links: Vec<serde_json::Value> = self
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                serde_json::json!({
                    "host": host.name,
                    "listen": controller,
                    "port": PORT_BASE + i as u16,
                    "target": host.address.to_string(),
                    "target_port": 22,
                })
            })
            .collect();
        let ready = dir.join("ready");
        let config = serde_json::json!({
            "delay_ms": shape.delay_ms,
            "up_bytes_per_s": shape.up_mbit * 1e6 / 8.0,
            "down_bytes_per_s": shape.down_mbit * 1e6 / 8.0,
            "shared_uplink": shape.shared_uplink,
            "links": links,
            "counters": dir.join("counters.json"),
            "pid_file": dir.join("pid"),
            "ready_file": ready,
        });
        let config_path = dir.join("config.json");
        fs::write(&config_path, config.to_string()).map_err(LabError::io(&config_path))?;
        let shape_path = dir.join("shape.json");
        let text = serde_json::to_string(shape).expect("shape serializes");
        fs::write(&shape_path, text).map_err(LabError::io(&shape_path))?;

        let log = dir.join("shaper.log");
        let file = fs::File::create(&log).map_err(LabError::io(&log))?;
        let mut cmd = command("setsid");
        cmd.arg("-f")
            .arg("/usr/bin/python3")
            .arg(&script)
            .arg(&config_path)
            .stdout(file.try_clone().map_err(LabError::io(&log))?)
            .stderr(file);
        let status = cmd.status().map_err(|source| LabError::Spawn {
            program: describe(&cmd),
            source,
        })?;
        if !status.success() || !wait_until(Duration::from_secs(10), || ready.exists()) {
            return Err(LabError::Host {
                host: "controller".into(),
                problem: "the link shaper did not start".into(),
                log,
            });
        }
        let mut rules = format!(
            "table ip {t} {{\n chain output {{ type nat hook output priority -100; policy accept;\n",
            t = table(spec)
        );
        for (i, host) in self.hosts().iter().enumerate() {
            rules.push_str(&format!(
                "  ip daddr {} tcp dport 22 meta mark != {MARK:#x} dnat to {controller}:{}\n",
                host.address,
                PORT_BASE + i as u16
            ));
        }
        rules.push_str(" }\n}\n");
        run_with_input(command("nft").args(["-f", "-"]), Some(rules.as_bytes()))?;
        Ok(())
    }

    /// Removes the shaping (new connections go straight to the hosts again).
    pub fn unshape(&self) -> Result<()> {
        remove(self.spec())
    }

    /// The shape in force, if any.
    pub fn current_shape(&self) -> Option<Shape> {
        let text = fs::read_to_string(dir(self.spec()).join("shape.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Bytes the shaper has carried per host since `shape` (refreshed every 0.1 s).
    pub fn shaped_bytes(&self) -> Result<Vec<(String, LinkBytes)>> {
        let path = dir(self.spec()).join("counters.json");
        let text = fs::read_to_string(&path).map_err(LabError::io(&path))?;
        let map: std::collections::BTreeMap<String, LinkBytes> = serde_json::from_str(&text)
            .map_err(|e| LabError::Io {
                path: path.clone(),
                source: std::io::Error::other(e),
            })?;
        Ok(map.into_iter().collect())
    }
}

/// Deletes the nft table and stops the relay; nothing to do when the lab is not shaped.
pub(crate) fn remove(spec: &LabSpec) -> Result<()> {
    let dir = dir(spec);
    if !dir.exists() {
        return Ok(());
    }
    let listed = command("nft")
        .args(["list", "table", "ip", &table(spec)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if listed.is_ok_and(|s| s.success()) {
        run(command("nft").args(["delete", "table", "ip", &table(spec)]))?;
    }
    stop_relay(&dir);
    fs::remove_dir_all(&dir).map_err(LabError::io(&dir))
}

/// SIGKILLs the relay if its recorded pid is still the relay (pids are recycled).
fn stop_relay(dir: &Path) {
    let Some(pid) = fs::read_to_string(dir.join("pid"))
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    let script = dir.join("shaper.py");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if String::from_utf8_lossy(&cmdline).contains(&*script.to_string_lossy()) {
        // SAFETY: kill(2) with a pid we just checked is our relay.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
