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
use apim_transport::ssh::{
    Auth, HostKeyPolicy, SshTarget, SshTransport, Timeouts, config::target_from_ssh_config,
};
use secrecy::SecretString;

use crate::inventory::{HostKeyPolicy as InvPolicy, Inventory, JumpHost};
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
    #[error("ssh.config: {0}")]
    SshConfig(String),
}

/// The SSH settings of every host of the topology: from the inventory, or, with
/// `ssh.config`, from OpenSSH's configuration with the inventory's own keys on top.
pub fn targets(inv: &Inventory, topo: &Topology) -> Result<Vec<SshTarget>, ConnectError> {
    let base = Base::from_inventory(inv)?;
    topo.hosts
        .iter()
        .map(|h| match inv.ssh.config_file() {
            None => Ok(base.target(
                h.name.as_str(),
                &h.address.to_string(),
                h.ssh_port,
                h.ssh_user.as_str(),
            )),
            Some(file) => {
                let file = file.map(|f| resolve(&inv.base_dir, f));
                from_ssh_config(inv, &base, h, file.as_deref())
            }
        })
        .collect()
}

/// What the inventory says about every host.
struct Base {
    auth: Vec<Auth>,
    known_hosts: PathBuf,
    policy: HostKeyPolicy,
    timeouts: Timeouts,
    jump: Option<JumpHost>,
    sudo: bool,
    default_user: String,
}

impl Base {
    fn from_inventory(inv: &Inventory) -> Result<Base, ConnectError> {
        let ssh = &inv.ssh;
        let secret = |field: &'static str, r: &crate::inventory::SecretRef| {
            r.resolve()
                .map(|s| SecretString::from(s.expose().to_string()))
                .map_err(|e| ConnectError::Secret {
                    field,
                    message: e.to_string(),
                })
        };
        let mut auth = Vec::new();
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
        if auth.is_empty() {
            // With no key named and no agent, `ssh` tries its default identities;
            // an operator who can `ssh app1` expects this tool to get in too.
            let home =
                std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
            auth.extend(
                default_identities(&home)
                    .into_iter()
                    .map(|path| Auth::KeyFile {
                        path,
                        passphrase: None,
                    }),
            );
        }
        if let Some(p) = &ssh.password {
            auth.push(Auth::Password(secret("ssh.password", p.get_ref())?));
        }
        let connect = Duration::from_secs(
            ssh.connect_timeout_secs
                .unwrap_or(crate::inventory::Ssh::DEFAULT_CONNECT_TIMEOUT_SECS),
        );
        Ok(Base {
            auth,
            known_hosts: ssh
                .known_hosts
                .as_ref()
                .map(|k| resolve(&inv.base_dir, k))
                .unwrap_or_else(default_known_hosts),
            policy: policy(ssh.host_key_policy.unwrap_or(InvPolicy::Strict)),
            timeouts: Timeouts {
                connect,
                auth: connect,
                channel_open: connect,
                command: Duration::from_secs(ssh.command_timeout_secs),
                ..Timeouts::default()
            },
            jump: ssh.jump.clone(),
            sudo: ssh.sudo,
            default_user: ssh.default_user().to_string(),
        })
    }

    fn target(&self, name: &str, address: &str, port: u16, user: &str) -> SshTarget {
        let mut t = SshTarget::new(
            name.to_string(),
            address.to_string(),
            self.known_hosts.clone(),
        );
        t.port = port;
        t.user = user.to_string();
        t.auth = self.auth.clone();
        t.policy = self.policy;
        t.timeouts = self.timeouts;
        t.sudo = self.sudo;
        t.jump = self.jump.as_ref().map(|j| {
            let mut jump = SshTarget::new(
                j.address.to_string(),
                j.address.to_string(),
                t.known_hosts.clone(),
            );
            jump.port = j.port;
            jump.user = j
                .user
                .as_ref()
                .map_or(self.default_user.clone(), |u| u.to_string());
            jump.auth = t.auth.clone();
            jump.policy = t.policy;
            jump.timeouts = t.timeouts;
            Box::new(jump)
        });
        t
    }
}

fn policy(p: InvPolicy) -> HostKeyPolicy {
    match p {
        InvPolicy::Strict => HostKeyPolicy::Strict,
        InvPolicy::AcceptNew => HostKeyPolicy::AcceptNew,
    }
}

