//! Helpers shared by the end-to-end tests: a lab per test and targets into it.
#![allow(dead_code)]

use std::path::Path;

use sha2::{Digest, Sha256};
use std::time::Duration;

use apim_lab::testing::{TestLab, lab_tests_enabled};
use apim_lab::{Lab, Layout};
use apim_transport::{Auth, SshTarget, Timeouts};

/// A lab of `hosts` app hosts without a database, or None (with a visible skip line)
/// when lab tests are not enabled.
pub fn lab(test: &str, hosts: usize) -> Option<TestLab> {
    if !lab_tests_enabled(test) {
        return None;
    }
    let lab = TestLab::up(|spec| {
        spec.app_hosts = hosts;
        spec.with_db = false;
        spec.layout = Layout::AllInOne;
    })
    .expect("lab up");
    Some(lab)
}

/// Short timeouts, so a failing test fails fast.
pub fn quick_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        auth: Duration::from_secs(5),
        channel_open: Duration::from_secs(5),
        command: Duration::from_secs(60),
        keepalive: Duration::from_secs(5),
    }
}

/// A target for `host` logging in as `user` with the lab key.
pub fn target(lab: &Lab, host: &str, user: &str) -> SshTarget {
    let address = lab.host(host).expect("lab host").address.to_string();
    let mut t = SshTarget::new(host, address, lab.known_hosts_path());
    t.user = user.to_string();
    t.auth = vec![Auth::KeyFile {
        path: lab.ssh_key_path(),
        passphrase: None,
    }];
    t.timeouts = quick_timeouts();
    t
}

/// The lab's known_hosts line holding `host`'s key of `key_type` (`type base64`).
pub fn host_key_line(lab: &Lab, host: &str, key_type: &str) -> String {
    let address = lab.host(host).unwrap().address.to_string();
    let text = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    text.lines()
        .find(|l| {
            let mut f = l.split_whitespace();
            f.next().is_some_and(|h| h.split(',').any(|n| n == address))
                && f.next() == Some(key_type)
        })
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| panic!("no {key_type} key for {host} in the lab known_hosts"))
}

/// Runs a local program and returns its stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ssh-keygen -lf` fingerprint (`SHA256:...`) of a public key line.
pub fn fingerprint_of(dir: &Path, key_line: &str) -> String {
    let file = dir.join("fp.pub");
    std::fs::write(&file, format!("{key_line}\n")).unwrap();
    run("ssh-keygen", &["-lf", file.to_str().unwrap()])
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Writes `len` bytes of a fixed pattern in chunks (never whole in memory); returns its sha256.
pub fn write_pattern_file(path: &std::path::Path, len: usize) -> String {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..len / chunk.len() {
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = ((i * 31 + j * 7) % 251) as u8;
        }
        hash.update(&chunk);
        file.write_all(&chunk).unwrap();
    }
    file.flush().unwrap();
    hex::encode(hash.finalize())
}

/// Arguments a naive transport would mangle: quotes, substitutions, separators,
/// whitespace, newlines, non-ASCII, globs, variables, an empty one and an option.
pub const NASTY: &[&str] = &[
    "it's",
    "say \"hi\"",
    "$(touch /tmp/apim-pwned)",
    "`touch /tmp/apim-pwned2`",
    "a; b | c && d > e",
    "  spaces  around  ",
    "new\nline\n",
    "naïve ☃ 日本語",
    "*",
    "$HOME ${PATH}",
    "back\\slash",
    "",
    "-n",
    "tab\there",
];

/// The command that prints each of [`NASTY`] followed by a NUL.
pub fn print_nasty() -> apim_transport::Cmd {
    apim_transport::Cmd::new("printf")
        .arg("%s\\0")
        .args(NASTY.iter().copied())
}

/// Asserts that `stdout` of [`print_nasty`] holds every argument byte for byte.
pub fn assert_nasty_arrived(stdout: &[u8]) {
    let got: Vec<&[u8]> = stdout.split(|b| *b == 0).collect();
    let want: Vec<&[u8]> = NASTY
        .iter()
        .map(|s| s.as_bytes())
        .chain([&b""[..]])
        .collect();
    assert_eq!(got, want);
}

/// Runs a command inside a lab host, asserting success.
pub fn lab_exec_ok(lab: &Lab, host: &str, argv: &[&str], stdin: Option<&[u8]>) {
    let out = lab.exec_with_stdin(host, argv, stdin).unwrap();
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts a second sshd on `host` at `port` with extra `-o` options (the host's own
/// keys and config otherwise).
pub fn start_extra_sshd(lab: &Lab, host: &str, port: u16, options: &[&str]) {
    let port = port.to_string();
    let pid_file = format!("PidFile=/run/sshd-{port}.pid");
    let mut argv = vec!["/usr/sbin/sshd", "-p", &port, "-o", &pid_file];
    for o in options {
        argv.push("-o");
        argv.push(o);
    }
    lab_exec_ok(lab, host, &argv, None);
}

/// Connects to `target` and returns what `hostname` prints there (proves the login works
/// and lands on the intended host).
pub async fn hostname_over_ssh(target: SshTarget) -> String {
    use apim_transport::Transport;
    let host = apim_transport::SshTransport::connect(target).await.unwrap();
    host.exec_ok(&apim_transport::Cmd::new("hostname"))
        .await
        .unwrap()
        .stdout_text()
}
