//! End-to-end test of a database seed killed halfway, on real lab hosts (root;
//! APIM_LAB_TESTS=1). The stand-in's apimgt script waits at a gate halfway through
//! while a session holds the named lock `standin seed gate`: the test holds it, sees the
//! seed waiting there, and SIGKILLs the run, so the seed is cut at a known point, not at
//! a sleep's guess. Outcomes are read on the database host with the mysql client.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use apim_lab::Layout;
use support::*;

/// The databases and their scripts in the distribution.
const DATABASES: &[(&str, &str)] = &[
    ("apimgtdb", "dbscripts/apimgt/mysql.sql"),
    ("userdb", "dbscripts/mysql.sql"),
    ("regdb", "dbscripts/mysql.sql"),
];
const GATE: &str = "standin seed gate";

/// Runs SQL as root (socket auth) on the db host; tab-separated rows.
fn sql(lab: &TestLab, query: &str) -> String {
    exec(lab, "db", &["mariadb", "-N", "-B", "-e", query])
}

/// A session on the db host holding the gate's named lock until it is dropped.
struct Gate {
    session: Child,
    stdin: Option<ChildStdin>,
}

impl Gate {
    fn hold(lab: &TestLab) -> Gate {
        let mut session = lab
            .exec_command("db", &["mariadb", "-N", "-B", "--unbuffered"])
            .unwrap()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = session.stdin.take().unwrap();
        writeln!(stdin, "SELECT GET_LOCK('{GATE}', 0);").unwrap();
        let mut line = String::new();
        BufReader::new(session.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "1", "the test could not take the gate");
        Gate {
            session,
            stdin: Some(stdin),
        }
    }

    /// Ends the session, which frees the lock.
    fn release(mut self) {
        self.stdin.take();
        self.session.wait().unwrap();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.session.kill();
        let _ = self.session.wait();
    }
}

/// Polls `check` every 50 ms until it holds, failing after `limit` with `what`.
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Table names each script creates, read from the distribution archive.
fn tables_created_by(zip: &std::path::Path, script: &str) -> BTreeSet<String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut text = String::new();
    archive
        .by_name(&format!("{}/{script}", apim_standin::TOP_DIR))
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("CREATE TABLE ")?;
            let rest = rest.strip_prefix("IF NOT EXISTS ").unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

fn tables_of(lab: &TestLab, db: &str) -> BTreeSet<String> {
    sql(
        lab,
        &format!("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}'"),
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn spawn_apply(inv: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(["apply", inv])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start apply")
}

#[test]
fn a_seed_killed_halfway_converges_on_the_next_apply() {
    // should: an apply SIGKILLed while its seed waits halfway through the apimgt script
    // leaves the real database empty and a partial seeding copy; `plan` names that copy;
    // the next apply drops it and seeds again: every database holds exactly the tables
    // its script creates and the script's rows once, no copy or lock is left, and a
    // following `plan` exits 0.
    if !lab_tests_enabled("a_seed_killed_halfway_converges_on_the_next_apply") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let gate = Gate::hold(&lab);
    let mut apply = spawn_apply(inv);
    let waiting_at_gate = || {
        sql(
            &lab,
            &format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE ID <> CONNECTION_ID() AND INFO LIKE 'DO GET_LOCK(''{GATE}''%'"
            ),
        )
        .trim()
            == "1"
    };
    wait_for(
        "the seed waits at the gate",
        Duration::from_secs(120),
        || {
            assert!(apply.try_wait().unwrap().is_none(), "apply ended early");
            waiting_at_gate()
        },
    );
    let expected = tables_created_by(&lab.dist.zip.path, DATABASES[0].1);
    let half = tables_of(&lab, "apimgtdb__seeding");
    assert!(
        !half.is_empty() && half.len() < expected.len() && half.is_subset(&expected),
        "the copy should hold part of {expected:?}, holds {half:?}"
    );
    assert_eq!(tables_of(&lab, "apimgtdb"), BTreeSet::new());

    apply.kill().unwrap();
    apply.wait().unwrap();
    // The run lock's holder ends the run's commands on the host when the run is gone;
    // only then is the gate opened, so no client of the killed run can finish the seed.
    wait_for(
        "the killed run's mysql client ends",
        Duration::from_secs(30),
        || {
            let found = lab
                .exec("db", &["pgrep", "-f", "--", "--defaults-extra-file"])
                .unwrap();
            found.status.code() == Some(1)
        },
    );
    gate.release();
    wait_for(
        "the killed seed's session ends",
        Duration::from_secs(30),
        || {
            !waiting_at_gate()
                && sql(&lab, "SELECT IS_USED_LOCK('apimgtdb__seeding') IS NULL").trim() == "1"
        },
    );
    assert_eq!(tables_of(&lab, "apimgtdb__seeding"), half, "the copy moved");
    assert_eq!(tables_of(&lab, "apimgtdb"), BTreeSet::new());

    let plan = cli(&["plan", inv]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}{}", text(&plan.stderr));
    let said = format!(
        "apimgtdb__seeding ({} tables) is left from an interrupted seed",
        half.len()
    );
    assert!(shown.contains(&said), "{shown}");

    let out = cli(&["apply", inv]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (db, script) in DATABASES {
        let expected = tables_created_by(&lab.dist.zip.path, script);
        assert!(expected.len() > 5, "{script}: {expected:?}");
        assert_eq!(tables_of(&lab, db), expected, "{db}");
    }
    assert_eq!(
        sql(
            &lab,
            "SELECT PRODUCT_NAME, COUNT(*) FROM apimgtdb.IDN_BASE_TABLE GROUP BY 1 \
             UNION ALL SELECT NAME, COUNT(*) FROM apimgtdb.IDP GROUP BY 1"
        ),
        "WSO2 Identity Server\t1\nLOCAL\t1\n",
        "the script's rows, once"
    );
    assert_eq!(
        sql(
            &lab,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%seeding'"
        ),
        ""
    );
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}
