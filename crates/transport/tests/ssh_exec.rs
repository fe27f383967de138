//! End-to-end tests of `SshTransport` against real sshd hosts of the lab
//! (`APIM_LAB_TESTS=1`): command semantics, quoting, file operations, concurrency.

mod common;

use std::sync::Arc;

use apim_transport::{Cmd, ExitStatus, FileKind, SshTransport, Transport, TransportError};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn commands_over_ssh_behave_like_local_ones() {
    // Should: stdin in; stdout, stderr, exit codes and signals out; nasty arguments unchanged.
    let Some(lab) = common::lab("commands_over_ssh_behave_like_local_ones", 1) else {
        return;
    };
    let host = SshTransport::connect(common::target(&lab, "app1", "root"))
        .await
        .unwrap();

    let out = host
        .exec(
            &Cmd::new("sh")
                .arg("-c")
                .arg("cat; echo to-stderr >&2; exit 3")
                .stdin_bytes("hello\n"),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"hello\n"[..], &b"to-stderr\n"[..])
    );
    assert_eq!(out.status, ExitStatus::Code(3));

    let out = host
        .exec(&Cmd::new("sh").arg("-c").arg("kill -TERM $$"))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Signal("TERM".into()));

    let out = host.exec_ok(&common::print_nasty()).await.unwrap();
    common::assert_nasty_arrived(&out.stdout);
    let pwned = host
        .exec(
            &Cmd::new("ls")
                .arg("/tmp/apim-pwned")
                .arg("/tmp/apim-pwned2"),
        )
        .await
        .unwrap();
    assert_eq!(
        pwned.status,
        ExitStatus::Code(2),
        "a quoted $(...) or backtick was executed"
    );

    let err = host.exec_ok(&Cmd::new("false")).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("app1: `false` failed with exit code 1"),
        "{err}"
    );
}

#[tokio::test]
async fn file_operations_over_ssh() {
    // Should: read, atomic write (mode kept), stat and a verified upload work on a real host.
    let Some(lab) = common::lab("file_operations_over_ssh", 1) else {
        return;
    };
    let host = SshTransport::connect(common::target(&lab, "app1", "root"))
        .await
        .unwrap();

    assert_eq!(host.read_file("/opt/none").await.unwrap(), None);
    host.exec_ok(&Cmd::new("install").args(["-m", "600", "/dev/null", "/opt/conf.xml"]))
        .await
        .unwrap();
    host.write_file_atomic("/opt/conf.xml", b"<a/>\n", None, None)
        .await
        .unwrap();
    assert_eq!(
        host.read_file("/opt/conf.xml").await.unwrap().as_deref(),
        Some(&b"<a/>\n"[..])
    );
    let st = host.stat("/opt/conf.xml").await.unwrap().unwrap();
    assert_eq!((st.kind, st.mode, st.size), (FileKind::File, 0o600, 5));
    // what the host itself sees, read outside SSH
    assert_eq!(
        std::fs::read(lab.host_path("app1", "/opt/conf.xml").unwrap()).unwrap(),
        b"<a/>\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("blob");
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let sha = hex::encode(Sha256::digest(&data));
    host.upload(&src, "/opt/blob", &sha, None, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(lab.host_path("app1", "/opt/blob").unwrap()).unwrap(),
        data
    );
    let err = host
        .upload(&src, "/opt/blob2", &"ab".repeat(32), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::HashMismatch { .. }), "{err}");
    assert_eq!(host.stat("/opt/blob2").await.unwrap(), None);
}

#[tokio::test]
async fn many_concurrent_commands_share_one_connection() {
    // Should: 40 concurrent commands on one connection all succeed (channel cap and
    // retry keep sshd's MaxSessions from refusing any).
    let Some(lab) = common::lab("many_concurrent_commands_share_one_connection", 1) else {
        return;
    };
    let host = Arc::new(
        SshTransport::connect(common::target(&lab, "app1", "root"))
            .await
            .unwrap(),
    );
    let mut tasks = Vec::new();
    for i in 0..40 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            host.exec_ok(
                &Cmd::new("sh")
                    .arg("-c")
                    .arg("sleep 0.05; echo $1")
                    .arg("x")
                    .arg(i.to_string()),
            )
            .await
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.stdout_text(), format!("{i}\n"));
    }
    let sessions = lab
        .exec("app1", &["sh", "-c", "pgrep -c -f 'sshd: root' || true"])
        .unwrap();
    let count: u32 = String::from_utf8_lossy(&sessions.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        count <= 2,
        "expected one connection (sshd: root processes), saw {count}"
    );
}

