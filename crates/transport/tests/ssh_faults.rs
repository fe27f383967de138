//! End-to-end tests of failures against lab hosts (`APIM_LAB_TESTS=1`): frozen
//! hosts, killed sshd, connections lost mid-transfer.

mod common;

use std::time::{Duration, Instant};

use apim_lab::KillScope;
use apim_transport::{Cmd, SshTransport, Transport, TransportError};

#[tokio::test]
async fn frozen_host_fails_within_the_timeout() {
    // Should: a frozen host gives a timeout error naming it within the configured time,
    // for a new connection and for a command on an existing one.
    let Some(lab) = common::lab("frozen_host_fails_within_the_timeout", 1) else {
        return;
    };
    let mut target = common::target(&lab, "app1", "root");
    target.timeouts.connect = Duration::from_secs(2);
    let existing = SshTransport::connect(target.clone()).await.unwrap();
    lab.freeze("app1").unwrap();

    let start = Instant::now();
    let err = SshTransport::connect(target).await.unwrap_err();
    let took = start.elapsed();
    let frozen = lab.thaw("app1");
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(
        err.to_string()
            .starts_with("app1: SSH banner and key exchange"),
        "{err}"
    );
    frozen.unwrap();

    lab.freeze("app1").unwrap();
    let start = Instant::now();
    let err = existing
        .exec(&Cmd::new("true").timeout(Duration::from_secs(2)))
        .await
        .unwrap_err();
    let took = start.elapsed();
    lab.thaw("app1").unwrap();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn a_host_frozen_mid_command_is_reported_lost_within_15s() {
    // Should: with the default keepalives, a long command on a host that freezes ends
    // in a `Lost` error naming the host and the command within 15 s, not at its timeout.
    let Some(lab) = common::lab("a_host_frozen_mid_command_is_reported_lost_within_15s", 1) else {
        return;
    };
    let mut target = common::target(&lab, "app1", "root");
    target.timeouts.keepalive = apim_transport::Timeouts::default().keepalive;
    let t = SshTransport::connect(target).await.unwrap();
    let cmd = Cmd::new("sleep")
        .arg("120")
        .timeout(Duration::from_secs(300));
    let run = tokio::spawn(async move { t.exec(&cmd).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.freeze("app1").unwrap();
    let start = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), run).await;
    let took = start.elapsed();
    lab.thaw("app1").unwrap();
    let err = result.expect("ended before 30 s").unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Lost { .. }), "{err}");
    assert!(err.to_string().starts_with("app1: lost: "), "{err}");
    assert!(err.to_string().contains("`sleep 120`"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test]
async fn killed_sshd_is_refused_at_once() {
    // Should: with sshd dead, connecting fails at once with "connection refused" naming the host.
    let Some(lab) = common::lab("killed_sshd_is_refused_at_once", 1) else {
        return;
    };
    lab.kill("app1", KillScope::Sshd).unwrap();
    let start = Instant::now();
    let err = SshTransport::connect(common::target(&lab, "app1", "root"))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.starts_with("app1: cannot connect to") && text.contains("connection refused"),
        "{text}"
    );
}

#[tokio::test]
async fn interrupted_upload_never_replaces_the_file() {
    // Should: a transfer cut midway (connection closed, then sshd killed) leaves the old
    // file in place, never a truncated one, and no temp file behind.
    let Some(lab) = common::lab("interrupted_upload_never_replaces_the_file", 1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    let sha = common::write_pattern_file(&src, 150 << 20);
    let target = common::target(&lab, "app1", "root");
    let opt = lab.host_path("app1", "/opt").unwrap();
    std::fs::write(opt.join("app.zip"), b"old content").unwrap();

    for cut in ["close", "kill"] {
        let host = std::sync::Arc::new(SshTransport::connect(target.clone()).await.unwrap());
        let uploading = {
            let (host, src, sha) = (host.clone(), src.clone(), sha.clone());
            tokio::spawn(async move { host.upload(&src, "/opt/app.zip", &sha, None, None).await })
        };
        wait_for_partial_temp_file(&opt).await;
        match cut {
            "close" => host.close().await,
            _ => lab.kill("app1", KillScope::Sshd).unwrap(),
        }
        let result = tokio::time::timeout(Duration::from_secs(20), uploading)
            .await
            .unwrap()
            .unwrap();
        assert!(result.is_err(), "{cut}: the upload reported success");
        assert_eq!(
            std::fs::read(opt.join("app.zip")).unwrap(),
            b"old content",
            "{cut}"
        );
        wait_until_no_temp_file(&opt).await;
        if cut == "kill" {
            lab.revive("app1").unwrap();
        }
    }
}

fn temp_files(dir: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".apim-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect()
}

async fn wait_for_partial_temp_file(dir: &std::path::Path) {
    for _ in 0..400 {
        if temp_files(dir).iter().any(|(_, len)| *len > 1 << 20) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the upload never started writing its temp file");
}

async fn wait_until_no_temp_file(dir: &std::path::Path) {
    for _ in 0..100 {
        if temp_files(dir).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("temp files left behind: {:?}", temp_files(dir));
}
