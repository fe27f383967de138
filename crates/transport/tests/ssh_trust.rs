//! End-to-end tests of host key checking and authentication against lab hosts
//! (`APIM_LAB_TESTS=1`).

mod common;

use std::path::Path;

use apim_transport::{Auth, Cmd, HostKeyPolicy, SshTransport, Transport, TransportError};
use secrecy::SecretString;

fn host_key_error(result: Result<SshTransport, TransportError>) -> String {
    match result {
        Err(TransportError::HostKey { host, reason }) => format!("{host}: {reason}"),
        Err(other) => panic!("expected a host key error, got: {other}"),
        Ok(_) => panic!("expected a host key error, but the connection was accepted"),
    }
}

#[tokio::test]
async fn host_keys_are_checked() {
    // Should: unknown, changed and revoked keys are refused; hashed entries work;
    // accept-new records an unknown key and is then trusted by strict.
    let Some(lab) = common::lab("host_keys_are_checked", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let address = lab.host("app1").unwrap().address.to_string();
    let with_known_hosts = |path: &Path, policy: HostKeyPolicy| {
        let mut t = common::target(&lab, "app1", "root");
        t.known_hosts = path.to_path_buf();
        t.policy = policy;
        t
    };

    let empty = file("empty", "");
    let err = host_key_error(
        SshTransport::connect(with_known_hosts(&empty, HostKeyPolicy::Strict)).await,
    );
    assert!(
        err.contains("is not in") && err.contains("SHA256:"),
        "{err}"
    );

    let real = common::host_key_line(&lab, "app1", "ssh-ed25519");
    let imp = dir.path().join("imp");
    common::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "",
            "-f",
            imp.to_str().unwrap(),
        ],
    );
    let impostor = std::fs::read_to_string(dir.path().join("imp.pub"))
        .unwrap()
        .trim()
        .to_string();
    let changed = file("changed", &format!("{address}\t{impostor}\n"));
    let err = host_key_error(
        SshTransport::connect(with_known_hosts(&changed, HostKeyPolicy::AcceptNew)).await,
    );
    let real_fp = common::fingerprint_of(dir.path(), &real);
    let impostor_fp = common::fingerprint_of(dir.path(), &impostor);
    assert!(
        err.contains("CHANGED") && err.contains(&real_fp) && err.contains(&impostor_fp),
        "{err}"
    );

    let revoked = file("revoked", &format!("{address} {real}\n@revoked * {real}\n"));
    let err = host_key_error(
        SshTransport::connect(with_known_hosts(&revoked, HostKeyPolicy::Strict)).await,
    );
    assert!(
        err.contains("@revoked") && err.contains("revoked:2"),
        "{err}"
    );

    let hashed = file("hashed", &format!("{address} {real}\n"));
    common::run("ssh-keygen", &["-q", "-H", "-f", hashed.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    SshTransport::connect(with_known_hosts(&hashed, HostKeyPolicy::Strict))
        .await
        .unwrap();

    let learned = dir.path().join("sub/learned");
    let host = SshTransport::connect(with_known_hosts(&learned, HostKeyPolicy::AcceptNew))
        .await
        .unwrap();
    host.exec_ok(&Cmd::new("true")).await.unwrap();
    let recorded = std::fs::read_to_string(&learned).unwrap();
    assert!(recorded.starts_with(&format!("{address} ")), "{recorded}");
    SshTransport::connect(with_known_hosts(&learned, HostKeyPolicy::Strict))
        .await
        .unwrap();
}

#[tokio::test]
async fn encrypted_key_needs_its_passphrase() {
    // Should: an encrypted key works with its passphrase; without it, or with a wrong
    // one, the error says so and never shows the passphrase.
    let Some(lab) = common::lab("encrypted_key_needs_its_passphrase", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("enc");
    let phrase = "correct horse $(battery)";
    common::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            phrase,
            "-f",
            key.to_str().unwrap(),
        ],
    );
    let public = std::fs::read(dir.path().join("enc.pub")).unwrap();
    let out = lab
        .exec_with_stdin(
            "app1",
            &["sh", "-c", "cat >> /root/.ssh/authorized_keys"],
            Some(&public),
        )
        .unwrap();
    assert!(out.status.success());

    let with = |passphrase: Option<&str>| {
        let mut t = common::target(&lab, "app1", "root");
        t.auth = vec![Auth::KeyFile {
            path: key.clone(),
            passphrase: passphrase.map(|p| SecretString::from(p.to_string())),
        }];
        t
    };
    let host = SshTransport::connect(with(Some(phrase))).await.unwrap();
    assert_eq!(
        host.exec_ok(&Cmd::new("whoami"))
            .await
            .unwrap()
            .stdout_text(),
        "root\n"
    );

    let err = SshTransport::connect(with(None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("encrypted and no passphrase"), "{err}");
    let err = SshTransport::connect(with(Some("Zq9-not-it")))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("wrong passphrase?") && !err.contains("Zq9-not-it"),
        "{err}"
    );
    assert!(!err.contains(phrase));
}

