//! Tests for the `apim-deploy facts` command against a lab (`APIM_LAB_TESTS=1`).

use apim_lab::KillScope;
use apim_lab::testing::{TestLab, lab_tests_enabled};
use assert_cmd::Command;

fn facts_json(lab: &TestLab) -> (i32, serde_json::Value) {
    let out = Command::cargo_bin("apim-deploy")
        .unwrap()
        .args(["facts", "--json"])
        .arg(lab.inventory_path())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(json["schema"], "apim-deploy.facts/1", "{json:#}");
    (out.status.code().unwrap(), json)
}

#[test]
fn facts_reports_every_host_and_survives_a_dead_one() {
    // Should: every lab host answers with OS, CPUs, memory and disk; with one sshd
    // killed, that host reports "connection refused" and the others still answer.
    if !lab_tests_enabled("facts_reports_every_host_and_survives_a_dead_one") {
        return;
    }
    let lab = TestLab::up(|_| {}).unwrap();
    let (code, json) = facts_json(&lab);
    assert_eq!(code, 0, "{json:#}");
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), lab.hosts().len());
    for h in hosts {
        let facts = &h["facts"];
        assert!(facts["cpus"].as_u64().unwrap() >= 1, "{h:#}");
        assert!(facts["mem_total_kib"].as_u64().unwrap() > 0, "{h:#}");
        assert!(facts["disk_free_kib"].as_u64().is_some(), "{h:#}");
        assert!(facts["os"].as_str().is_some(), "{h:#}");
    }
    let app1 = &hosts[0]["facts"];
    assert_eq!(app1["nodes"][0]["present"], false, "{app1:#}");

    lab.kill("app2", KillScope::Sshd).unwrap();
    let (code, json) = facts_json(&lab);
    assert_eq!(code, 1);
    let app2 = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "app2")
        .unwrap();
    assert!(
        app2["error"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{app2:#}"
    );
    let answered = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["facts"].is_object())
        .count();
    assert_eq!(answered, lab.hosts().len() - 1);
}

#[test]
fn facts_reaches_every_host_through_an_openssh_config() {
    // Should: with `[ssh] config = "<lab>/ssh_config"` and no key, user or known_hosts in
    // the inventory, every host is reached with the config's settings (without them, the
    // host keys would be unknown and no key would be offered).
    if !lab_tests_enabled("facts_reaches_every_host_through_an_openssh_config") {
        return;
    }
    let lab = TestLab::up(|_| {}).unwrap();
    let text = std::fs::read_to_string(lab.inventory_path()).unwrap();
    let (_, rest) = text.split_once("\n[distribution]").unwrap();
    let config = lab.state_dir().join("ssh_config");
    let inventory = lab.state_dir().join("inventory-ssh-config.toml");
    std::fs::write(
        &inventory,
        format!(
            "[ssh]\nconfig = {:?}\n\n[distribution]{rest}",
            config.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::cargo_bin("apim-deploy")
        .unwrap()
        .env_remove("SSH_AUTH_SOCK")
        .env("HOME", lab.state_dir())
        .args(["facts", "--json"])
        .arg(&inventory)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    let hosts = json["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), lab.hosts().len());
    assert!(
        hosts.iter().all(|h| h["facts"]["cpus"].as_u64().is_some()),
        "{json:#}"
    );
}
