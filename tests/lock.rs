//! End-to-end tests of the run lock and what it protects, on real lab hosts (root;
//! APIM_LAB_TESTS=1): two runs at once, a holder killed outright, what `plan` and
//! `unlock` say, and a second server of one node started by hand. Outcomes are checked
//! on the hosts: the lock file, pid files and the live processes.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apim_lab::Layout;
use support::*;

const LOCK: &str = "/opt/wso2/.apim-deploy/lock";

fn spawn_apply(inv: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .arg("apply")
        .arg(inv)
        .args(extra)
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start apply")
}

/// The lock file of a host as the host has it (empty when nobody holds it).
fn lock_text(lab: &TestLab, host: &str) -> String {
    std::fs::read_to_string(lab.host_path(host, LOCK).unwrap()).unwrap_or_default()
}

/// Waits until the lock file of `host` names controller pid `pid`; returns how long.
fn wait_for_holder(lab: &TestLab, host: &str, pid: u32, limit: Duration) -> Duration {
    let started = Instant::now();
    let wanted = format!("pid={pid}\n");
    while !lock_text(lab, host).contains(&wanted) {
        assert!(
            started.elapsed() < limit,
            "{host}: pid {pid} never held the lock; the file says:\n{}",
            lock_text(lab, host)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Per node directory of `host`: the pid its pid file names and every server process
/// of that directory (`-Dcarbon.home=<dir>` in its command line), as the host sees them.
fn servers(lab: &TestLab, host: &str) -> Vec<(String, String, Vec<String>)> {
    let script = r#"for f in /opt/wso2/*/wso2carbon.pid; do
  [ -f "$f" ] || continue
  d=${f%/wso2carbon.pid}; p=$(tr -dc 0-9 < "$f"); procs=''
  for q in /proc/[0-9]*; do
    tr '\0' '\n' < "$q/cmdline" 2>/dev/null | grep -qxF -- "-Dcarbon.home=$d" && procs="$procs ${q#/proc/}"
  done
  echo "$d $p$procs"
done"#;
    exec(lab, host, &["bash", "-c", script])
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace().map(str::to_string);
            let dir = f.next().unwrap();
            let pid = f.next().unwrap_or_default();
            (dir, pid, f.collect())
        })
        .collect()
}

/// Exactly one server per node of `host`, the one its pid file names.
fn assert_one_server_per_node(lab: &TestLab, host: &str) {
    let found = servers(lab, host);
    assert!(
        !found.is_empty(),
        "{host}: no node directory with a pid file"
    );
    for (dir, pid, procs) in found {
        assert_eq!(
            procs,
            vec![pid.clone()],
            "{host}:{dir}: servers {procs:?}, pid file {pid}"
        );
    }
}

#[test]
fn two_applies_at_once_one_proceeds_and_the_other_stops_naming_the_holder() {
    // should: the second run stops within 10 s before changing anything, naming the
    // first (user, controller, pid, command, since); `plan` says a run is in progress;
    // the first run converges the cluster with one server per node; a second pair of
    // runs on the converged cluster behaves the same.
    if !lab_tests_enabled("two_applies_at_once_one_proceeds_and_the_other_stops_naming_the_holder")
    {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    for round in ["fresh", "converged"] {
        // A pending restart gives the converged round something to do.
        if round == "converged" {
            exec(
                &lab,
                "app1",
                &[
                    "bash",
                    "-c",
                    "echo x > /opt/wso2/KeyManager/.apim-deploy/restart-pending",
                ],
            );
        }
        let mut first = spawn_apply(inv, &[]);
        wait_for_holder(&lab, "app1", first.id(), Duration::from_secs(60));
        let started = Instant::now();
        let second = cli(&["apply", inv]);
        let took = started.elapsed();
        let err = text(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{round}: {err}");
        assert!(
            took < Duration::from_secs(10),
            "{round}: stopped after {took:?}"
        );
        assert!(err.contains("another run holds the lock"), "{round}: {err}");
        assert!(
            err.contains(&format!("pid {}", first.id())),
            "{round}: {err}"
        );
        assert!(
            err.contains("apply") && err.contains(" since "),
            "{round}: {err}"
        );
        eprintln!("{round}: the second apply stopped after {took:?}");

        let plan = cli(&["plan", inv]);
        let said = text(&plan.stderr);
        // Only a run that outlived the plan was certainly holding the lock while it probed
        // (a run that ended in between releases it first).
        if first.try_wait().unwrap().is_none() && !lock_text(&lab, "app1").is_empty() {
            assert!(said.contains("a run is in progress"), "{round}: {said}");
        }

        let out = first.wait_with_output().unwrap();
        assert!(out.status.success(), "{round}: {}", text(&out.stderr));
        assert_eq!(
            lock_text(&lab, "app1"),
            "",
            "{round}: the lock outlived its run"
        );
        assert_one_server_per_node(&lab, "app1");
    }
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}

#[test]
fn a_lock_holder_killed_outright_frees_the_lock_for_the_next_apply() {
    // should: SIGKILL the controller mid-run; the next `apply` takes the lock within 10 s
    // without `unlock`, and converges; `unlock` then finds nothing to break.
    if !lab_tests_enabled("a_lock_holder_killed_outright_frees_the_lock_for_the_next_apply") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let mut first = spawn_apply(inv, &[]);
    wait_for_holder(&lab, "app1", first.id(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    first.kill().unwrap();
    first.wait().unwrap();
    let killed = Instant::now();
    let next = spawn_apply(inv, &["--lock-timeout", "30"]);
    wait_for_holder(&lab, "app1", next.id(), Duration::from_secs(10));
    let cleared = killed.elapsed();
    eprintln!("the next apply held the lock {cleared:?} after the SIGKILL");
    assert!(cleared < Duration::from_secs(10), "{cleared:?}");
    let out = next.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_one_server_per_node(&lab, "app1");

    let unlock = cli(&["unlock", inv]);
    assert!(unlock.status.success(), "{}", text(&unlock.stderr));
    assert!(
        text(&unlock.stdout).contains("app1: not locked"),
        "{}",
        text(&unlock.stdout)
    );
}

#[test]
fn a_second_server_started_by_hand_is_reported_and_removed_by_apply() {
    // should: a server of the Key Manager's directory that its pid file does not name
    // is reported by `status` (exit 1) and `plan` (exit 2), and `apply` stops it before
    // starting the node: one server per node afterwards, the one its pid file names.
    if !lab_tests_enabled("a_second_server_started_by_hand_is_reported_and_removed_by_apply") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let out = cli(&["apply", inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_one_server_per_node(&lab, "app1");
    let java_home = lab.java_home("app1");
    // Started as an operator would, in the background; reaped at the end.
    let mut by_hand = lab
        .exec_command(
            "app1",
            &[
                "bash",
                "-c",
                "cd /opt/wso2/KeyManager && JAVA_HOME=\"$1\" exec bash bin/wso2server.sh",
                "x",
                &java_home,
            ],
        )
        .unwrap()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The hand-started server writes the pid file over the first one's and then
    // lingers or dies on the taken ports: either way one server is not named.
    let started = Instant::now();
    loop {
        let km = servers(&lab, "app1")
            .into_iter()
            .find(|(d, _, _)| d == "/opt/wso2/KeyManager")
            .unwrap();
        if km.2 != vec![km.1.clone()] && !km.2.is_empty() {
            let stray = km.2.iter().any(|p| *p != km.1);
            if stray && started.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{km:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = cli(&["status", inv]);
    let shown = text(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{shown}");
    assert!(shown.contains("stray server"), "{shown}");
    let plan = cli(&["plan", inv]);
    let planned = text(&plan.stdout);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{planned}{}",
        text(&plan.stderr)
    );
    assert!(planned.contains("stray server"), "{planned}");

    let out = cli(&["apply", inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_one_server_per_node(&lab, "app1");
    let again = cli(&["status", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    let _ = by_hand.wait();
}

#[test]
fn a_first_ctrl_c_lets_running_steps_finish_and_exits_130_listing_what_is_pending() {
    // should: SIGINT mid-run: no new step starts, the run says what was not started and
    // exits 130; the next `apply` converges with one server per node.
    if !lab_tests_enabled(
        "a_first_ctrl_c_lets_running_steps_finish_and_exits_130_listing_what_is_pending",
    ) {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let first = spawn_apply(inv, &[]);
    wait_for_holder(&lab, "app1", first.id(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let sent = Command::new("kill")
        .args(["-INT", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = first.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("not started:"), "{err}");
    assert_eq!(lock_text(&lab, "app1"), "", "the lock outlived the run");
    let next = cli(&["apply", inv]);
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert_one_server_per_node(&lab, "app1");
}

/// The holder's pid on `host`, from its lock file.
fn holder_pid(lab: &TestLab, host: &str) -> String {
    lock_text(lab, host)
        .lines()
        .find_map(|l| l.strip_prefix("holder="))
        .unwrap_or_else(|| panic!("{host}: no holder in the lock file"))
        .to_string()
}

fn alive(lab: &TestLab, host: &str, pid: &str) -> bool {
    lab.exec(host, &["kill", "-0", pid])
        .unwrap()
        .status
        .success()
}

#[test]
fn a_host_cut_off_mid_run_lets_go_of_its_lock_and_the_next_apply_proceeds() {
    // should: the controller's connection to app1 cut mid-run (all of app1's traffic
    // dropped): the holder on app1 stops hearing the heartbeat and releases the lock on
    // the host within its limit (20 s) plus slack, its process gone; once the network is
    // back, `apply` proceeds without `unlock` and converges.
    if !lab_tests_enabled("a_host_cut_off_mid_run_lets_go_of_its_lock_and_the_next_apply_proceeds")
    {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let first = spawn_apply(inv, &[]);
    wait_for_holder(&lab, "app1", first.id(), Duration::from_secs(60));
    let holder = holder_pid(&lab, "app1");
    lab.cut("app1").unwrap();
    let cut = Instant::now();
    while !lock_text(&lab, "app1").is_empty() {
        assert!(
            cut.elapsed() < Duration::from_secs(30),
            "app1 still locked {:?} after the cut:\n{}",
            cut.elapsed(),
            lock_text(&lab, "app1")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let released = cut.elapsed();
    eprintln!("app1 released its lock {released:?} after the cut");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !alive(&lab, "app1", &holder),
        "the holder outlived its release"
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    lab.heal("app1").unwrap();
    let next = cli(&["apply", inv]);
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert_one_server_per_node(&lab, "app1");
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}

#[test]
fn with_a_lock_timeout_the_second_apply_waits_for_the_first_and_then_converges() {
    // should: `apply --lock-timeout 60` started while another run holds the lock takes
    // it only once that run has ended (the lock file names the first run until then),
    // and converges: both exit 0, one server per node, `plan` exits 0.
    if !lab_tests_enabled(
        "with_a_lock_timeout_the_second_apply_waits_for_the_first_and_then_converges",
    ) {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let mut first = spawn_apply(inv, &[]);
    wait_for_holder(&lab, "app1", first.id(), Duration::from_secs(60));
    let first_holder = holder_pid(&lab, "app1");
    let second = spawn_apply(inv, &["--lock-timeout", "60"]);
    let theirs = format!("pid={}\n", second.id());
    let first_status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        // The first run releases its lock (its holder on the host ends) a moment before
        // its process prints the recap and exits: only a take before that is wrong.
        if lock_text(&lab, "app1").contains(&theirs) && alive(&lab, "app1", &first_holder) {
            // A holder that let go of the flock is gone within moments.
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                !alive(&lab, "app1", &first_holder),
                "the second run took the lock while the first held it"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(first_status.success(), "the first apply failed");
    wait_for_holder(&lab, "app1", second.id(), Duration::from_secs(10));
    let out = second.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_one_server_per_node(&lab, "app1");
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}

#[test]
fn unlock_breaks_a_lock_whose_holder_stopped_acting_after_showing_whose_it_was() {
    // should: a holder that stops acting (SIGSTOP: it keeps its flock but hears no
    // heartbeat) outlives its run: the next `apply` stops naming that run; `unlock` keeps
    // the lock while it was heard from within the heartbeat limit, then breaks it, naming
    // the run (pid, command), and the holder is gone; `apply` then proceeds.
    if !lab_tests_enabled(
        "unlock_breaks_a_lock_whose_holder_stopped_acting_after_showing_whose_it_was",
    ) {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let first = spawn_apply(inv, &[]);
    let first_pid = first.id();
    wait_for_holder(&lab, "app1", first_pid, Duration::from_secs(60));
    let holder = holder_pid(&lab, "app1");
    exec(&lab, "app1", &["kill", "-STOP", &holder]);
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        lock_text(&lab, "app1").contains(&format!("pid={first_pid}\n")),
        "the stopped holder should still hold the lock"
    );

    let blocked = cli(&["apply", inv]);
    let err = text(&blocked.stderr);
    assert_eq!(blocked.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {first_pid}")), "{err}");

    let early = cli(&["unlock", inv]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early.stdout));
    assert!(
        text(&early.stdout).contains("held by a live run"),
        "{}",
        text(&early.stdout)
    );
    assert!(alive(&lab, "app1", &holder));

    // Stale once the file has not been touched for longer than the heartbeat limit.
    let file = lab.host_path("app1", LOCK).unwrap();
    let silent = || {
        std::fs::metadata(&file)
            .unwrap()
            .modified()
            .unwrap()
            .elapsed()
            .unwrap_or_default()
    };
    while silent() <= Duration::from_secs(21) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let unlock = cli(&["unlock", inv]);
    let said = text(&unlock.stdout);
    assert!(unlock.status.success(), "{said}{}", text(&unlock.stderr));
    assert!(said.contains("app1: broke the stale lock of"), "{said}");
    assert!(said.contains(&format!("pid {first_pid} (`")), "{said}");
    assert!(said.contains("apply"), "{said}");
    assert!(!alive(&lab, "app1", &holder), "the stale holder survived");
    assert_eq!(lock_text(&lab, "app1"), "");

    let next = cli(&["apply", inv]);
    assert!(next.status.success(), "{}", text(&next.stderr));
    assert_one_server_per_node(&lab, "app1");
}

#[test]
fn two_applies_started_at_the_same_instant_never_both_win_nor_both_lose() {
    // should: on a converged cluster with a pending restart (the winner holds the lock for
    // seconds), two applies started together: exactly one exits 0 and the other exits 1
    // within 10 s naming the lock, three rounds in a row; one server per node after each.
    if !lab_tests_enabled("two_applies_started_at_the_same_instant_never_both_win_nor_both_lose") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 4.0);
    let inv = lab.inventory.to_str().unwrap();
    let out = cli(&["apply", inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for round in 1..=3 {
        exec(
            &lab,
            "app1",
            &[
                "bash",
                "-c",
                "echo x > /opt/wso2/KeyManager/.apim-deploy/restart-pending",
            ],
        );
        let started = Instant::now();
        let runs = [spawn_apply(inv, &[]), spawn_apply(inv, &[])].map(|r| {
            std::thread::spawn(move || {
                let out = r.wait_with_output().unwrap();
                (out.status.code(), started.elapsed(), text(&out.stderr))
            })
        });
        let mut outcomes: Vec<(Option<i32>, Duration, String)> =
            runs.into_iter().map(|t| t.join().unwrap()).collect();
        outcomes.sort_by_key(|o| o.0);
        let [(won, _, won_err), (lost, lost_after, lost_err)] = &outcomes[..] else {
            unreachable!()
        };
        assert_eq!(*won, Some(0), "round {round}: {won_err}\n---\n{lost_err}");
        assert_eq!(*lost, Some(1), "round {round}: {lost_err}");
        assert!(
            lost_err.contains("another run holds the lock"),
            "round {round}: {lost_err}"
        );
        assert!(
            *lost_after < Duration::from_secs(10),
            "round {round}: the loser stopped after {lost_after:?}"
        );
        eprintln!("round {round}: the loser stopped after {lost_after:?}");
        assert_one_server_per_node(&lab, "app1");
    }
}
