//! Secrets rotated on a running cluster, checked on the hosts and in the database: the
//! database login of the nodes, the admin password (in the user store), the database
//! administrator's password. Values full of quotes, `&`, `<`, `>`, `$(...)` and
//! backticks; no output of any command holds an old or a new value in any form.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apim_lab::Layout;
use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256};
use support::*;

const APP_USER: &str = "wso2";

fn secret_file(lab: &TestLab, name: &str) -> std::path::PathBuf {
    lab.state_dir().join("secrets").join(name)
}

fn read_secret(lab: &TestLab, name: &str) -> String {
    std::fs::read_to_string(secret_file(lab, name))
        .unwrap()
        .trim_end_matches('\n')
        .to_string()
}

fn write_secret(lab: &TestLab, name: &str, value: &str) {
    std::fs::write(secret_file(lab, name), value).unwrap();
}

/// Every form a value could take in our outputs: raw, XML-escaped, JSON-escaped.
fn forms(value: &str) -> Vec<String> {
    let xml = value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    let json = serde_json::to_string(value).unwrap();
    let json = json[1..json.len() - 1].to_string();
    vec![value.to_string(), xml, json]
}

fn assert_none_of(values: &[String], outputs: &[(&str, &Output)]) {
    for (what, out) in outputs {
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        for v in values {
            for form in forms(v) {
                assert!(
                    !all.contains(&form),
                    "{what} printed a secret ({form:?}):\n{all}"
                );
            }
        }
    }
}

fn run(args: &[&str]) -> Output {
    let out = cli(args);
    eprintln!(
        "apim-deploy {}: {}\n{}",
        args.join(" "),
        out.status,
        text(&out.stderr)
    );
    out
}

/// Whether `user` logs in with `password` from `host` (where the nodes connect from).
fn logs_in(lab: &TestLab, host: &str, user: &str, password: &str) -> bool {
    let db = lab.host("db").unwrap().address.to_string();
    let options = format!("[client]\nuser={user}\npassword=\"{}\"\nhost={db}\n", {
        password.replace('\\', "\\\\").replace('"', "\\\"")
    });
    let out = lab
        .exec_with_stdin(
            host,
            &[
                "bash",
                "-c",
                "mariadb --defaults-extra-file=/dev/stdin --protocol=TCP -N -e 'SELECT 1'",
            ],
            Some(options.as_bytes()),
        )
        .unwrap();
    out.status.success()
}

fn db_query(lab: &TestLab, sql: &str) -> String {
    let out = lab
        .exec_with_stdin("db", &["mariadb", "-N", "-B"], Some(sql.as_bytes()))
        .unwrap();
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// Whether the user store accepts `password` for the admin, computed as Carbon's JDBC
/// user store does: base64(sha256(password + salt text)).
fn store_accepts(lab: &TestLab, password: &str) -> bool {
    let row = db_query(
        lab,
        "SELECT UM_USER_PASSWORD, UM_SALT_VALUE FROM userdb.UM_USER \
         WHERE UM_USER_NAME = 'admin' AND UM_TENANT_ID = -1234",
    );
    let (stored, salt) = row.trim().split_once('\t').expect("the admin row");
    let mut h = Sha256::new();
    h.update(password.as_bytes());
    h.update(salt.as_bytes());
    Base64::encode_string(&h.finalize()) == stored
}

/// Logins of the application that exist on the server.
fn app_logins(lab: &TestLab) -> Vec<String> {
    let out = db_query(
        lab,
        &format!("SELECT DISTINCT User FROM mysql.user WHERE User LIKE '{APP_USER}%' ORDER BY 1"),
    );
    out.lines().map(str::to_string).collect()
}

/// Watches the gateways' pass-through ports every 20 ms; records how long the longest
/// moment was in which none of them accepted a connection.
struct GatewayWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(Duration, usize)>,
}

