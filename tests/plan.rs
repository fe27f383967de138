//! End-to-end tests of `plan`, restart-on-change and the operator's output, on real lab
//! hosts. They check the hosts, not the tool's word for it.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use apim_lab::Layout;
use support::*;

const NODES: [(&str, &str); 4] = [
    ("app1", "/opt/wso2/KeyManager"),
    ("app2", "/opt/wso2/Gateway"),
    ("app3", "/opt/wso2/Publisher"),
    ("app4", "/opt/wso2/Store"),
];

/// Everything `plan` promises not to touch: files under /opt and /etc/hosts on every
/// host, the database's schemas, tables and grants, and every host's process list.
fn snapshot(lab: &apim_lab::testing::TestLab) -> (BTreeMap<String, String>, String) {
    let mut files = BTreeMap::new();
    for host in ["app1", "app2", "app3", "app4", "db"] {
        for (path, hash) in tree_hashes(lab, host, "/opt") {
            files.insert(format!("{host}:/opt/{}", path.display()), hash);
        }
        files.insert(
            format!("{host}:/etc/hosts"),
            exec(lab, host, &["sha256sum", "/etc/hosts"]),
        );
        let mut pids = lab.pids(host).unwrap();
        pids.sort();
        files.insert(format!("{host}:pids"), format!("{pids:?}"));
    }
    (files, db_schema(lab))
}

