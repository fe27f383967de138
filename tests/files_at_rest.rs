//! Files at rest: what `apply` leaves on the hosts is readable by the server and, where it
//! holds a secret, by nobody else; an owner or mode changed behind the tool's back (a run
//! frozen between an upload and its `chown`, a `chmod` by hand) is drift that `plan`
//! shows and `apply` repairs. Checked on the hosts with `stat` and as another local user,
//! not in the tool's output alone.

mod support;

use apim_lab::Layout;
use support::{Deployable, cli, exec, lab_tests_enabled, text};

/// Each app host's node directory in the one-per-host layout.
const NODES: [(&str, &str); 4] = [
    ("app1", "/opt/wso2/KeyManager"),
    ("app2", "/opt/wso2/Gateway"),
    ("app3", "/opt/wso2/Publisher"),
    ("app4", "/opt/wso2/Store"),
];

/// The files the playbook writes a secret into (the DB password, the admin password).
const SECRET_FILES: [&str; 3] = [
    "repository/conf/datasources/master-datasources.xml",
    "repository/conf/user-mgt.xml",
    "repository/conf/api-manager.xml",
];

const JAR: &str = "repository/components/lib/mysql-connector-java-5.1.49-bin.jar";

/// `user:group mode` of a file on a lab host, as `stat` there reports it.
fn owner_mode(lab: &Deployable, host: &str, path: &str) -> String {
    exec(lab, host, &["stat", "-L", "-c", "%U:%G %a", path])
        .trim()
        .to_string()
}

/// Whether the local user `nobody` can read `path` on `host`.
fn nobody_reads(lab: &Deployable, host: &str, path: &str) -> bool {
    let out = lab
        .exec(host, &["runuser", "-u", "nobody", "--", "cat", path])
        .expect("lab exec");
    out.status.success()
}

#[test]
fn secret_files_are_the_service_users_alone_and_owner_or_mode_drift_is_planned_and_repaired() {
    if !lab_tests_enabled(
        "secret_files_are_the_service_users_alone_and_owner_or_mode_drift_is_planned_and_repaired",
    ) {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, 0.0);
    let inv = lab.inventory.to_str().unwrap().to_string();
    let apply = cli(&["apply", &inv]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));

    for (host, dir) in NODES {
        for file in SECRET_FILES {
            let path = format!("{dir}/{file}");
            assert_eq!(
                owner_mode(&lab, host, &path),
                "wso2carbon:wso2carbon 600",
                "{host}:{path}"
            );
            assert!(
                !nobody_reads(&lab, host, &path),
                "{host}: another user reads {path}"
            );
        }
        // The control: the same user reads a file of the same tree that holds no
        // secret, so the refusals above come from the files' modes.
        let carbon = format!("{dir}/repository/conf/carbon.xml");
        assert_eq!(
            owner_mode(&lab, host, &carbon),
            "wso2carbon:wso2carbon 644",
            "{host}"
        );
        assert!(nobody_reads(&lab, host, &carbon), "{host}: {carbon}");
        let jar = format!("{dir}/{JAR}");
        assert_eq!(
            owner_mode(&lab, host, &jar),
            "wso2carbon:wso2carbon 644",
            "{host}"
        );
    }

    // A run frozen between the jar's upload and its chown left this; and a chmod by hand.
    let jar = format!("{}/{JAR}", NODES[1].1);
    exec(&lab, "app2", &["chown", "root:root", &jar]);
    exec(&lab, "app2", &["chmod", "0600", &jar]);
    let datasources = format!("{}/{}", NODES[2].1, SECRET_FILES[0]);
    exec(&lab, "app3", &["chmod", "0644", &datasources]);
    assert!(
        nobody_reads(&lab, "app3", &datasources),
        "the drift is real"
    );

    // `status` shows it as drift on the running nodes (it asks the same planner).
    let status = cli(&["status", &inv]);
    assert_eq!(status.status.code(), Some(2), "{}", text(&status.stderr));
    let shown = text(&status.stdout);
    assert!(
        shown.contains("owner root:root → wso2carbon:wso2carbon, mode 0600 → 0644"),
        "{shown}"
    );
    assert!(shown.contains("mode 0644 → 0600"), "{shown}");

    // The server runs as the service user: it cannot open the jar, so no driver, so the
    // start fails (fast: the missing driver is one of the playbook's fatal lines).
    let restart = cli(&["restart", &inv, "--limit", "app2"]);
    assert_ne!(restart.status.code(), Some(0), "{}", text(&restart.stderr));
    let log = exec(
        &lab,
        "app2",
        &[
            "cat",
            &format!("{}/repository/logs/wso2carbon.log", NODES[1].1),
        ],
    );
    assert!(
        log.contains(&format!(
            "Invalid jar file {jar}: java.io.FileNotFoundException: {jar} (Permission denied)"
        )),
        "{log}"
    );
    assert!(
        log.contains("ClassNotFoundException: com.mysql.jdbc.Driver"),
        "{log}"
    );

    let plan = cli(&["plan", &inv]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    let shown = text(&plan.stdout);
    assert!(
        shown.contains("owner root:root → wso2carbon:wso2carbon, mode 0600 → 0644"),
        "the jar's drift:\n{shown}"
    );
    assert!(
        shown.contains("mode 0644 → 0600"),
        "the datasources' drift:\n{shown}"
    );
    let json = cli(&["plan", &inv, "--json"]);
    assert_eq!(json.status.code(), Some(2), "{}", text(&json.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan --json");
    let reasons: Vec<&str> = doc["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["verdict"] == "change")
        .filter_map(|s| s["reason"].as_str())
        .collect();
    assert!(
        reasons.iter().any(|r| r.ends_with(&format!(
            "{jar}: owner root:root → wso2carbon:wso2carbon, mode 0600 → 0644"
        ))),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.ends_with("master-datasources.xml: mode 0644 → 0600")),
        "{reasons:?}"
    );
    // A plan writes nothing: the drift is still there.
    assert_eq!(owner_mode(&lab, "app2", &jar), "root:root 600");

    let apply = cli(&["apply", &inv]);
    assert!(apply.status.success(), "{}", text(&apply.stderr));
    assert_eq!(owner_mode(&lab, "app2", &jar), "wso2carbon:wso2carbon 644");
    assert_eq!(
        owner_mode(&lab, "app3", &datasources),
        "wso2carbon:wso2carbon 600"
    );
    assert!(!nobody_reads(&lab, "app3", &datasources));
    let again = cli(&["plan", &inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}
