//! What real hosts do that a forgiving stand-in would hide: no JAVA_HOME in the SSH
//! session, a JDK the product cannot run on, a start that fails at once or dies early
//! or logs a fatal error and lingers, a port some other process holds, a disk too
//! small. Checked on the lab's hosts (processes, /proc, files), not in the tool's output
//! alone. The stand-in's wso2server.sh checks Java as 1.9.0's does.

mod support;

use std::time::Instant;

use apim_lab::{JdkVersion, Layout};
use apim_standin::jdk::{ArchiveFormat, write_jdk_archive};
use support::{Deployable, cli, events, exec, lab_tests_enabled, server_pid, text};

/// `JAVA_HOME` in the environment of a node's running server, read from /proc.
fn server_java_home(lab: &Deployable, host: &str, dir: &str) -> String {
    let pid = server_pid(lab, host, dir).unwrap_or_else(|| panic!("{host}:{dir} runs"));
    let environ = exec(lab, host, &["cat", &format!("/proc/{pid}/environ")]);
    environ
        .split('\0')
        .find_map(|kv| kv.strip_prefix("JAVA_HOME="))
        .unwrap_or_else(|| panic!("{host}:{dir}: no JAVA_HOME in the server's environment"))
        .to_string()
}

fn inventory(lab: &Deployable) -> String {
    lab.inventory.to_str().unwrap().to_string()
}

#[test]
fn without_a_supported_jdk_plan_and_apply_stop_before_any_change_naming_every_host() {
    if !lab_tests_enabled("without_a_supported_jdk_plan_and_apply_stop_before_any_change") {
        return;
    }
    // Every app host has only JDK 17: 1.9.0's JVM flags are fatal there.
    let lab = Deployable::up_with(Layout::OnePerHost, 0.0, |spec| {
        spec.jdk = Some(JdkVersion::V17)
    });
    let inv = inventory(&lab);
    let plan = cli(&["plan", &inv]);
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan.stderr));
    let err = text(&plan.stderr);
    for host in ["app1", "app2", "app3", "app4"] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("{host}: task `Java runtime`: "))
                    && l.contains("no usable Java runtime (needs JDK 1.7 or 1.8)")
                    && l.contains("/usr/lib/jvm/jdk-17.0.2: version 17.0.2")),
            "{host} is named with what was found:\n{err}"
        );
    }
    assert!(err.contains("[install] java_home"), "what to do:\n{err}");
    let apply = cli(&["apply", &inv]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply.stderr));
    for host in ["app1", "app2", "app3", "app4"] {
        let opt = exec(&lab, host, &["ls", "-A", "/opt"]);
        assert_eq!(opt.trim(), "", "{host}: nothing installed");
    }
    let dbs = exec(
        &lab,
        "db",
        &["mariadb", "-N", "-e", "SHOW DATABASES LIKE '%db'"],
    );
    assert_eq!(dbs.trim(), "", "no database created");
}

