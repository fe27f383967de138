//! From the inventory's SSH settings to live transports: one connection per
//! host, opened concurrently, reused for all the work of a run.
//!
//! **Invariant:** this is the only place in the root crate that opens a
//! connection; everything above it takes `Arc<dyn Transport>`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apim_transport::Transport;
use apim_transport::ssh::{Auth, HostKeyPolicy, SshTarget, SshTransport, Timeouts};
use secrecy::SecretString;

use crate::inventory::{HostKeyPolicy as InvPolicy, Inventory};
use crate::topology::Topology;

/// Open connections, by host name.
pub type Hosts = HashMap<String, Arc<dyn Transport>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("secret {field}: {message}")]
    Secret {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    Unreachable(String),
}

/// The SSH settings of every host of the topology.
pub fn targets(inv: &Inventory, topo: &Topology) -> Result<Vec<SshTarget>, ConnectError> {
    let ssh = &inv.ssh;
    let mut auth = Vec::new();
    let secret = |field: &'static str, r: &crate::inventory::SecretRef| {
        r.resolve()
            .map(|s| SecretString::from(s.expose().to_string()))
            .map_err(|e| ConnectError::Secret {
                field,
                message: e.to_string(),
            })
    };
    if let Some(path) = &ssh.identity_file {
        let passphrase = match &ssh.passphrase {
            Some(p) => Some(secret("ssh.passphrase", p.get_ref())?),
            None => None,
        };
        auth.push(Auth::KeyFile {
            path: resolve(&inv.base_dir, path),
            passphrase,
        });
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        auth.push(Auth::Agent);
    }
    if let Some(p) = &ssh.password {
        auth.push(Auth::Password(secret("ssh.password", p.get_ref())?));
    }
    let known_hosts = ssh
        .known_hosts
        .as_ref()
        .map(|k| resolve(&inv.base_dir, k))
        .unwrap_or_else(default_known_hosts);
    let policy = match ssh.host_key_policy {
        InvPolicy::Strict => HostKeyPolicy::Strict,
        InvPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
    };
    let timeouts = Timeouts {
        connect: Duration::from_secs(ssh.connect_timeout_secs),
        auth: Duration::from_secs(ssh.connect_timeout_secs),
        channel_open: Duration::from_secs(ssh.connect_timeout_secs),
        command: Duration::from_secs(ssh.command_timeout_secs),
        ..Timeouts::default()
    };
    let jump = ssh.jump.as_ref().map(|j| {
        let mut t = SshTarget::new(
            j.address.to_string(),
            j.address.to_string(),
            known_hosts.clone(),
        );
        t.port = j.port;
        t.user = j.user.as_ref().unwrap_or(&ssh.user).to_string();
        t.auth = auth.clone();
        t.policy = policy;
        t.timeouts = timeouts;
        Box::new(t)
    });
    Ok(topo
        .hosts
        .iter()
        .map(|h| {
            let mut t = SshTarget::new(
                h.name.to_string(),
                h.address.to_string(),
                known_hosts.clone(),
            );
            t.port = h.ssh_port;
            t.user = h.ssh_user.to_string();
            t.auth = auth.clone();
            t.policy = policy;
            t.jump = jump.clone();
            t.sudo = ssh.sudo;
            t.timeouts = timeouts;
            t
        })
        .collect())
}

fn resolve(base: &std::path::Path, p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn default_known_hosts() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".ssh/known_hosts")
}

/// Connects to every target concurrently; each host's connection or the reason
/// it could not be opened (for commands that report per host and go on).
pub async fn connect_each(
    targets: Vec<SshTarget>,
) -> BTreeMap<String, Result<Arc<dyn Transport>, String>> {
    let mut set = tokio::task::JoinSet::new();
    for t in targets {
        set.spawn(async move {
            let name = t.name.clone();
            let result = SshTransport::connect(t)
                .await
                .map(|t| Arc::new(t) as Arc<dyn Transport>)
                .map_err(|e| e.to_string());
            (name, result)
        });
    }
    let mut all = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        let (name, result) = joined.expect("connect task panicked");
        all.insert(name, result);
    }
    all
}

/// Connects to every host concurrently. Any host that cannot be reached fails
/// the whole call (naming every such host), so a run stops before it changes
/// anything anywhere.
pub async fn connect_all(targets: Vec<SshTarget>) -> Result<Hosts, ConnectError> {
    let mut hosts: Hosts = HashMap::new();
    let mut errors = Vec::new();
    for (name, result) in connect_each(targets).await {
        match result {
            Ok(t) => {
                hosts.insert(name, t);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(hosts)
    } else {
        errors.sort();
        errors.push("nothing was changed on any host".into());
        Err(ConnectError::Unreachable(errors.join("\n")))
    }
}