impl GatewayWatch {
    fn start(addresses: Vec<SocketAddr>) -> GatewayWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut down_since: Option<Instant> = None;
            let mut looks = 0;
            while !flag.load(Ordering::SeqCst) {
                let any = addresses
                    .iter()
                    .any(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
                looks += 1;
                match (any, down_since) {
                    (false, None) => down_since = Some(Instant::now()),
                    (true, Some(since)) => {
                        worst = worst.max(since.elapsed());
                        down_since = None;
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(since) = down_since {
                worst = worst.max(since.elapsed());
            }
            (worst, looks)
        });
        GatewayWatch { stop, thread }
    }

    fn finish(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn gateways(lab: &TestLab) -> Vec<SocketAddr> {
    ["app2", "app3"]
        .iter()
        .map(|h| SocketAddr::new(lab.host(h).unwrap().address.into(), 8280))
        .collect()
}

fn assert_healthy_with_one_server_per_node(inv: &str, lab: &TestLab) {
    let status = run(&["status", inv]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stdout));
    let plan = run(&["plan", inv]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
    for (host, dirs) in [
        ("app1", &["KeyManager", "Publisher", "Store"][..]),
        ("app2", &["Gateway"][..]),
        ("app3", &["Gateway"][..]),
    ] {
        for dir in dirs {
            let dir = format!("/opt/wso2/{dir}");
            let pid = server_pid(lab, host, &dir);
            let procs = exec(
                lab,
                host,
                &[
                    "bash",
                    "-c",
                    "pgrep -f -- \"-Dcarbon.home=$1\" | sort -u",
                    "x",
                    &dir,
                ],
            );
            let procs: Vec<&str> = procs.split_whitespace().collect();
            assert!(pid.is_some(), "{host}:{dir}: not running");
            assert!(
                procs.len() <= 2 && procs.contains(&pid.as_deref().unwrap()),
                "{host}:{dir}: servers {procs:?}, pid file {pid:?}"
            );
        }
    }
}

#[test]
fn every_secret_rotates_on_a_running_cluster_without_an_outage_or_a_leak() {
    // should: the DB app password, the admin password and the DB admin password, changed
    // together on a converged two-gateway cluster: plan, plan --json, apply --diff
    // --json, status and restart, with their logs from -v to -vvv, and a plan and an apply
    // whose database probe fails, print none of the old or new values; at every instant
    // a gateway answers; afterwards the cluster is healthy, the old app password no
    // longer logs in, the user store takes the new admin password and not the old.
    if !lab_tests_enabled("every_secret_rotates_on_a_running_cluster_without_an_outage_or_a_leak") {
        return;
    }
    let lab = Deployable::up(Layout::TwoGateways, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let first = run(&["apply", inv]);
    assert!(first.status.success());
    let old_app = read_secret(&lab, "db_app_password");
    let old_admin = read_secret(&lab, "admin_password");
    let old_db_admin = read_secret(&lab, "db_admin_password");
    assert!(
        store_accepts(&lab, &old_admin),
        "the Key Manager created the admin"
    );
    assert!(logs_in(&lab, "app2", APP_USER, &old_app));

    let new_app = "app'\"&<tag>$(touch /tmp/x1)`id`-R0tated";
    let new_admin = "adm'\"&<b>$(touch /tmp/x2)`id`-R0tated";
    let new_db_admin = "dba'\"&<i>$(touch /tmp/x3)`id`-R0tated";
    // The operator changes the server's administrator password, then the inventory's.
    db_query(
        &lab,
        &format!(
            "ALTER USER 'apimadmin'@'%' IDENTIFIED BY '{}';",
            new_db_admin.replace('\\', "\\\\").replace('\'', "''")
        ),
    );
    write_secret(&lab, "db_admin_password", new_db_admin);
    write_secret(&lab, "db_app_password", new_app);
    write_secret(&lab, "admin_password", new_admin);

    let plan = run(&["plan", inv]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stdout));
    let said = text(&plan.stdout);
    assert!(said.contains("secret changed"), "{said}");
    assert!(said.contains(&format!("{APP_USER}_2")), "{said}");
    let plan_json = run(&["plan", inv, "--json"]);
    // The logs at every verbosity, the SSH library's packet trace included.
    let plan_logs = run(&["plan", inv, "-vvv"]);

    let watch = GatewayWatch::start(gateways(&lab));
    let started = Instant::now();
    let apply = run(&["apply", inv, "--diff", "--json", "-vv"]);
    let took = started.elapsed();
    let (gap, looks) = watch.finish();
    eprintln!(
        "rotation: apply took {took:?}; longest moment without a gateway: {gap:?} ({looks} looks)"
    );
    assert!(apply.status.success(), "{}", text(&apply.stdout));
    assert_eq!(
        gap,
        Duration::ZERO,
        "no gateway answered for {gap:?} during the rotation"
    );

    let status = run(&["status", inv, "-vvv"]);
    let restart = run(&["restart", inv, "-v"]);
    assert!(restart.status.success(), "{}", text(&restart.stdout));

    // A probe that fails with a credential in its script: a wrong database admin password
    // (hostile too) makes the database host's questions fail; neither the plan nor the
    // apply that stops on it may echo any value, at the highest verbosity.
    let wrong_db_admin = "wrong'\"&<u>$(touch /tmp/x4)`id`-Adm1n";
    write_secret(&lab, "db_admin_password", wrong_db_admin);
    let failing_plan = run(&["plan", inv, "-vvv"]);
    let failing_apply = run(&["apply", inv, "-vvv"]);
    assert_eq!(
        failing_plan.status.code(),
        Some(1),
        "the wrong password must stop the plan"
    );
    assert_eq!(failing_apply.status.code(), Some(1), "and the apply");
    write_secret(&lab, "db_admin_password", new_db_admin);

    let values: Vec<String> = [
        &old_app,
        &old_admin,
        &old_db_admin,
        &new_app.to_string(),
        &new_admin.to_string(),
        &new_db_admin.to_string(),
        &wrong_db_admin.to_string(),
    ]
    .into_iter()
    .cloned()
    .collect();
    assert_none_of(
        &values,
        &[
            ("plan", &plan),
            ("plan --json", &plan_json),
            ("plan -vvv", &plan_logs),
            ("apply --diff --json -vv", &apply),
            ("status -vvv", &status),
            ("restart -v", &restart),
            ("plan -vvv with a failing probe", &failing_plan),
            ("apply -vvv with a failing probe", &failing_apply),
        ],
    );

    assert_healthy_with_one_server_per_node(inv, &lab);
    assert_eq!(app_logins(&lab), [format!("{APP_USER}_2")]);
    for host in ["app1", "app2", "app3"] {
        assert!(
            !logs_in(&lab, host, APP_USER, &old_app),
            "{host}: old login"
        );
        assert!(
            !logs_in(&lab, host, &format!("{APP_USER}_2"), &old_app),
            "{host}: old password"
        );
        assert!(
            logs_in(&lab, host, &format!("{APP_USER}_2"), new_app),
            "{host}: the new login"
        );
    }
    assert!(store_accepts(&lab, new_admin));
    assert!(!store_accepts(&lab, &old_admin));
    for marker in ["/tmp/x1", "/tmp/x2", "/tmp/x3", "/tmp/x4"] {
        assert!(
            !Path::new(marker).exists(),
            "a secret ran as code: {marker}"
        );
    }
}

fn spawn_apply(inv: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(["apply", inv])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_rotation_killed_halfway_converges_on_the_next_apply() {
    // should: SIGKILL an apply right after the new login exists (nodes half switched);
    // the next apply finishes the switch, drops the old login, and leaves a healthy
    // cluster on the new password; a following plan changes nothing.
    if !lab_tests_enabled("a_rotation_killed_halfway_converges_on_the_next_apply") {
        return;
    }
    let lab = Deployable::up(Layout::TwoGateways, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    assert!(run(&["apply", inv]).status.success());
    let old_app = read_secret(&lab, "db_app_password");
    let new_app = "k1lled'\"&<x>$(id)`id`";
    write_secret(&lab, "db_app_password", new_app);

    let mut apply = spawn_apply(inv);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Halfway: the new login exists and the first node (the Key Manager) is restarting.
    while !app_logins(&lab).contains(&format!("{APP_USER}_2")) {
        assert!(Instant::now() < deadline, "the new login never appeared");
        assert!(apply.try_wait().unwrap().is_none(), "apply ended first");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(700));
    apply.kill().unwrap();
    apply.wait().unwrap();
    assert_eq!(
        app_logins(&lab),
        [APP_USER.to_string(), format!("{APP_USER}_2")],
        "killed before the old login went"
    );

    let next = run(&["apply", inv]);
    assert!(next.status.success());
    assert_healthy_with_one_server_per_node(inv, &lab);
    assert_eq!(app_logins(&lab), [format!("{APP_USER}_2")]);
    assert!(!logs_in(&lab, "app2", &format!("{APP_USER}_2"), &old_app));
    assert!(logs_in(&lab, "app2", &format!("{APP_USER}_2"), new_app));
}
