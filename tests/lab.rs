//! Tests for the `apim-deploy lab` commands: real labs (root; APIM_LAB_TESTS=1), driven
//! through the binary as an operator would, checked on the hosts and with `check`.

use std::path::Path;

use apim_lab::Lab;
use apim_lab::testing::{Lease, lab_tests_enabled, lease};
use assert_cmd::Command;

fn apim() -> Command {
    Command::cargo_bin("apim-deploy").unwrap()
}

/// Tears down the lab in the leased state dir on drop, also when the test panics.
struct Cleanup<'a>(&'a Lease);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Err(err) = Lab::down_dir(&self.0.state_dir) {
            eprintln!("cleanup of {}: {err}", self.0.state_dir.display());
        }
    }
}

fn state_args(lease: &Lease) -> [String; 2] {
    ["--state-dir".into(), lease.state_dir.display().to_string()]
}

#[test]
fn lab_up_writes_an_inventory_that_check_accepts_and_down_removes_the_lab() {
    // should: print the hosts and an inventory `check` accepts, run commands in hosts, then go away
    if !lab_tests_enabled("lab_up_writes_an_inventory_that_check_accepts_and_down_removes_the_lab")
    {
        return;
    }
    let lease = lease().unwrap();
    let _cleanup = Cleanup(&lease);
    let up = apim()
        .args(["lab", "up", "--prefix", &lease.prefix])
        .args(state_args(&lease))
        .assert()
        .success();
    let out = String::from_utf8_lossy(&up.get_output().stdout).to_string();
    for (name, role) in [
        ("app1", "keymanager"),
        ("app2", "gateway"),
        ("app3", "publisher"),
        ("app4", "store"),
    ] {
        let row = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{out}"));
        assert!(row.contains(role) && row.contains(&lease.prefix), "{row}");
    }
    let inventory = lease.state_dir.join("inventory.toml");
    assert!(out.contains(&inventory.display().to_string()), "{out}");
    apim().arg("check").arg(&inventory).assert().success();

    let hostname = apim()
        .args(["lab", "exec", "app3"])
        .args(state_args(&lease))
        .args(["--", "hostname"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&hostname.get_output().stdout).trim(),
        "app3"
    );
    let over_ssh = apim()
        .args(["lab", "ssh", "app2", "--user", "deploy"])
        .args(state_args(&lease))
        .args(["--", "sudo", "-n", "hostname"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&over_ssh.get_output().stdout).trim(),
        "app2"
    );
    apim()
        .args(["lab", "exec", "app1"])
        .args(state_args(&lease))
        .args(["--", "sh", "-c", "exit 3"])
        .assert()
        .code(3);

    apim()
        .args(["lab", "down"])
        .args(state_args(&lease))
        .assert()
        .success();
    assert!(!Path::new(&lease.state_dir).exists());
    apim()
        .args(["lab", "down"])
        .args(state_args(&lease))
        .assert()
        .success();
}

#[test]
fn lab_faults_show_in_status_and_unknown_hosts_are_named() {
    // should: report freeze and cut in `lab status`, and list the lab's hosts for a wrong name
    if !lab_tests_enabled("lab_faults_show_in_status_and_unknown_hosts_are_named") {
        return;
    }
    let lease = lease().unwrap();
    let _cleanup = Cleanup(&lease);
    apim()
        .args([
            "lab",
            "up",
            "--layout",
            "all-in-one",
            "--no-db",
            "--app-hosts",
            "2",
            "--prefix",
            &lease.prefix,
        ])
        .args(state_args(&lease))
        .assert()
        .success();
    apim()
        .args(["lab", "freeze", "app1"])
        .args(state_args(&lease))
        .assert()
        .success();
    apim()
        .args(["lab", "cut", "app2"])
        .args(state_args(&lease))
        .assert()
        .success();
    let status = apim()
        .args(["lab", "status"])
        .args(state_args(&lease))
        .assert()
        .success();
    let text = String::from_utf8_lossy(&status.get_output().stdout).to_string();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(row("app1").ends_with("frozen"), "{text}");
    assert!(row("app2").ends_with("cut"), "{text}");
    let wrong = apim()
        .args(["lab", "thaw", "app9"])
        .args(state_args(&lease))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&wrong.get_output().stderr).to_string();
    assert!(
        err.contains("no host named `app9`") && err.contains("app1, app2"),
        "{err}"
    );
}

#[test]
fn lab_up_refuses_addresses_outside_loopback_and_too_few_hosts_for_a_layout() {
    // should: refuse a non-loopback prefix and a layout that cannot fit on the given hosts
    if !lab_tests_enabled(
        "lab_up_refuses_addresses_outside_loopback_and_too_few_hosts_for_a_layout",
    ) {
        return;
    }
    let refused = apim()
        .args([
            "lab",
            "up",
            "--prefix",
            "10.0.10",
            "--state-dir",
            "/tmp/apimlab-never",
        ])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("only 127.0.0.0/8"), "{err}");
    let few = apim()
        .args([
            "lab",
            "up",
            "--app-hosts",
            "2",
            "--state-dir",
            "/tmp/apimlab-never",
        ])
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&few.get_output().stderr).to_string();
    assert!(err.contains("needs at least 4 app hosts"), "{err}");
    assert!(!Path::new("/tmp/apimlab-never").exists());
}