#[tokio::test]
async fn agent_authentication() {
    // Should: a key held by ssh-agent logs in; an empty agent is reported as such.
    let Some(lab) = common::lab("agent_authentication", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let started = common::run("ssh-agent", &["-s", "-a", sock.to_str().unwrap()]);
    let pid: i32 = started
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap()
        .parse()
        .unwrap();
    let _agent = KillOnDrop(pid);

    let mut t = common::target(&lab, "app1", "root");
    t.auth = vec![Auth::AgentSocket(sock.clone())];
    let err = SshTransport::connect(t.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no identities"), "{err}");

    let added = std::process::Command::new("ssh-add")
        .arg(lab.ssh_key_path())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    assert_eq!(common::hostname_over_ssh(t).await, "app1\n");
}

struct KillOnDrop(i32);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: signals only the ssh-agent this test started, by its pid.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

#[tokio::test]
async fn password_authentication() {
    // Should: a password logs in when the server allows it (a second sshd on port 2222
    // with PasswordAuthentication on), a wrong one is refused, and methods are tried
    // in order.
    let Some(lab) = common::lab("password_authentication", 1) else {
        return;
    };
    let user = lab.deploy_user().to_string();
    let password = "pw with 'quotes' and $(x)";
    common::lab_exec_ok(
        &lab,
        "app1",
        &["chpasswd"],
        Some(format!("{user}:{password}\n").as_bytes()),
    );
    common::start_extra_sshd(&lab, "app1", 2222, &["PasswordAuthentication=yes"]);

    let dir = tempfile::tempdir().unwrap();
    let address = lab.host("app1").unwrap().address.to_string();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "[{address}]:2222 {}\n",
            common::host_key_line(&lab, "app1", "ssh-ed25519")
        ),
    )
    .unwrap();
    let with = |auth: Vec<Auth>| {
        let mut t = common::target(&lab, "app1", &user);
        t.port = 2222;
        t.known_hosts = known.clone();
        t.auth = auth;
        t
    };
    let secret = |s: &str| Auth::Password(SecretString::from(s.to_string()));

    let mut connected = None;
    for _ in 0..50 {
        match SshTransport::connect(with(vec![secret(password)])).await {
            Err(TransportError::Connect { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => {
                connected = Some(other);
                break;
            }
        }
    }
    let host = connected.expect("sshd on 2222 never came up").unwrap();
    assert_eq!(
        host.exec_ok(&Cmd::new("whoami").as_login_user())
            .await
            .unwrap()
            .stdout_text(),
        format!("{user}\n")
    );

    let err = SshTransport::connect(with(vec![secret("nope")]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("authentication failed") && err.contains("password refused"),
        "{err}"
    );
    assert!(!err.contains("nope"));
    let host = SshTransport::connect(with(vec![secret("nope"), secret(password)]))
        .await
        .unwrap();
    host.exec_ok(&Cmd::new("true").as_login_user())
        .await
        .unwrap();
}
