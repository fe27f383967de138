//! Shared helpers for the end-to-end tests: [`Deployable`], the one way a test gets a lab
//! with the stand-in distribution and an inventory pointing at it (no test leases
//! prefixes itself), the CLI, and checks that read the hosts themselves.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use apim_lab::testing::{TestLab, lab_tests_enabled};
use apim_lab::{DistFiles, Layout};
use apim_standin::{Dist, DistOptions};

/// A lab of `layout` on a prefix leased by [`TestLab`] (127.0.100-199, so suites running
/// in parallel never meet), with the stand-in distribution written into it and an
/// inventory pointing at it. Torn down on drop, also when the test panics.
pub struct Deployable {
    pub lab: TestLab,
    /// The lab's generated inventory (tests may edit it in place).
    pub inventory: PathBuf,
    /// The stand-in archive and JDBC driver the inventory pins.
    pub dist: Dist,
}

impl Deployable {
    /// Brings the lab up with the layout's minimum of app hosts and writes the stand-in
    /// (its server waiting `start_delay_secs` before it reports started). The caller has
    /// already checked [`lab_tests_enabled`], which prints the skip line.
    pub fn up(layout: Layout, start_delay_secs: f64) -> Deployable {
        Self::up_with(layout, start_delay_secs, |_| {})
    }

    /// [`Deployable::up`] with the lab spec edited last (for example another JDK, or none).
    pub fn up_with(
        layout: Layout,
        start_delay_secs: f64,
        edit: impl FnOnce(&mut apim_lab::LabSpec),
    ) -> Deployable {
        let lab = TestLab::up(|spec| {
            spec.layout = layout;
            spec.app_hosts = layout.min_app_hosts();
            // The JDK 1.9.0 documents, under each app host's own /usr/lib/jvm. Nothing sets
            // JAVA_HOME there: the stand-in's wso2server.sh refuses to start until the
            // deployment passes it, as the real one does.
            spec.jdk = Some(apim_lab::DEFAULT_JDK);
            edit(spec);
        })
        .expect("lab up");
        let options = DistOptions {
            start_delay_secs,
            ..Default::default()
        };
        let dist =
            apim_standin::write_dist(&lab.dist_dir(), &options).expect("stand-in distribution");
        let inventory = lab
            .write_inventory(&DistFiles {
                zip: dist.zip.path.clone(),
                zip_sha256: dist.zip.sha256.clone(),
                jdbc_jar: dist.jdbc_jar.path.clone(),
                jdbc_jar_sha256: dist.jdbc_jar.sha256.clone(),
            })
            .expect("inventory");
        Deployable {
            lab,
            inventory,
            dist,
        }
    }

    /// JAVA_HOME of the stand-in JDK on an app host (`/usr/lib/jvm/jdk1.7.0_80`).
    pub fn java_home(&self, host: &str) -> String {
        self.lab
            .java_home(host)
            .expect("a lab host")
            .expect("app hosts have a JDK")
    }

    /// A copy of the inventory with `edit` applied, next to it; `edit` must change it.
    pub fn inventory_variant(&self, name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.inventory).expect("read the inventory");
        let edited = edit(&text);
        assert_ne!(edited, text, "variant {name} changed nothing");
        let path = self.state_dir().join(format!("inventory-{name}.toml"));
        std::fs::write(&path, edited).expect("write the inventory variant");
        path
    }
}

impl Deref for Deployable {
    type Target = TestLab;
    fn deref(&self) -> &TestLab {
        &self.lab
    }
}

/// Runs `apim-deploy ARGS...` without a terminal and returns its output.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run apim-deploy")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The secret values of a lab (its generated password files), for leak checks.
pub fn secrets(lab: &TestLab) -> Vec<String> {
    let dir = lab.state_dir().join("secrets");
    std::fs::read_dir(&dir)
        .expect("secrets dir")
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .trim()
                .to_string()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Fails when any secret value appears in any captured output.
pub fn assert_no_secret_in(outputs: &[&[u8]], secrets: &[String]) {
    for out in outputs {
        let t = text(out);
        for s in secrets {
            assert!(
                !t.contains(s.as_str()),
                "a secret value leaked into output:\n{t}"
            );
        }
    }
}

/// sha256 of every regular file below `inside` on a host (read through the controller's
/// view of the host's private directories), keyed by path.
pub fn tree_hashes(lab: &TestLab, host: &str, inside: &str) -> BTreeMap<PathBuf, String> {
    let root = lab.host_path(host, inside).expect("host path");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(root, &p, out);
        } else if meta.is_file() {
            use sha2::Digest;
            let bytes = std::fs::read(&p).unwrap_or_default();
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                hex::encode(sha2::Sha256::digest(&bytes)),
            );
        }
    }
}

/// A command's stdout inside a lab host (no SSH), asserting success.
pub fn exec(lab: &TestLab, host: &str, argv: &[&str]) -> String {
    let out = lab.exec(host, argv).expect("lab exec");
    assert!(
        out.status.success(),
        "{argv:?} on {host}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The database's schemas and tables, as the db host's root sees them.
pub fn db_schema(lab: &TestLab) -> String {
    exec(
        lab,
        "db",
        &[
            "mariadb",
            "-N",
            "-B",
            "-e",
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA NOT IN ('mysql','information_schema','performance_schema','sys') \
             ORDER BY 1, 2; SELECT User, Host, Db FROM mysql.db ORDER BY 1, 2, 3",
        ],
    )
}

/// The pid of a node's running stand-in server, if any (read from its pid file,
/// confirmed live inside the host).
pub fn server_pid(lab: &TestLab, host: &str, dir: &str) -> Option<String> {
    let out = lab
        .exec(
            host,
            &[
                "bash",
                "-c",
                "p=$(tr -d '\\000' < \"$1/wso2carbon.pid\" 2>/dev/null | tr -dc 0-9); \
                 [ -n \"$p\" ] && [ -d /proc/$p ] && echo $p",
                "x",
                dir,
            ],
        )
        .ok()?;
    let pid = text(&out.stdout).trim().to_string();
    (!pid.is_empty()).then_some(pid)
}

/// Parses an NDJSON stream, asserting every line is a JSON object with an `event`.
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    text(stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
            assert!(
                v.get("event").and_then(|e| e.as_str()).is_some(),
                "no event field: {l}"
            );
            v
        })
        .collect()
}

/// Targets of the `restart` events of a stream.
pub fn restarted(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "restart")
        .map(|e| e["target"].as_str().unwrap().to_string())
        .collect()
}