/// A host's settings from `ssh -G <host name>`; every key the inventory sets wins, as a
/// command-line option wins over ssh_config. A name the configuration does not know
/// resolves to itself: then the inventory's address is used.
fn from_ssh_config(
    inv: &Inventory,
    base: &Base,
    h: &crate::topology::HostPlan,
    file: Option<&std::path::Path>,
) -> Result<SshTarget, ConnectError> {
    let ssh = &inv.ssh;
    let name = h.name.as_str();
    let mut t =
        target_from_ssh_config(name, file).map_err(|e| ConnectError::SshConfig(e.to_string()))?;
    if t.address.eq_ignore_ascii_case(name) {
        t.address = h.address.to_string();
    }
    let host = inv.hosts.iter().find(|x| x.name() == &h.name);
    if let Some(user) = host.and_then(|x| x.user.as_ref()).or(ssh.user.as_ref()) {
        t.user = user.to_string();
    }
    if let Some(port) = host.and_then(|x| x.port).or(ssh.port) {
        t.port = port;
    }
    overlay(&mut t, ssh, base);
    if ssh.jump.is_some() {
        t.jump = base.target(name, &t.address, t.port, &t.user).jump;
    } else {
        // A key set in the inventory holds for the whole path, jump hops included.
        let mut hop = t.jump.as_deref_mut();
        while let Some(jump) = hop {
            overlay(jump, ssh, base);
            hop = jump.jump.as_deref_mut();
        }
    }
    t.sudo = base.sudo;
    Ok(t)
}

/// The inventory's own keys over a target read from the OpenSSH config.
fn overlay(t: &mut SshTarget, ssh: &crate::inventory::Ssh, base: &Base) {
    if ssh.identity_file.is_some() || ssh.password.is_some() {
        // The inventory's key or password first, then the configuration's keys.
        let has_agent = base.auth.iter().any(|a| matches!(a, Auth::Agent));
        let mut auth = base.auth.clone();
        auth.extend(
            std::mem::take(&mut t.auth)
                .into_iter()
                .filter(|a| !(has_agent && matches!(a, Auth::Agent))),
        );
        t.auth = auth;
    }
    if ssh.known_hosts.is_some() {
        t.known_hosts = base.known_hosts.clone();
    }
    if ssh.host_key_policy.is_some() {
        t.policy = base.policy;
    }
    if ssh.connect_timeout_secs.is_some() {
        t.timeouts.connect = base.timeouts.connect;
        t.timeouts.auth = base.timeouts.auth;
        t.timeouts.channel_open = base.timeouts.channel_open;
    }
    t.timeouts.command = base.timeouts.command;
}

fn resolve(base: &std::path::Path, p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// OpenSSH's default identities that exist under `home`, in the order `ssh` tries them.
fn default_identities(home: &std::path::Path) -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| home.join(".ssh").join(name))
        .filter(|p| p.is_file())
        .collect()
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
            let started = std::time::Instant::now();
            let result = SshTransport::connect(t)
                .await
                .map(|t| Arc::new(t) as Arc<dyn Transport>)
                .map_err(|e| e.to_string());
            if result.is_ok() {
                tracing::info!("{name}: connected in {}ms", started.elapsed().as_millis());
            }
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
    let mut lost = Vec::new();
    for (name, result) in connect_each(targets).await {
        match result {
            Ok(t) => {
                hosts.insert(name, t);
            }
            Err(e) => {
                errors.push(e);
                lost.push(name);
            }
        }
    }
    if errors.is_empty() {
        Ok(hosts)
    } else {
        errors.sort();
        errors.push(format!(
            "nothing was changed on any host; to leave {} out: {}",
            if lost.len() == 1 { "it" } else { "them" },
            limit_out(&lost)
        ));
        Err(ConnectError::Unreachable(errors.join("\n")))
    }
}

