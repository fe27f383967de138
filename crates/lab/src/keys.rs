//! SSH material of a lab: the lab's client key, every host's own host keys, the
//! `known_hosts` that records them (so clients can use strict host key checking), and an
//! OpenSSH `ssh_config` with one `Host` block per lab host.

use std::fs;
use std::path::Path;
use std::process::Child;

use crate::error::{LabError, Result};
use crate::host::{HostPaths, write};
use crate::run::{command, describe};
use crate::spec::{Host, LabSpec};

/// Starts `ssh-keygen` for the lab key and all host keys at once, then waits for all:
/// RSA generation dominates, and this lets it use every core.
pub(crate) fn generate(spec: &LabSpec, hosts: &[Host]) -> Result<()> {
    let mut jobs: Vec<(String, Child)> = Vec::new();
    let lab_key = spec.state_dir.join("id_ed25519");
    jobs.push(spawn_keygen(&lab_key, "ed25519", "apim-lab")?);
    for host in hosts {
        let paths = HostPaths::new(&spec.state_dir, &host.name);
        for kind in &spec.host_key_types {
            let file = paths
                .etc_upper()
                .join(format!("ssh/ssh_host_{}_key", kind.as_str()));
            jobs.push(spawn_keygen(
                &file,
                kind.as_str(),
                &format!("root@{}", host.name),
            )?);
        }
    }
    let mut failures = Vec::new();
    for (what, mut child) in jobs {
        let status = child.wait().map_err(LabError::io(&what))?;
        if !status.success() {
            failures.push(format!("{what} ({status})"));
        }
    }
    if !failures.is_empty() {
        return Err(LabError::Command {
            command: "ssh-keygen".into(),
            status: "failed".into(),
            stderr: failures.join(", "),
        });
    }
    Ok(())
}

fn spawn_keygen(file: &Path, kind: &str, comment: &str) -> Result<(String, Child)> {
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent).map_err(LabError::io(parent))?;
    }
    let mut cmd = command("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", "", "-C", comment, "-f"])
        .arg(file);
    let child = cmd.spawn().map_err(|source| LabError::Spawn {
        program: describe(&cmd),
        source,
    })?;
    Ok((file.display().to_string(), child))
}

/// The public half of the lab key, one line.
pub(crate) fn lab_public_key(spec: &LabSpec) -> Result<String> {
    let path = spec.state_dir.join("id_ed25519.pub");
    let text = fs::read_to_string(&path).map_err(LabError::io(&path))?;
    Ok(text.trim().to_string())
}

/// `known_hosts` lines `name,address type key` for every host key of every host.
pub(crate) fn write_known_hosts(spec: &LabSpec, hosts: &[Host]) -> Result<()> {
    let mut text = String::new();
    for host in hosts {
        let paths = HostPaths::new(&spec.state_dir, &host.name);
        for kind in &spec.host_key_types {
            let pub_file = paths
                .etc_upper()
                .join(format!("ssh/ssh_host_{}_key.pub", kind.as_str()));
            let line = fs::read_to_string(&pub_file).map_err(LabError::io(&pub_file))?;
            let mut fields = line.split_whitespace();
            let (Some(algo), Some(key)) = (fields.next(), fields.next()) else {
                return Err(LabError::State {
                    path: pub_file,
                    problem: "not an OpenSSH public key".into(),
                });
            };
            text.push_str(&format!("{},{} {algo} {key}\n", host.name, host.address));
        }
    }
    write(&spec.state_dir.join("known_hosts"), &text, 0o644)
}

/// An OpenSSH client config: `ssh -F <state>/ssh_config app1` logs in as root, checking the host key.
pub(crate) fn write_ssh_config(spec: &LabSpec, hosts: &[Host]) -> Result<()> {
    let dir = spec.state_dir.display();
    let mut text = format!(
        "# apim-lab {}: ssh -F {dir}/ssh_config <host>\n",
        spec.prefix
    );
    for host in hosts {
        text.push_str(&format!(
            "\nHost {name}\n  HostName {addr}\n  Port 22\n  User root\n  IdentityFile {dir}/id_ed25519\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {dir}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  \
             StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 5\n  ServerAliveInterval 5\n  \
             ServerAliveCountMax 2\n",
            name = host.name,
            addr = host.address,
        ));
    }
    write(&spec.state_dir.join("ssh_config"), &text, 0o644)
}
