//! Our known_hosts matcher against OpenSSH's own: for every query, the lines we match
//! must be the lines `ssh-keygen -F` reports, in plain and hashed (`ssh-keygen -H`)
//! files. Needs only the OpenSSH client tools (skipped with a message without them).

use std::path::Path;
use std::process::Command;

use apim_transport::ssh::known_hosts::matching_lines;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKtWn61wec2eD15rBAjeyYepKrnos/3tNjsmzI0ZqX2w";

fn file_text() -> String {
    [
        "# a comment".to_string(),
        format!("app1,127.0.10.1 {KEY}"),
        format!("[127.0.10.2]:2222\t{KEY}"),
        format!("127.0.11.*,!127.0.11.9   {KEY} comment here"),
        format!("@revoked app3 {KEY}"),
        format!("@cert-authority *.lab {KEY}"),
        format!("h?st {KEY}"),
        String::new(),
        format!("APP5 {KEY}"),
        format!("[db]:2200,db {KEY}"),
    ]
    .join("\n")
        + "\n"
}

const QUERIES: &[(&str, u16)] = &[
    ("app1", 22),
    ("127.0.10.1", 22),
    ("127.0.10.1", 2222),
    ("127.0.10.2", 2222),
    ("127.0.10.2", 22),
    ("127.0.11.5", 22),
    ("127.0.11.9", 22),
    ("app3", 22),
    ("x.lab", 22),
    ("host", 22),
    ("hoost", 22),
    ("app5", 22),
    ("db", 22),
    ("db", 2200),
];

/// Line numbers `ssh-keygen -F` reports (`# Host NAME found: line N ...`).
fn ssh_keygen_lines(file: &Path, host: &str, port: u16) -> Vec<usize> {
    let name = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let out = Command::new("ssh-keygen")
        .arg("-F")
        .arg(&name)
        .arg("-f")
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("found: line ").nth(1))
        .map(|rest| rest.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn matcher_agrees_with_ssh_keygen() {
    // Should: plain and hashed files match exactly the lines OpenSSH matches.
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        eprintln!("SKIPPED matcher_agrees_with_ssh_keygen: no ssh-keygen");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, file_text()).unwrap();
    let hashed = dir.path().join("hashed");
    std::fs::write(&hashed, file_text()).unwrap();
    let status = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&hashed)
        .output()
        .unwrap();
    assert!(status.status.success());
    let hashed_text = std::fs::read_to_string(&hashed).unwrap();
    assert!(hashed_text.contains("|1|"), "ssh-keygen -H hashed nothing");

    for (file, text) in [(&plain, file_text()), (&hashed, hashed_text)] {
        for &(host, port) in QUERIES {
            let ours = matching_lines(&text, host, port);
            let openssh = ssh_keygen_lines(file, host, port);
            assert_eq!(ours, openssh, "{host}:{port} in {}", file.display());
        }
    }
}
