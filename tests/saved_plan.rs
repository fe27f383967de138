//! End-to-end tests of saved plans (`plan --out FILE`, `apply --plan FILE`) on real lab
//! hosts (root; APIM_LAB_TESTS=1): a saved plan applies exactly or not at all. Outcomes
//! are checked on the hosts (the files, the servers' pids), not in the tool's output.

mod support;

use std::path::{Path, PathBuf};

use apim_lab::Layout;
use support::*;

const KM: &str = "/opt/wso2/KeyManager";
const CARBON: &str = "/opt/wso2/KeyManager/repository/conf/carbon.xml";

fn read_host(lab: &TestLab, host: &str, path: &str) -> String {
    std::fs::read_to_string(lab.host_path(host, path).unwrap()).unwrap()
}

fn write_host(lab: &TestLab, host: &str, path: &str, text: &str) {
    std::fs::write(lab.host_path(host, path).unwrap(), text).unwrap();
}

fn plan_out(inv: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["plan", inv, "--out", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(&args)
}

fn apply_plan(inv: &str, file: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", inv, "--plan", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    cli(&args)
}

/// Every form a secret could take in a JSON file: raw, JSON-escaped, XML-escaped.
fn assert_no_secret_in_file(file: &Path, secrets: &[String]) {
    let saved = std::fs::read_to_string(file).unwrap();
    for s in secrets {
        let json = serde_json::to_string(s).unwrap();
        let xml = s
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        for form in [s.as_str(), json.trim_matches('"'), xml.as_str()] {
            assert!(
                !saved.contains(form),
                "a secret is in the saved plan {}",
                file.display()
            );
        }
    }
}

/// The configuration of every node and the Key Manager's server pid: what an `apply`
/// that changes nothing leaves as it was.
fn conf_and_pid(lab: &TestLab) -> (std::collections::BTreeMap<PathBuf, String>, Option<String>) {
    let mut conf = tree_hashes(lab, "app1", "/opt/wso2");
    conf.retain(|path, _| path.to_string_lossy().contains("/repository/conf/"));
    assert!(!conf.is_empty(), "no node configuration under /opt/wso2");
    (conf, server_pid(lab, "app1", KM))
}

#[test]
fn a_saved_plan_applies_exactly_or_is_refused_as_stale_or_foreign() {
    // should: a saved plan holds no secret; on a fresh lab it applies and a following
    // `plan` exits 0; a plan made before a hand edit of a file it changes is refused as
    // stale and the hand edit is kept; a plan for another inventory, playbook,
    // distribution, --limit or secrets is refused naming what differs; a damaged or
    // foreign file is a clear error; a no-op saved plan changes nothing.
    if !lab_tests_enabled("a_saved_plan_applies_exactly_or_is_refused_as_stale_or_foreign") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.to_str().unwrap();
    let secrets = secrets(&lab);
    let dir = lab.state_dir().to_path_buf();
    let mut outputs = Vec::new();

    // A fresh lab: the saved plan writes every password into the nodes' files.
    let fresh = dir.join("fresh.plan.json");
    let out = plan_out(inv, &fresh, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_no_secret_in_file(&fresh, &secrets);
    let out = apply_plan(inv, &fresh, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    outputs.push(out);
    let out = cli(&["plan", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let pid = server_pid(&lab, "app1", KM).expect("the Key Manager runs");

    // Drift the Key Manager's port offset: the plan puts it back and restarts the node.
    let converged = read_host(&lab, "app1", CARBON);
    let drifted = regex_replace_offset(&converged, "9");
    write_host(&lab, "app1", CARBON, &drifted);
    let drift = dir.join("drift.plan.json");
    let out = plan_out(inv, &drift, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    eprintln!(
        "a saved plan of one change: {} bytes",
        std::fs::metadata(&drift).unwrap().len()
    );

    // Another inventory, playbook, distribution, --limit or secret values: refused
    // before anything is touched.
    let timeout = lab.inventory_variant("timeout", |t| {
        t.replace("command_timeout_secs = 600", "command_timeout_secs = 601")
    });
    let out = apply_plan(timeout.to_str().unwrap(), &drift, &[]);
    assert_refused(&out, "made for another inventory (");
    let playbook = dir.join("edited-playbook.toml");
    let builtin = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/wso2am-1.9.toml"),
    )
    .unwrap();
    std::fs::write(&playbook, format!("{builtin}\n# edited\n")).unwrap();
    let out = apply_plan(inv, &drift, &["--playbook", playbook.to_str().unwrap()]);
    assert_refused(&out, "another playbook (");
    let other = apim_standin::write_dist(
        &dir.join("dist-other"),
        &apim_standin::DistOptions {
            start_delay_secs: 0.6,
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(other.zip.sha256, lab.dist.zip.sha256);
    let other_dist = lab.inventory_variant("other-dist", |t| {
        t.replace(
            lab.dist.zip.path.to_str().unwrap(),
            other.zip.path.to_str().unwrap(),
        )
        .replace(&lab.dist.zip.sha256, &other.zip.sha256)
    });
    let out = apply_plan(other_dist.to_str().unwrap(), &drift, &[]);
    assert_refused(&out, "another distribution (");
    let out = apply_plan(inv, &drift, &["--limit", "app1"]);
    assert_refused(&out, "another --limit (all in the plan, app1 now)");
    let secret_file = dir.join("secrets/admin_password");
    let admin_password = std::fs::read_to_string(&secret_file).unwrap();
    std::fs::write(&secret_file, "another-admin-password-0123456789").unwrap();
    let out = apply_plan(inv, &drift, &[]);
    std::fs::write(&secret_file, &admin_password).unwrap();
    assert_refused(&out, "other secret values");
    outputs.push(out);
    assert_eq!(
        read_host(&lab, "app1", CARBON),
        drifted,
        "a refused plan changed a file"
    );

    // A damaged or foreign file.
    let saved = std::fs::read(&drift).unwrap();
    let cut = dir.join("cut.plan.json");
    std::fs::write(&cut, &saved[..saved.len() / 2]).unwrap();
    assert_refused(&apply_plan(inv, &cut, &[]), "truncated or damaged");
    let v2 = dir.join("v2.plan.json");
    let text_v2 = String::from_utf8(saved.clone())
        .unwrap()
        .replace("apim-deploy.saved-plan/1", "apim-deploy.saved-plan/2");
    std::fs::write(&v2, text_v2).unwrap();
    assert_refused(
        &apply_plan(inv, &v2, &[]),
        "its schema is `apim-deploy.saved-plan/2`",
    );

    // A hand edit of the file the plan changes, after the plan: refused as stale, kept.
    let edited = drifted.replace("</Server>", "<!-- hand edit -->\n</Server>");
    assert_ne!(edited, drifted);
    write_host(&lab, "app1", CARBON, &edited);
    let out = apply_plan(inv, &drift, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stale plan:"), "{err}");
    eprintln!("the stale saved plan was refused with:\n{err}");
    assert!(
        err.contains(&format!("app1: {CARBON} changed since the plan")),
        "{err}"
    );
    outputs.push(out);
    assert_eq!(
        read_host(&lab, "app1", CARBON),
        edited,
        "the hand edit was overwritten"
    );
    assert_eq!(server_pid(&lab, "app1", KM).as_deref(), Some(pid.as_str()));

    // A fresh saved plan applies: the offset is back, the hand edit kept, the node
    // restarted, and a following plan has nothing to do.
    let again = dir.join("again.plan.json");
    assert_eq!(plan_out(inv, &again, &[]).status.code(), Some(2));
    let out = apply_plan(inv, &again, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    outputs.push(out);
    let now = read_host(&lab, "app1", CARBON);
    assert_eq!(offset(&now), offset(&converged), "{now}");
    assert!(now.contains("<!-- hand edit -->"), "{now}");
    assert_ne!(server_pid(&lab, "app1", KM).as_deref(), Some(pid.as_str()));
    let out = cli(&["plan", inv]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // A saved plan with nothing to do changes nothing.
    let noop = dir.join("noop.plan.json");
    assert_eq!(plan_out(inv, &noop, &[]).status.code(), Some(0));
    assert_no_secret_in_file(&noop, &secrets);
    let before = conf_and_pid(&lab);
    let started = std::time::Instant::now();
    let plain = cli(&["apply", inv]);
    let plain_took = started.elapsed();
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    let started = std::time::Instant::now();
    let out = apply_plan(inv, &noop, &[]);
    eprintln!(
        "no-op apply: {plain_took:?}; no-op apply --plan: {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        conf_and_pid(&lab),
        before,
        "a no-op saved plan changed something"
    );
    outputs.push(out);

    // The plan's --limit is part of it: the same one applies it, none is refused. (Both
    // hosts: a node's datasource needs the database task's login, so `app1` alone does
    // not plan since the two-slot login.)
    let limited = dir.join("limited.plan.json");
    let out = plan_out(inv, &limited, &["--limit", "app1,db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--limit 'app1,db'"),
        "{}",
        text(&out.stderr)
    );
    let out = apply_plan(inv, &limited, &["--limit", "app1,db"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_refused(
        &apply_plan(inv, &limited, &[]),
        "another --limit (app1,db in the plan, all now)",
    );

    // Database and process state are held to the plan too: a table made by hand and a
    // server stopped by hand after the plan each make it stale, and nothing is changed.
    let converged_plan = dir.join("converged.plan.json");
    assert_eq!(plan_out(inv, &converged_plan, &[]).status.code(), Some(0));
    // A file's owner and mode too: chmod by hand after the plan is stale, and kept.
    let datasources = format!("{KM}/repository/conf/datasources/master-datasources.xml");
    let mode = |lab: &TestLab| exec(lab, "app1", &["stat", "-c", "%a", &datasources]);
    let planned_mode = mode(&lab);
    exec(&lab, "app1", &["chmod", "0640", &datasources]);
    let out = apply_plan(inv, &converged_plan, &[]);
    assert_refused(
        &out,
        &format!("stale plan: app1: {datasources} (owner and mode) changed since the plan"),
    );
    outputs.push(out);
    assert_eq!(mode(&lab).trim(), "640", "a stale plan repaired the mode");
    exec(&lab, "app1", &["chmod", planned_mode.trim(), &datasources]);
    exec(
        &lab,
        "db",
        &[
            "mariadb",
            "-e",
            "CREATE TABLE apimgtdb.made_by_hand (x INT)",
        ],
    );
    let out = apply_plan(inv, &converged_plan, &[]);
    assert_refused(&out, "stale plan: db: what `db: ");
    assert!(
        text(&out.stderr).contains("` asked changed since the plan"),
        "{}",
        text(&out.stderr)
    );
    outputs.push(out);
    exec(
        &lab,
        "db",
        &["mariadb", "-e", "DROP TABLE apimgtdb.made_by_hand"],
    );
    let pid = server_pid(&lab, "app1", KM).expect("the Key Manager runs");
    exec(
        &lab,
        "app1",
        &[
            "bash",
            "-c",
            "kill \"$1\"; while kill -0 \"$1\" 2>/dev/null; do sleep 0.1; done",
            "x",
            &pid,
        ],
    );
    let out = apply_plan(inv, &converged_plan, &[]);
    assert_refused(
        &out,
        "app1: what `app1/keymanager: server running and healthy` asked changed since the plan",
    );
    outputs.push(out);
    assert_eq!(
        server_pid(&lab, "app1", KM),
        None,
        "a stale plan started the node"
    );

    let captured: Vec<&[u8]> = outputs
        .iter()
        .flat_map(|o| [o.stdout.as_slice(), o.stderr.as_slice()])
        .collect();
    assert_no_secret_in(&captured, &secrets);
}

/// A refusal: exit 1, the message on stderr.
fn assert_refused(out: &std::process::Output, says: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(says), "expected {says:?} in:\n{err}");
}

/// The text of carbon.xml's `<Offset>` element.
fn offset(xml: &str) -> &str {
    let start = xml.find("<Offset>").expect("an Offset element") + "<Offset>".len();
    let end = start + xml[start..].find("</Offset>").unwrap();
    &xml[start..end]
}

fn regex_replace_offset(xml: &str, value: &str) -> String {
    let old = offset(xml);
    assert_ne!(old, value);
    xml.replacen(
        &format!("<Offset>{old}</Offset>"),
        &format!("<Offset>{value}</Offset>"),
        1,
    )
}

#[test]
fn a_hand_edit_made_while_a_saved_plan_runs_is_kept_and_stops_that_write() {
    // should: after the start's check, a file the run is about to replace is edited by
    // hand (while the host's distribution upload, the step before, is under way): the
    // write of that file fails as stale and the hand edit is on the host afterwards.
    if !lab_tests_enabled("a_hand_edit_made_while_a_saved_plan_runs_is_kept_and_stops_that_write") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    // A distribution large enough that its upload leaves a window to edit in.
    let big = apim_standin::write_dist(
        &lab.state_dir().join("dist-big"),
        &apim_standin::DistOptions {
            size_mb: 192,
            ..Default::default()
        },
    )
    .unwrap();
    let inventory = lab.inventory_variant("big", |t| {
        t.replace(
            lab.dist.zip.path.to_str().unwrap(),
            big.zip.path.to_str().unwrap(),
        )
        .replace(&lab.dist.zip.sha256, &big.zip.sha256)
    });
    let inv = inventory.to_str().unwrap();
    let saved = lab.state_dir().join("fresh.plan.json");
    let out = plan_out(inv, &saved, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let apply = std::process::Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
        .args(["apply", inv, "--plan", saved.to_str().unwrap()])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The upload's temp file (`.NAME.apim-XXXXXX`) shows the run is past its checks.
    let started = std::time::Instant::now();
    let uploading = "find /opt -name '.*.zip.apim-*' -print -quit 2>/dev/null";
    while exec(&lab, "app1", &["bash", "-c", uploading])
        .trim()
        .is_empty()
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the distribution upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    exec(
        &lab,
        "app1",
        &["bash", "-c", "echo '# hand edit' >> /etc/hosts"],
    );
    let out = apply.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stale plan: the file changed since the plan; left as it is"),
        "{err}"
    );
    eprintln!("the write was refused with:\n{err}");
    let hosts = exec(&lab, "app1", &["cat", "/etc/hosts"]);
    assert!(hosts.ends_with("# hand edit\n"), "{hosts}");
    assert!(!hosts.contains("apim-deploy databases"), "{hosts}");
    assert_no_secret_in(&[&out.stdout, &out.stderr], &secrets(&lab));
}