/// The `--limit` that leaves `hosts` out, quoted for a shell (`!` is history
/// expansion in an interactive bash).
pub fn limit_out(hosts: &[String]) -> String {
    let patterns: Vec<String> = hosts.iter().map(|h| format!("!{h}")).collect();
    format!("--limit '{}'", patterns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Secrets;

    /// An inventory with `[ssh]` set to `ssh`, app1 carrying every WSO2 role, and db.
    fn inventory(ssh: &str) -> (Inventory, Topology) {
        let text = crate::topology::tests::inventory_with(&format!(
            "[ssh]\n{ssh}\n[[hosts]]\nname = \"app1\"\naddress = \"127.0.60.1\"\n\
             roles = [\"keymanager\", \"gateway\", \"publisher\", \"store\"]\n"
        ));
        let (inv, problems) =
            Inventory::parse_with_problems(&text, "t.toml", Secrets::Skip).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let topo = Topology::from_inventory(&inv).unwrap();
        (inv, topo)
    }

    fn by_name(targets: Vec<SshTarget>) -> HashMap<String, SshTarget> {
        targets.into_iter().map(|t| (t.name.clone(), t)).collect()
    }

    #[test]
    fn default_identities_are_the_ones_ssh_tries_in_its_order() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".ssh")).unwrap();
        assert!(default_identities(home.path()).is_empty());
        for name in ["id_rsa", "id_ed25519", "id_dsa"] {
            std::fs::write(home.path().join(".ssh").join(name), "key").unwrap();
        }
        let ssh = home.path().join(".ssh");
        assert_eq!(
            default_identities(home.path()),
            vec![ssh.join("id_ed25519"), ssh.join("id_rsa")]
        );
    }

    #[test]
    fn an_unreachable_host_names_the_limit_that_leaves_it_out() {
        // A port nobody listens on: the connection is refused at once.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let mut t = SshTarget::new("app3", "127.0.0.1", "/nonexistent/known_hosts");
        t.port = port;
        let err = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(connect_all(vec![t]))
            .err()
            .expect("nobody listens");
        let text = err.to_string();
        assert!(text.contains("app3"), "{text}");
        assert!(
            text.ends_with("nothing was changed on any host; to leave it out: --limit '!app3'"),
            "{text}"
        );
        assert_eq!(
            limit_out(&["app1".into(), "db".into()]),
            "--limit '!app1,!db'"
        );
    }

    #[test]
    fn ssh_config_gives_each_host_its_settings_and_the_inventory_keys_win() {
        // should: app1 takes address, user, port, key, known_hosts, policy and jump from
        // the OpenSSH config; db (unknown there) keeps its inventory address.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ops");
        std::fs::write(&key, "not read here").unwrap();
        let config = dir.path().join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host app1\n  HostName 10.20.30.40\n  User ops\n  Port 2222\n  IdentityFile {}\n  \
                 UserKnownHostsFile {}/kh\n  StrictHostKeyChecking accept-new\n  ProxyJump bastion\n\
                 Host bastion\n  HostName 10.20.30.1\n  User jumper\n  StrictHostKeyChecking accept-new\n",
                key.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let (inv, topo) = inventory(&format!("config = {:?}", config.to_str().unwrap()));
        let t = by_name(targets(&inv, &topo).unwrap());
        let app1 = &t["app1"];
        assert_eq!(
            (app1.address.as_str(), app1.user.as_str(), app1.port),
            ("10.20.30.40", "ops", 2222)
        );
        assert!(matches!(&app1.auth[0], Auth::KeyFile { path, .. } if *path == key));
        assert_eq!(app1.known_hosts, dir.path().join("kh"));
        assert_eq!(app1.policy, HostKeyPolicy::AcceptNew);
        let jump = app1.jump.as_ref().expect("the ProxyJump hop");
        assert_eq!(
            (jump.address.as_str(), jump.user.as_str()),
            ("10.20.30.1", "jumper")
        );
        assert_eq!(t["db"].address, "127.0.10.250", "unknown to the config");

        // Keys written in the inventory win over the configuration.
        let (inv, topo) = inventory(&format!(
            "config = {:?}\nuser = \"admin2\"\nport = 22\nhost_key_policy = \"strict\"",
            config.to_str().unwrap()
        ));
        let t = by_name(targets(&inv, &topo).unwrap());
        let app1 = &t["app1"];
        assert_eq!((app1.user.as_str(), app1.port), ("admin2", 22));
        assert_eq!(app1.policy, HostKeyPolicy::Strict);
        let jump = app1.jump.as_ref().unwrap();
        assert_eq!(
            jump.policy,
            HostKeyPolicy::Strict,
            "the bastion is checked as strictly"
        );
        assert_eq!(app1.address, "10.20.30.40");
    }

    #[test]
    fn a_broken_ssh_config_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ssh_config");
        std::fs::write(&config, "Host app1\n  NoSuchOption yes\n").unwrap();
        let (inv, topo) = inventory(&format!("config = {:?}", config.to_str().unwrap()));
        let err = targets(&inv, &topo).unwrap_err().to_string();
        assert!(
            err.starts_with("ssh.config: ") && err.contains("app1"),
            "{err}"
        );
    }
}