#[test]
fn plan_on_a_fresh_lab_shows_every_change_and_touches_nothing() {
    // should: list the changes with real diffs, exit 2, and leave every host as it was
    if !lab_tests_enabled("plan_on_a_fresh_lab_shows_every_change_and_touches_nothing") {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let before = snapshot(&lab);
    let out = cli(&["plan", inv]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let after = snapshot(&lab);
    assert_eq!(before.0, after.0, "plan changed files or processes");
    assert_eq!(before.1, after.1, "plan changed the database");

    let shown = text(&out.stdout);
    // The diff of a fresh node is against the archive's original file.
    assert!(
        shown.contains("-                    <url>jdbc:h2:repository/database/WSO2AM_DB"),
        "{shown}"
    );
    assert!(shown.contains("+                    <url>jdbc:mysql://apimgtdb.mysql-wso2.com:3306/apimgtdb?autoReconnect=true</url>"));
    assert!(shown.contains("sql> CREATE DATABASE IF NOT EXISTS `apimgtdb` CHARACTER SET latin1;"));
    assert!(shown.contains("Restarts, in order:\n  app1/keymanager"));
    assert!(
        !shown.contains('\x1b'),
        "no control codes without a terminal"
    );

    let json = cli(&["plan", "--json", inv]);
    assert_eq!(json.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["schema"], "apim-deploy.plan/1");
    assert_eq!(
        doc["restarts"],
        serde_json::json!([
            "app1/keymanager",
            "app2/gateway",
            "app3/publisher",
            "app4/store"
        ])
    );
    assert_eq!(snapshot(&lab).0, before.0);

    let apply = cli(&["apply", "--start-timeout", "60", inv]);
    assert!(
        apply.status.success(),
        "{}{}",
        text(&apply.stdout),
        text(&apply.stderr)
    );
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    assert!(text(&again.stdout).contains("Nothing to do."));
    assert!(!text(&again.stdout).contains("will change"));
    assert_no_secret_in(
        &[
            &out.stdout,
            &out.stderr,
            &json.stdout,
            &apply.stdout,
            &apply.stderr,
            &again.stdout,
        ],
        &secrets(&lab),
    );
}

#[test]
fn a_hand_edit_is_one_line_of_plan_and_apply_restarts_only_that_node() {
    // should: show exactly the edited line, restore it, and restart only the edited node
    if !lab_tests_enabled("a_hand_edit_is_one_line_of_plan_and_apply_restarts_only_that_node") {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let first = cli(&["apply", "--json", "--start-timeout", "60", inv]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let file = "/opt/wso2/Gateway/repository/conf/api-manager.xml";
    let original = exec(&lab, "app2", &["cat", file]);
    exec(
        &lab,
        "app2",
        &[
            "sed",
            "-i",
            "s#<KeyValidatorClientType>ThriftClient<#<KeyValidatorClientType>WSClient<#",
            file,
        ],
    );
    let pids: Vec<_> = NODES
        .iter()
        .map(|(h, d)| server_pid(&lab, h, d).unwrap())
        .collect();

    let plan = cli(&["plan", "--json", inv]);
    assert_eq!(plan.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let changed: Vec<&serde_json::Value> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "change")
        .collect();
    assert_eq!(
        changed.len(),
        2,
        "one config step and one restart: {changed:#?}"
    );
    assert_eq!(changed[0]["target"], "app2/gateway");
    let diff = changed[0]["diffs"][0]["diff"].as_str().unwrap();
    let minus: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"))
        .collect();
    let plus: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert_eq!(minus.len(), 1, "{diff}");
    assert!(minus[0].contains("<KeyValidatorClientType>WSClient</KeyValidatorClientType>"));
    let restored = minus[0][1..].replacen("WSClient<", "ThriftClient<", 1);
    assert_eq!(plus, [format!("+{restored}")], "{diff}");
    assert_eq!(doc["restarts"], serde_json::json!(["app2/gateway"]));

    let second = cli(&["apply", "--json", "--start-timeout", "60", inv]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        exec(&lab, "app2", &["cat", file]),
        original,
        "the file is restored byte for byte"
    );
    assert_eq!(restarted(&events(&second.stdout)), ["app2/gateway"]);
    let now: Vec<_> = NODES
        .iter()
        .map(|(h, d)| server_pid(&lab, h, d).unwrap())
        .collect();
    assert_ne!(now[1], pids[1], "the gateway restarted");
    assert_eq!(
        [&now[0], &now[2], &now[3]],
        [&pids[0], &pids[2], &pids[3]],
        "no other node restarted"
    );
    assert_no_secret_in(
        &[&first.stdout, &plan.stdout, &second.stdout],
        &secrets(&lab),
    );
}

#[test]
fn a_run_killed_before_its_restart_is_finished_by_the_next_one() {
    // should: restart the node whose config a killed run wrote, and only that node
    if !lab_tests_enabled("a_run_killed_before_its_restart_is_finished_by_the_next_one") {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 2.0);
    let inv = lab.inventory.to_str().unwrap();
    let first = cli(&["apply", "--start-timeout", "60", inv]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    // The store's config drifts, and the publisher is down: the next run writes the
    // store's config, and the store's restart waits for the publisher to start (2 s).
    // The test kills the run in that window: once the store's config is written and the
    // publisher's start has begun (hosts work independently, so either comes first).
    let file = "/opt/wso2/Store/repository/conf/api-manager.xml";
    exec(
        &lab,
        "app4",
        &[
            "sed",
            "-i",
            "s#<KeyValidatorClientType>ThriftClient<#<KeyValidatorClientType>WSClient<#",
            file,
        ],
    );
    // As an operator would: the 1.9 script refuses to run without JAVA_HOME.
    exec(
        &lab,
        "app3",
        &[
            "env",
            &format!("JAVA_HOME={}", lab.java_home("app3")),
            "bash",
            "/opt/wso2/Publisher/bin/wso2server.sh",
            "stop",
        ],
    );
    while server_pid(&lab, "app3", "/opt/wso2/Publisher").is_some() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let store_pid = server_pid(&lab, "app4", "/opt/wso2/Store").unwrap();

    let mut run = Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(["apply", "--json", "--start-timeout", "60", inv])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let (mut store_config_written, mut publisher_starting) = (false, false);
    for line in BufReader::new(run.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        store_config_written |= line.contains("\"event\":\"task_end\"")
            && line.contains("\"target\":\"app4/store\"")
            && line.contains("\"verdict\":\"change\"");
        publisher_starting |= line.contains("\"event\":\"task_start\"")
            && line.contains("\"target\":\"app3/publisher\"");
        seen.push(line);
        if store_config_written && publisher_starting {
            run.kill().unwrap(); // SIGKILL
            break;
        }
    }
    run.wait().unwrap();
    assert!(
        seen.iter().any(
            |l| l.contains("\"target\":\"app4/store\"") && l.contains("\"verdict\":\"change\"")
        ),
        "the killed run wrote the store's config: {seen:#?}"
    );
    assert!(exec(&lab, "app4", &["cat", file]).contains("<KeyValidatorClientType>ThriftClient<"));
    assert_eq!(
        server_pid(&lab, "app4", "/opt/wso2/Store").unwrap(),
        store_pid,
        "not restarted yet"
    );
    exec(
        &lab,
        "app4",
        &["test", "-f", "/opt/wso2/Store/.apim-deploy/restart-pending"],
    );

    // The killed run sent the publisher's start (its server outlives the run), unless the
    // kill came between the event and the command: then start it by hand, so that the
    // store is the only node with a reason to restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while server_pid(&lab, "app3", "/opt/wso2/Publisher").is_none()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if server_pid(&lab, "app3", "/opt/wso2/Publisher").is_none() {
        exec(
            &lab,
            "app3",
            &[
                "bash",
                "-c",
                &format!(
                    "cd /opt/wso2/Publisher && runuser -u wso2carbon -- env JAVA_HOME={} bash bin/wso2server.sh start",
                    lab.java_home("app3")
                ),
            ],
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while exec(
        &lab,
        "app3",
        &["cat", "/opt/wso2/Publisher/repository/logs/wso2carbon.log"],
    )
    .matches("WSO2 Carbon started in")
    .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "publisher did not come back"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    let next = cli(&["apply", "--json", "--start-timeout", "60", inv]);
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert_eq!(restarted(&events(&next.stdout)), ["app4/store"]);
    assert_ne!(
        server_pid(&lab, "app4", "/opt/wso2/Store").unwrap(),
        store_pid
    );
    let left = lab
        .exec(
            "app4",
            &["test", "-e", "/opt/wso2/Store/.apim-deploy/restart-pending"],
        )
        .unwrap();
    assert!(
        !left.status.success(),
        "the pending mark is cleared after a healthy restart"
    );
}

#[test]
fn output_without_a_terminal_is_plain_lines_and_json_is_an_event_stream() {
    // should: print no control codes when piped, and a well-formed NDJSON stream with --json
    if !lab_tests_enabled("output_without_a_terminal_is_plain_lines_and_json_is_an_event_stream") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let json = cli(&["apply", "--json", "--start-timeout", "60", inv]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let ev = events(&json.stdout);
    assert_eq!(ev.first().unwrap()["event"], "run_start");
    assert_eq!(ev.first().unwrap()["schema"], "apim-deploy.events/1");
    let last = ev.last().unwrap();
    assert_eq!(last["event"], "recap");
    assert_eq!(last["ok"], true);
    for e in &ev {
        if e["event"] == "task_end" {
            for key in ["target", "task", "verdict", "reason", "duration_ms"] {
                assert!(e.get(key).is_some(), "task_end without {key}: {e}");
            }
        }
    }
    // Start order: each role only after the one it depends on is healthy.
    assert_eq!(
        restarted(&ev),
        [
            "app1/keymanager",
            "app1/gateway",
            "app1/publisher",
            "app1/store"
        ]
    );

    let plain = cli(&["apply", inv]);
    assert!(plain.status.success());
    let out = text(&plain.stdout);
    assert!(
        !out.contains('\x1b'),
        "control codes in piped output: {out:?}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("HOST ") && l.contains("CHANGED") && l.contains("RESTARTED"))
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("app1 ") && l.split_whitespace().nth(2) == Some("0"))
    );
    assert_no_secret_in(
        &[&json.stdout, &json.stderr, &plain.stdout, &plain.stderr],
        &secrets(&lab),
    );
}
