//! End-to-end tests of `restart` and `status` on real labs (root; APIM_LAB_TESTS=1).
//! Each test brings up its own lab through `support::Deployable` (a prefix leased from the
//! shared test range), deploys the stand-in distribution with `apply`, then drives the
//! binary as an operator would. Outcomes are checked on the hosts (pid files, live
//! processes, ports answering from the controller), not in the tool's own words; `status`
//! is the exception, since its output is its job.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apim_lab::{KillScope, Lab, Layout};
use apim_standin::DEFAULT_START_DELAY_SECS;
use support::{Deployable, lab_tests_enabled};

const GATEWAY_DIR: &str = "/opt/wso2/Gateway";

/// A deployed two-gateways lab (app1: keymanager, publisher, store; app2, app3:
/// gateways), torn down on drop.
struct Deployed {
    deployable: Deployable,
    /// Everything the tool printed, to scan for secrets.
    captured: std::cell::RefCell<Vec<u8>>,
}

impl Deployed {
    fn lab(&self) -> &Lab {
        &self.deployable
    }

    /// Brings the lab up with the stand-in (its default start delay) and applies.
    fn up() -> Deployed {
        let d = Deployed {
            deployable: Deployable::up(Layout::TwoGateways, DEFAULT_START_DELAY_SECS),
            captured: Default::default(),
        };
        let out = d.apim(&["apply"], &[]);
        assert!(out.status.success(), "apply failed:\n{}", text(&out));
        d
    }

    /// Runs `apim-deploy <command> <inventory> <args>`.
    fn apim(&self, command: &[&str], args: &[&str]) -> Output {
        let out = Command::new(assert_cmd::cargo::cargo_bin("apim-deploy"))
            .args(command)
            .arg(&self.deployable.inventory)
            .args(args)
            .output()
            .expect("run apim-deploy");
        let mut captured = self.captured.borrow_mut();
        captured.extend_from_slice(&out.stdout);
        captured.extend_from_slice(&out.stderr);
        out
    }

    /// No secret of the lab's inventory appears in anything the tool printed.
    fn assert_no_secret_printed(&self) {
        let dir = self.deployable.inventory.parent().unwrap().join("secrets");
        let captured = String::from_utf8_lossy(&self.captured.borrow()).into_owned();
        assert!(!captured.is_empty());
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let secret = fs::read_to_string(&path).unwrap();
            let secret = secret.trim();
            assert!(secret.len() >= 8, "{}", path.display());
            assert!(
                !captured.contains(secret),
                "the secret in {} was printed",
                path.display()
            );
        }
    }

    fn address(&self, host: &str) -> String {
        self.lab().host(host).expect("lab host").address.to_string()
    }

    /// The pid in the node's `wso2carbon.pid`, if that process is alive on the host.
    fn live_pid(&self, host: &str, dir: &str) -> Option<u32> {
        let out = self
            .lab()
            .exec(host, &["cat", &format!("{dir}/wso2carbon.pid")])
            .ok()?;
        let digits: String = String::from_utf8_lossy(&out.stdout)
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let pid: u32 = digits.parse().ok()?;
        let alive = self
            .lab()
            .exec(host, &["kill", "-0", &pid.to_string()])
            .ok()?
            .status
            .success();
        alive.then_some(pid)
    }

    /// Every node's live pid, by node name.
    fn pids(&self) -> Vec<(&'static str, Option<u32>)> {
        [
            ("app1/keymanager", "app1", "/opt/wso2/KeyManager"),
            ("app1/publisher", "app1", "/opt/wso2/Publisher"),
            ("app1/store", "app1", "/opt/wso2/Store"),
            ("app2/gateway", "app2", GATEWAY_DIR),
            ("app3/gateway", "app3", GATEWAY_DIR),
        ]
        .into_iter()
        .map(|(node, host, dir)| (node, self.live_pid(host, dir)))
        .collect()
    }

    /// Whether a gateway's pass-through HTTP port (8280) answers an HTTP request from
    /// the controller, through the lab network.
    fn nio_answers(&self, host: &str) -> bool {
        nio_answers(&format!("{}:8280", self.address(host)).parse().unwrap())
    }
}

fn nio_answers(addr: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `status --json` stream: node_status lines and the summary.
fn status_json(d: &Deployed) -> (Option<i32>, Vec<serde_json::Value>, serde_json::Value) {
    let out = d.apim(&["status"], &["--json"]);
    let mut nodes = Vec::new();
    let mut summary = serde_json::Value::Null;
    let mut starts = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match v["event"].as_str() {
            Some("node_status") => nodes.push(v),
            Some("status_summary") => summary = v,
            Some("run_start") => {
                assert_eq!(v["schema"], "apim-deploy.status/1", "{line}");
                assert!(nodes.is_empty(), "run_start is the first line");
                starts += 1;
            }
            other => panic!("unexpected event {other:?} in {line}"),
        }
    }
    assert_eq!(starts, 1, "one run_start line");
    (out.status.code(), nodes, summary)
}

