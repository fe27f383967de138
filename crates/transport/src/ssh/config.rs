//! Settings from `~/.ssh/config`, read through `ssh -G ALIAS` (OpenSSH evaluates
//! `Match`, `Include`, `%` tokens and defaults itself; measured to be the only
//! faithful reader, see ssh-notes.md §1.7), and the `[user@]host[:port]` jump syntax.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::TransportError;
use crate::ssh::target::{Auth, HostKeyPolicy, SshTarget};

/// The fields of `ssh -G` output apim-deploy uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigEntry {
    pub hostname: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub strict_host_key_checking: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// Parses `ssh -G` output (`key value` lines, keys in lower case).
pub fn parse_ssh_g(text: &str) -> SshConfigEntry {
    let mut entry = SshConfigEntry::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let value = value.trim();
        match key {
            "hostname" => entry.hostname = value.to_string(),
            "user" => entry.user = Some(value.to_string()),
            "port" => entry.port = value.parse().ok(),
            "identityfile" => entry.identity_files.push(expand_home(value)),
            "proxyjump" if value != "none" => entry.proxy_jump = Some(value.to_string()),
            "userknownhostsfile" => {
                entry
                    .user_known_hosts_files
                    .extend(value.split_whitespace().map(expand_home));
            }
            "stricthostkeychecking" => entry.strict_host_key_checking = Some(value.to_string()),
            "connecttimeout" if value != "none" => {
                entry.connect_timeout = value.parse().ok().map(Duration::from_secs);
            }
            _ => {}
        }
    }
    entry
}

/// Runs `ssh -G [-F config_file] alias` and parses it.
pub fn resolve(alias: &str, config_file: Option<&Path>) -> Result<SshConfigEntry, TransportError> {
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(file) = config_file {
        cmd.arg("-F").arg(file);
    }
    let out = cmd
        .arg("--")
        .arg(alias)
        .output()
        .map_err(|source| TransportError::Io {
            host: alias.to_string(),
            what: "run `ssh -G` (is the OpenSSH client installed?)".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(TransportError::Config {
            host: alias.to_string(),
            reason: format!(
                "`ssh -G {alias}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(parse_ssh_g(&String::from_utf8_lossy(&out.stdout)))
}

/// A target built from `~/.ssh/config` (or `config_file`) for `alias`: address, user,
/// port, the identity files that exist plus the agent, known_hosts, host key policy,
/// connect timeout and the first ProxyJump hop (resolved the same way).
pub fn target_from_ssh_config(
    alias: &str,
    config_file: Option<&Path>,
) -> Result<SshTarget, TransportError> {
    target_at_depth(alias, config_file, 0)
}

/// How many ProxyJump hops are followed before the chain is taken for a cycle
/// (OpenSSH itself only refuses a host that jumps through itself).
const MAX_JUMP_HOPS: usize = 8;

fn target_at_depth(
    alias: &str,
    config_file: Option<&Path>,
    depth: usize,
) -> Result<SshTarget, TransportError> {
    if depth > MAX_JUMP_HOPS {
        return Err(TransportError::Config {
            host: alias.to_string(),
            reason: format!("ProxyJump chain longer than {MAX_JUMP_HOPS} hops (a cycle?)"),
        });
    }
    let entry = resolve(alias, config_file)?;
    let known_hosts = entry
        .user_known_hosts_files
        .first()
        .cloned()
        .unwrap_or_else(|| expand_home("~/.ssh/known_hosts"));
    let mut target = SshTarget::new(alias, entry.hostname.clone(), known_hosts);
    if let Some(user) = entry.user {
        target.user = user;
    }
    target.port = entry.port.unwrap_or(22);
    target.auth = entry
        .identity_files
        .iter()
        .filter(|p| p.exists())
        .map(|p| Auth::KeyFile {
            path: p.clone(),
            passphrase: None,
        })
        .collect();
    target.auth.push(Auth::Agent);
    if entry.strict_host_key_checking.as_deref() == Some("accept-new") {
        target.policy = HostKeyPolicy::AcceptNew;
    }
    if let Some(limit) = entry.connect_timeout {
        target.timeouts.connect = limit;
    }
    if let Some(jumps) = entry.proxy_jump {
        let first = jumps.split(',').next().unwrap_or_default();
        let (user, host, port) =
            parse_jump_spec(first).map_err(|reason| TransportError::Config {
                host: alias.to_string(),
                reason,
            })?;
        let mut jump = target_at_depth(&host, config_file, depth + 1)?;
        if let Some(user) = user {
            jump.user = user;
        }
        if let Some(port) = port {
            jump.port = port;
        }
        target.jump = Some(Box::new(jump));
    }
    Ok(target)
}

/// Splits `[user@]host[:port]` (IPv6 as `[addr]:port`).
pub fn parse_jump_spec(spec: &str) -> Result<(Option<String>, String, Option<u16>), String> {
    let spec = spec.trim().trim_start_matches("ssh://");
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or(format!("jump {spec:?}: missing `]`"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("jump {spec:?}: port {p:?} is not a number 1-65535"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!(
            "jump {spec:?}: no host; expected [user@]host[:port]"
        ));
    }
    Ok((user, host, port))
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_g_fields_are_read() {
        let text = "user deploy\nhostname 127.0.10.1\nport 2222\nidentityfile /k/id_ed25519\n\
                    identityfile /k/id_rsa\nproxyjump jump@127.0.10.5:22\n\
                    userknownhostsfile /k/known_hosts /k/known_hosts2\n\
                    stricthostkeychecking accept-new\nconnecttimeout 5\n";
        let e = parse_ssh_g(text);
        assert_eq!(e.hostname, "127.0.10.1");
        assert_eq!((e.user.as_deref(), e.port), (Some("deploy"), Some(2222)));
        assert_eq!(e.identity_files.len(), 2);
        assert_eq!(e.proxy_jump.as_deref(), Some("jump@127.0.10.5:22"));
        assert_eq!(
            e.user_known_hosts_files[1],
            PathBuf::from("/k/known_hosts2")
        );
        assert_eq!(e.connect_timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn jump_specs() {
        assert_eq!(
            parse_jump_spec("u@h:2222").unwrap(),
            (Some("u".into()), "h".into(), Some(2222))
        );
        assert_eq!(parse_jump_spec("h").unwrap(), (None, "h".into(), None));
        assert_eq!(
            parse_jump_spec("[::1]:22").unwrap(),
            (None, "::1".into(), Some(22))
        );
        assert!(parse_jump_spec("u@h:x").unwrap_err().contains("port"));
    }

    #[test]
    fn ssh_g_applies_match_blocks() {
        // Should: a real `ssh -G` run honours Match and global options (skipped without ssh).
        if std::process::Command::new("ssh")
            .arg("-V")
            .output()
            .is_err()
        {
            eprintln!("skipped: no ssh client");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config");
        std::fs::write(
            &file,
            "User=everyone\nHost app-* !app-legacy\n  HostName 127.0.10.1\n  Port 2200\n\
             Match host db-*\n  Port 3300\n",
        )
        .unwrap();
        let app = resolve("app-1", Some(&file)).unwrap();
        assert_eq!(
            (app.hostname.as_str(), app.port, app.user.as_deref()),
            ("127.0.10.1", Some(2200), Some("everyone"))
        );
        let db = resolve("db-1", Some(&file)).unwrap();
        assert_eq!(db.port, Some(3300));
        let legacy = resolve("app-legacy", Some(&file)).unwrap();
        assert_eq!(legacy.port, Some(22));
    }
}