#[tokio::test]
async fn sudo_runs_root_commands_for_the_deploy_user() {
    // Should: with sudo on, root commands and file operations run as root for a
    // non-root login; as_login_user runs as the login user; without sudo /opt is closed.
    let Some(lab) = common::lab("sudo_runs_root_commands_for_the_deploy_user", 1) else {
        return;
    };
    let mut target = common::target(&lab, "app1", lab.deploy_user());
    target.sudo = true;
    let host = SshTransport::connect(target.clone()).await.unwrap();
    assert_eq!(
        host.exec_ok(&Cmd::new("id").arg("-u"))
            .await
            .unwrap()
            .stdout_text(),
        "0\n"
    );
    let me = host
        .exec_ok(&Cmd::new("id").arg("-un").as_login_user())
        .await
        .unwrap();
    assert_eq!(me.stdout_text().trim(), lab.deploy_user());
    host.write_file_atomic("/opt/by-sudo", b"x", Some(0o640), None)
        .await
        .unwrap();
    let st = host.stat("/opt/by-sudo").await.unwrap().unwrap();
    assert_eq!((st.user.as_str(), st.mode), ("root", 0o640));

    target.sudo = false;
    let plain = SshTransport::connect(target).await.unwrap();
    let err = plain
        .write_file_atomic("/opt/no-sudo", b"x", None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[tokio::test]
async fn jump_host_reaches_the_inner_host() {
    // Should: a host behind a jump host is reached through a direct-tcpip tunnel.
    let Some(lab) = common::lab("jump_host_reaches_the_inner_host", 2) else {
        return;
    };
    let mut target = common::target(&lab, "app2", "root");
    target.jump = Some(Box::new(common::target(&lab, "app1", "root")));
    let host = SshTransport::connect(target).await.unwrap();
    let out = host.exec_ok(&Cmd::new("hostname")).await.unwrap();
    assert_eq!(out.stdout_text(), "app2\n");
    // the connection came from app1's address, not the controller's
    let from = host
        .exec_ok(&Cmd::new("sh").arg("-c").arg("echo ${SSH_CONNECTION%% *}"))
        .await
        .unwrap();
    assert_eq!(
        from.stdout_text().trim(),
        lab.host("app1").unwrap().address.to_string()
    );
}

#[tokio::test]
async fn refused_channel_opens_are_retried() {
    // Should: against an sshd allowing only 2 sessions per connection, 30 commands with
    // 8 channels wanted at once all succeed: refused channel opens are retried.
    let Some(lab) = common::lab("refused_channel_opens_are_retried", 1) else {
        return;
    };
    common::start_extra_sshd(&lab, "app1", 2223, &["MaxSessions=2"]);
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    let address = lab.host("app1").unwrap().address.to_string();
    let key = common::host_key_line(&lab, "app1", "ssh-ed25519");
    std::fs::write(&known, format!("[{address}]:2223 {key}\n")).unwrap();
    let mut target = common::target(&lab, "app1", "root");
    target.port = 2223;
    target.known_hosts = known;
    target.max_channels = 8;
    let mut connected = None;
    for _ in 0..50 {
        match SshTransport::connect(target.clone()).await {
            Err(TransportError::Connect { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => {
                connected = Some(other.unwrap());
                break;
            }
        }
    }
    let host = Arc::new(connected.expect("sshd on 2223 never came up"));
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                host.exec_ok(
                    &Cmd::new("sh")
                        .arg("-c")
                        .arg("sleep 0.1; echo $0")
                        .arg(i.to_string()),
                )
                .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap().unwrap().stdout_text(), format!("{i}\n"));
    }
}

#[tokio::test]
async fn target_from_ssh_config_reaches_the_host() {
    // Should: a target read through `ssh -G` from the lab's ssh_config (HostName, User,
    // IdentityFile, UserKnownHostsFile, ConnectTimeout) connects like a hand-built one.
    let Some(lab) = common::lab("target_from_ssh_config_reaches_the_host", 1) else {
        return;
    };
    let target =
        apim_transport::ssh::config::target_from_ssh_config("app1", Some(&lab.ssh_config_path()))
            .unwrap();
    assert_eq!(
        target.address,
        lab.host("app1").unwrap().address.to_string()
    );
    assert_eq!(target.known_hosts, lab.known_hosts_path());
    assert_eq!(target.timeouts.connect, std::time::Duration::from_secs(5));
    assert_eq!(common::hostname_over_ssh(target).await, "app1\n");
}