#[test]
fn rolling_restart_of_two_gateways_keeps_a_nio_port_answering_throughout() {
    // should: restart both gateways one at a time while at every probe at least one NIO port answers
    if !lab_tests_enabled("rolling_restart_of_two_gateways_keeps_a_nio_port_answering_throughout") {
        return;
    }
    let d = Deployed::up();
    let before = d.pids();
    assert!(
        before.iter().all(|(_, p)| p.is_some()),
        "not all running after apply: {before:?}"
    );
    let gateways: Vec<SocketAddr> = ["app2", "app3"]
        .iter()
        .map(|h| format!("{}:8280", d.address(h)).parse().unwrap())
        .collect();
    assert!(
        gateways.iter().all(nio_answers),
        "gateways answer before the roll"
    );

    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        let gateways = gateways.clone();
        std::thread::spawn(move || {
            // Bounded: at most 5 minutes and 100 000 samples.
            let deadline = Instant::now() + Duration::from_secs(300);
            let mut samples: Vec<(bool, bool)> = Vec::new();
            while !done.load(Ordering::SeqCst)
                && Instant::now() < deadline
                && samples.len() < 100_000
            {
                samples.push((nio_answers(&gateways[0]), nio_answers(&gateways[1])));
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        })
    };
    let out = d.apim(&["restart"], &["--roles", "gateway"]);
    done.store(true, Ordering::SeqCst);
    let samples = prober.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let both_down = samples.iter().filter(|(a, b)| !a && !b).count();
    assert_eq!(
        both_down,
        0,
        "{both_down} of {} probes found no gateway answering",
        samples.len()
    );
    assert!(
        samples.iter().any(|(a, _)| !a),
        "app2's gateway was never seen down: the probe missed the roll"
    );
    assert!(
        samples.iter().any(|(_, b)| !b),
        "app3's gateway was never seen down: the probe missed the roll"
    );
    let after = d.pids();
    for ((node, old), (_, new)) in before.iter().zip(&after) {
        assert!(new.is_some(), "{node} is not running after the roll");
        if node.ends_with("gateway") {
            assert_ne!(old, new, "{node} was not restarted");
        } else {
            assert_eq!(
                old, new,
                "{node} was restarted though only gateways were asked for"
            );
        }
    }
    assert!(d.nio_answers("app2") && d.nio_answers("app3"));
    d.assert_no_secret_printed();
}