#[test]
fn servers_run_on_the_jdk_found_and_start_failures_are_reported_in_seconds_with_the_cause() {
    if !lab_tests_enabled("servers_run_on_the_jdk_found_and_start_failures_are_reported") {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 0.0);
    let inv = inventory(&lab);
    let apply = cli(&["apply", &inv]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    // Nothing set JAVA_HOME in the SSH session: the JDK was found under /usr/lib/jvm.
    for (host, dir) in [
        ("app1", "/opt/wso2/KeyManager"),
        ("app2", "/opt/wso2/Gateway"),
        ("app3", "/opt/wso2/Publisher"),
        ("app4", "/opt/wso2/Store"),
    ] {
        assert_eq!(server_java_home(&lab, host, dir), lab.java_home(host));
    }
    let store = "/opt/wso2/Store";
    let stop_store = || {
        let pid = server_pid(&lab, "app4", store).expect("the store runs");
        exec(&lab, "app4", &["kill", "-KILL", &pid]);
    };
    // A start failure, seen on the host; returns the error and the step's duration.
    let failed_start = || {
        let t0 = Instant::now();
        let out = cli(&["apply", &inv, "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        // The failed host is written where `--limit @FILE` reads it back, and the
        // last line says how.
        let retry = format!("{inv}.retry");
        let err = text(&out.stderr);
        assert_eq!(
            err.trim_end().lines().last(),
            Some(format!("retry with: --limit @{retry}").as_str()),
            "{err}"
        );
        let listed = std::fs::read_to_string(&retry).unwrap();
        let hosts: Vec<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(hosts, ["app4"], "{listed}");
        let evs = events(&out.stdout);
        let restart = evs
            .iter()
            .find(|e| e["event"] == "restart" && e["target"] == "app4/store")
            .expect("a start of the store");
        assert_eq!(restart["healthy"], false);
        let failed = evs
            .iter()
            .find(|e| e["event"] == "task_failed")
            .expect("a failed task");
        let error = failed["error"].as_str().unwrap().to_string();
        let ms = restart["duration_ms"].as_u64().unwrap();
        assert!(t0.elapsed().as_secs() < 30, "apply took {:?}", t0.elapsed());
        (error, ms)
    };

    // 1. The start command refuses at once: its exit status and output are the error.
    stop_store();
    let script = format!("{store}/bin/wso2server.sh");
    exec(&lab, "app4", &["cp", &script, &format!("{script}.orig")]);
    exec(
        &lab,
        "app4",
        &[
            "sh",
            "-c",
            "printf '#!/bin/sh\\necho \"launcher: refusing\"\\nexit 1\\n' > \"$1\"",
            "x",
            &script,
        ],
    );
    let (error, ms) = failed_start();
    assert!(
        error.starts_with("the start command exited with status 1"),
        "{error}"
    );
    assert!(error.contains("launcher: refusing"), "{error}");
    assert!(ms < 2_000, "reported after {ms} ms");
    exec(&lab, "app4", &["mv", &format!("{script}.orig"), &script]);

    // 2. The JVM dies during start-up without a log line (it cannot initialise):
    // reported when its processes are gone, not after the start timeout.
    let java = format!("{}/bin/java", lab.java_home("app4"));
    exec(&lab, "app4", &["cp", &java, &format!("{java}.orig")]);
    exec(
        &lab,
        "app4",
        &[
            "sh",
            "-c",
            "printf '%s\\n' '#!/bin/sh' \
             'case \"$1\" in -version|-fullversion) echo \"java version \\\"1.7.0_80\\\"\" >&2; exit 0;; esac' \
             'echo \"Error occurred during initialization of VM\" >&2' 'exit 1' > \"$1\"",
            "x",
            &java,
        ],
    );
    let (error, ms) = failed_start();
    assert!(
        error.starts_with("the server process exited before it was healthy"),
        "{error}"
    );
    assert!(ms < 3_000, "reported after {ms} ms");
    assert_eq!(server_pid(&lab, "app4", store), None);
    exec(&lab, "app4", &["mv", &format!("{java}.orig"), &java]);

    // 2b. Carbon's own fatal initialization failure (the stand-in then exits): the
    // cause is quoted, never an INFO line.
    let exit_early = format!("{store}/repository/conf/standin-exit-early");
    exec(&lab, "app4", &["touch", &exit_early]);
    let (error, ms) = failed_start();
    assert!(
        error.contains("WSO2 Carbon initialization Failed"),
        "{error}"
    );
    assert!(!error.contains(" INFO "), "no INFO line quoted: {error}");
    assert!(ms < 3_000, "reported after {ms} ms");
    assert_eq!(server_pid(&lab, "app4", store), None);
    exec(&lab, "app4", &["rm", &exit_early]);

    // 3. The server logs a fatal line and lingers: reported at once, and not left running.
    // The store's own database account is locked behind the tool's back (a password
    // changed by hand would be put back by the run: the login is the tool's to keep).
    let address = lab.host("app4").unwrap().address.to_string();
    exec(
        &lab,
        "db",
        &[
            "mariadb",
            "-e",
            &format!("ALTER USER 'wso2'@'{address}' ACCOUNT LOCK"),
        ],
    );
    let (error, ms) = failed_start();
    assert!(
        error.starts_with("the server logged a fatal error and was stopped"),
        "{error}"
    );
    assert!(error.contains("Access denied"), "{error}");
    assert!(ms < 3_000, "reported after {ms} ms");
    assert_eq!(server_pid(&lab, "app4", store), None, "not left lingering");
    let procs = exec(
        &lab,
        "app4",
        &[
            "sh",
            "-c",
            "pgrep -f -- '[-]Dcarbon.home=/opt/wso2/Store' || true",
        ],
    );
    assert_eq!(procs.trim(), "", "no process of the node is left");
}

#[test]
fn a_foreign_port_holder_and_a_disk_too_small_are_reported_by_plan_before_any_change() {
    if !lab_tests_enabled("a_foreign_port_holder_and_a_disk_too_small_are_reported_by_plan") {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 0.0);
    let inv = inventory(&lab);
    // Some other program listens on the gateway's pass-through HTTPS port.
    let mut holder = lab
        .exec_command(
            "app2",
            &[
                "python3",
                "-c",
                "import socket,time\ns=socket.socket()\ns.bind(('0.0.0.0', 8243))\ns.listen()\ntime.sleep(120)",
            ],
        )
        .unwrap()
        .spawn()
        .unwrap();
    // The publisher's install root is a 1 MiB tmpfs.
    exec(&lab, "app3", &["mkdir", "-p", "/opt/wso2"]);
    exec(
        &lab,
        "app3",
        &[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "apim-small",
            "/opt/wso2",
        ],
    );
    let mut pid = String::new();
    for _ in 0..50 {
        pid = exec(&lab, "app2", &["sh", "-c", "pgrep -f 's.bind' || true"]);
        if !pid.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let pid = pid
        .trim()
        .lines()
        .next()
        .expect("the holder runs")
        .to_string();
    let plan = cli(&["plan", &inv]);
    let err = text(&plan.stderr);
    assert_eq!(plan.status.code(), Some(1), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("app2/gateway")
            && l.contains(&format!("port 8243 is held by pid {pid} (python3 -c"))),
        "the port's holder is named:\n{err}"
    );
    assert!(
        err.lines().any(|l| l.starts_with("app3")
            && l.contains("no space left for")
            && l.contains("on /opt/wso2, 1 MiB free")),
        "the sizes are named:\n{err}"
    );
    // The operator may overrule a check by name; the other checks still hold.
    let skip_ports = cli(&["plan", &inv, "--skip-preflight", "ports"]);
    let err = text(&skip_ports.stderr);
    assert_eq!(skip_ports.status.code(), Some(1), "{err}");
    assert!(!err.contains("port 8243"), "{err}");
    assert!(
        err.contains("--skip-preflight disk"),
        "the way out is named:\n{err}"
    );
    let skip_both = cli(&[
        "plan",
        &inv,
        "--skip-preflight",
        "ports",
        "--skip-preflight",
        "disk",
    ]);
    assert_eq!(
        skip_both.status.code(),
        Some(2),
        "{}",
        text(&skip_both.stderr)
    );
    let apply = cli(&["apply", &inv]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(apply.status.code(), Some(1));
    for host in ["app1", "app2", "app4"] {
        let opt = exec(&lab, host, &["ls", "-A", "/opt"]);
        assert_eq!(opt.trim(), "", "{host}: nothing changed");
    }
    exec(&lab, "app3", &["umount", "/opt/wso2"]);
}

#[test]
fn a_pinned_jdk_archive_is_installed_once_per_host_and_a_new_one_beside_it() {
    if !lab_tests_enabled("a_pinned_jdk_archive_is_installed_once_per_host") {
        return;
    }
    // No JDK on any host: the inventory brings one.
    let lab = Deployable::up_with(Layout::TwoGateways, 0.0, |spec| spec.jdk = None);
    let jdk8 = write_jdk_archive(&lab.dist_dir(), JdkVersion::V1_8, ArchiveFormat::TarGz).unwrap();
    let with_java = |name: &str, path: &std::path::Path, sha256: &str| {
        lab.inventory_variant(name, |t| {
            format!(
                "{t}\n[java]\npath = {:?}\nsha256 = \"{sha256}\"\n",
                path.to_str().unwrap()
            )
        })
    };
    let inv8 = with_java("jdk8", &jdk8.path, &jdk8.sha256);
    let inv8 = inv8.to_str().unwrap();
    let apply = cli(&["apply", inv8]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    let home8 = format!("/opt/wso2/java/{}-jdk1.8.0_202", &jdk8.sha256[..12]);
    for (host, dir) in [
        ("app1", "/opt/wso2/KeyManager"),
        ("app1", "/opt/wso2/Store"),
        ("app2", "/opt/wso2/Gateway"),
        ("app3", "/opt/wso2/Gateway"),
    ] {
        assert_eq!(server_java_home(&lab, host, dir), home8, "{host}:{dir}");
    }
    let before = support::tree_hashes(&lab, "app2", "/opt/wso2/java");
    assert!(!before.is_empty());
    let plan = cli(&["plan", inv8]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "a rerun changes nothing:\n{}",
        text(&plan.stdout)
    );
    // A new archive (another JDK, another format) installs beside the first; every node
    // restarts onto it.
    let jdk7 = write_jdk_archive(&lab.dist_dir(), JdkVersion::V1_7, ArchiveFormat::Zip).unwrap();
    let inv7 = with_java("jdk7", &jdk7.path, &jdk7.sha256);
    let apply = cli(&["apply", inv7.to_str().unwrap(), "--json"]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    let mut restarted = support::restarted(&events(&apply.stdout));
    restarted.sort();
    assert_eq!(
        restarted,
        [
            "app1/keymanager",
            "app1/publisher",
            "app1/store",
            "app2/gateway",
            "app3/gateway"
        ]
    );
    let home7 = format!("/opt/wso2/java/{}-jdk1.7.0_80", &jdk7.sha256[..12]);
    assert_eq!(server_java_home(&lab, "app2", "/opt/wso2/Gateway"), home7);
    let after = support::tree_hashes(&lab, "app2", "/opt/wso2/java");
    for (path, hash) in &before {
        assert_eq!(after.get(path), Some(hash), "the old JDK is kept: {path:?}");
    }
}

#[test]
fn a_host_frozen_mid_run_is_reported_lost_within_15_seconds_naming_its_step() {
    if !lab_tests_enabled("a_host_frozen_mid_run_is_reported_lost_within_15_seconds") {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let lab = Deployable::up(Layout::OnePerHost, 3.0);
    let inv = inventory(&lab);
    let mut run = Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(["apply", "--json", &inv])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut frozen_at = None;
    let mut lost = None;
    for line in BufReader::new(run.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // The store's host freezes once the run is busy on it (its node is being set up).
        if frozen_at.is_none()
            && line.contains("\"event\":\"task_start\"")
            && line.contains("\"target\":\"app4/store\"")
        {
            lab.freeze("app4").unwrap();
            frozen_at = Some(Instant::now());
        }
        if line.contains("\"event\":\"task_failed\"") && line.contains("\"target\":\"app4") {
            lost = Some((Instant::now(), line));
            break;
        }
    }
    let frozen_at = frozen_at.expect("the run reached the store's host");
    let (when, line) = lost.expect("the frozen host's step failed");
    lab.thaw("app4").unwrap();
    let _ = run.kill();
    let _ = run.wait();
    let after = when - frozen_at;
    assert!(
        after.as_secs_f64() < 15.0,
        "declared lost {after:?} after the freeze"
    );
    // Whichever notices first: the keepalives of a running command, or the timeout of
    // opening the next command's channel on the frozen host.
    assert!(
        line.contains("lost: the host stopped answering") || line.contains("timed out after"),
        "{line}"
    );
    assert!(line.contains("\"task\":"), "the step is named: {line}");
}
