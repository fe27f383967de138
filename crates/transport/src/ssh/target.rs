//! `SshTarget`: everything needed to reach one host over SSH. It lives in this crate
//! so the transport does not depend on the inventory; the caller maps its own
//! configuration (inventory, `~/.ssh/config`) into it.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// How to reach and log into one host.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The host's name in messages (e.g. the inventory's `app1`).
    pub name: String,
    /// Address or DNS name to connect to; also the name looked up in known_hosts.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Methods tried in order until one succeeds.
    pub auth: Vec<Auth>,
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    /// Reach this host through another one (ProxyJump, via direct-tcpip).
    pub jump: Option<Box<SshTarget>>,
    /// Commands that want root get `sudo -n --` (the user must have password-less sudo).
    pub sudo: bool,
    pub timeouts: Timeouts,
    /// Channels open at once on the connection (sshd's MaxSessions defaults to 10,
    /// and frees slots asynchronously; 4 never hit it in measurements).
    pub max_channels: usize,
}

impl SshTarget {
    /// A target with defaults: port 22, root, strict host keys, no auth methods yet.
    pub fn new(
        name: impl Into<String>,
        address: impl Into<String>,
        known_hosts: impl Into<PathBuf>,
    ) -> Self {
        SshTarget {
            name: name.into(),
            address: address.into(),
            port: 22,
            user: "root".into(),
            auth: Vec::new(),
            known_hosts: known_hosts.into(),
            policy: HostKeyPolicy::Strict,
            jump: None,
            sudo: false,
            timeouts: Timeouts::default(),
            max_channels: 4,
        }
    }

    /// `user@address:port` for messages.
    pub fn endpoint(&self) -> String {
        format!("{}@{}:{}", self.user, self.address, self.port)
    }
}

/// One way to authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A private key file (OpenSSH or PEM), with the passphrase if it is encrypted.
    KeyFile {
        path: PathBuf,
        passphrase: Option<SecretString>,
    },
    /// Every identity of the ssh-agent at `$SSH_AUTH_SOCK`.
    Agent,
    /// Every identity of the ssh-agent listening on this socket.
    AgentSocket(PathBuf),
    /// A password (sshd must allow PasswordAuthentication).
    Password(SecretString),
}

/// What to do with a host key that known_hosts does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (default).
    #[default]
    Strict,
    /// Record an unknown key and go on; a changed key is still refused.
    AcceptNew,
}

impl std::str::FromStr for HostKeyPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "strict" | "yes" => Ok(HostKeyPolicy::Strict),
            "accept-new" => Ok(HostKeyPolicy::AcceptNew),
            other => Err(format!(
                "host key policy {other:?}: allowed are strict, accept-new"
            )),
        }
    }
}

/// Limits for each stage of talking to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect, then again banner exchange plus key exchange.
    pub connect: Duration,
    /// Each authentication attempt.
    pub auth: Duration,
    /// Opening a channel (retries included).
    pub channel_open: Duration,
    /// Each command, unless the command sets its own.
    pub command: Duration,
    /// Keepalive interval; the session is dropped after 3 unanswered ones, so a
    /// host that freezes or drops off the network is declared lost within about
    /// four intervals, whatever command was running.
    pub keepalive: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            auth: Duration::from_secs(10),
            channel_open: Duration::from_secs(10),
            command: Duration::from_secs(600),
            keepalive: Duration::from_secs(3),
        }
    }
}