#[test]
fn a_node_that_fails_its_health_check_stops_the_roll_and_leaves_the_rest_running() {
    // should: stop at the refusing gateway, name it, and leave every node after it running untouched
    if !lab_tests_enabled(
        "a_node_that_fails_its_health_check_stops_the_roll_and_leaves_the_rest_running",
    ) {
        return;
    }
    let d = Deployed::up();
    let before = d.pids();
    assert!(before.iter().all(|(_, p)| p.is_some()), "{before:?}");
    let refuse = format!("{GATEWAY_DIR}/repository/conf/standin-refuse-start");
    let touched = d.lab().exec("app2", &["touch", &refuse]).unwrap();
    assert!(touched.status.success());

    let started = Instant::now();
    let out = d.apim(&["restart"], &["--start-timeout", "8"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("roll stopped at app2/gateway"), "{all}");
    assert!(
        all.contains("Refusing to finish start-up"),
        "the log tail is shown:\n{all}"
    );
    assert!(took < Duration::from_secs(60), "the roll waited {took:?}");

    let after = d.pids();
    let pid =
        |list: &[(&str, Option<u32>)], node: &str| list.iter().find(|(n, _)| *n == node).unwrap().1;
    // The Key Manager comes first in the role order and was restarted.
    assert!(pid(&after, "app1/keymanager").is_some());
    assert_ne!(
        pid(&before, "app1/keymanager"),
        pid(&after, "app1/keymanager")
    );
    // Nodes after the failure: untouched, same process, still serving.
    for node in ["app3/gateway", "app1/publisher", "app1/store"] {
        assert_eq!(
            pid(&before, node),
            pid(&after, node),
            "{node} was touched after the failure"
        );
    }
    assert!(d.nio_answers("app3"), "the other gateway still answers");
    // Only the failed node is down: its pass-through port is closed.
    assert!(!d.nio_answers("app2"));

    // A budget of two down nodes lets the roll go on past the failure to app3.
    let app3_before = d.live_pid("app3", GATEWAY_DIR);
    let out = d.apim(
        &["restart"],
        &[
            "--roles",
            "gateway",
            "--max-unavailable",
            "2",
            "--start-timeout",
            "8",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let app3_after = d.live_pid("app3", GATEWAY_DIR);
    assert!(
        app3_after.is_some() && app3_after != app3_before,
        "app3 was restarted"
    );
    assert!(d.nio_answers("app3") && !d.nio_answers("app2"));
    d.assert_no_secret_printed();
}

#[test]
fn status_exits_0_in_sync_2_on_drift_or_pending_restart_1_unreachable_or_stopped() {
    // should: list every node running (pids as on the hosts), then report drift, a pending restart, an unreachable host and a stopped node
    if !lab_tests_enabled(
        "status_exits_0_in_sync_2_on_drift_or_pending_restart_1_unreachable_or_stopped",
    ) {
        return;
    }
    let d = Deployed::up();

    let (code, nodes, summary) = status_json(&d);
    assert_eq!(code, Some(0), "{summary}");
    let on_hosts = d.pids();
    assert_eq!(nodes.len(), on_hosts.len());
    for (node, pid) in &on_hosts {
        let n = nodes
            .iter()
            .find(|n| n["target"] == *node)
            .unwrap_or_else(|| panic!("{node} missing"));
        assert_eq!(n["running"], true, "{n}");
        assert_eq!(n["healthy"], true, "{n}");
        assert_eq!(
            n["pid"].as_u64().map(|p| p as u32),
            *pid,
            "{node}: pid as on the host"
        );
        assert!(
            n["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["listening"] == true),
            "{n}"
        );
    }

    // A hand edit of one managed value on one node.
    let file = format!("{GATEWAY_DIR}/repository/conf/api-manager.xml");
    let edit = |from: &str, to: &str| {
        let sed = format!(
            "s|<ThriftClientPort>{from}</ThriftClientPort>|<ThriftClientPort>{to}</ThriftClientPort>|"
        );
        let out = d.lab().exec("app3", &["sed", "-i", &sed, &file]).unwrap();
        assert!(out.status.success());
    };
    edit("10397", "10399");
    let out = d.apim(&["status"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let (_, _, summary) = status_json(&d);
    assert_eq!(
        summary["drifted"],
        serde_json::json!(["app3/gateway"]),
        "{summary}"
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("api-manager.xml") && shown.contains("10399"),
        "{shown}"
    );
    edit("10399", "10397");

    // A restart left pending (as by an `apply` killed after writing config): exit 2,
    // until `restart` of that node clears the mark on the host.
    let mark = format!("{GATEWAY_DIR}/.apim-deploy/restart-pending");
    assert!(
        d.lab()
            .exec("app3", &["touch", &mark])
            .unwrap()
            .status
            .success()
    );
    let (code, _, summary) = status_json(&d);
    assert_eq!(code, Some(2), "{summary}");
    assert_eq!(
        summary["restart_pending"],
        serde_json::json!(["app3/gateway"])
    );
    let out = d.apim(&["restart"], &["--limit", "app3"]);
    assert!(out.status.success(), "{}", text(&out));
    let gone = d.lab().exec("app3", &["test", "-e", &mark]).unwrap();
    assert!(
        !gone.status.success(),
        "the pending mark is removed after a healthy restart"
    );
    assert_eq!(status_json(&d).0, Some(0));

    // An unreachable host.
    d.lab().kill("app3", KillScope::Sshd).unwrap();
    let (code, _, summary) = status_json(&d);
    assert_eq!(code, Some(1), "{summary}");
    assert_eq!(
        summary["unreachable"],
        serde_json::json!(["app3"]),
        "{summary}"
    );
    d.lab().revive("app3").unwrap();

    // A stopped node.
    // As an operator would: the 1.9 script refuses to run without JAVA_HOME.
    let stop = format!(
        "cd {GATEWAY_DIR} && JAVA_HOME={} bash bin/wso2server.sh stop",
        d.deployable.java_home("app2")
    );
    assert!(
        d.lab()
            .exec("app2", &["sh", "-c", &stop])
            .unwrap()
            .status
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while d.live_pid("app2", GATEWAY_DIR).is_some() {
        assert!(Instant::now() < deadline, "app2's gateway did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, nodes, summary) = status_json(&d);
    assert_eq!(code, Some(1), "{summary}");
    assert_eq!(
        summary["unhealthy"],
        serde_json::json!(["app2/gateway"]),
        "{summary}"
    );
    let gw = nodes
        .iter()
        .find(|n| n["target"] == "app2/gateway")
        .unwrap();
    assert_eq!(gw["running"], false, "{gw}");
    d.assert_no_secret_printed();
}
