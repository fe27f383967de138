//! Tests for `apim-deploy check` and the inventory errors it reports.
//!
//! Each error class has one data-driven case: an edit of a valid base inventory and the
//! exact `file:line:column: message (help)` lines expected. The CLI cases run the real
//! binary on the example inventories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use apim_deploy::inventory::{ProblemKind, Secrets};
use apim_deploy::topology::Topology;
use assert_cmd::Command;
use predicates::prelude::*;

/// A valid inventory; line numbers in the expectations below refer to it.
const BASE: &str = r#"[ssh]
user = "root"
[distribution]
path = "dist/wso2am-1.9.0.zip"
sha256 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
[jdbc_driver]
path = "dist/connector.jar"
sha256 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
[install]
root = "/opt/wso2"
[database]
host = "db"
admin_user = "apimadmin"
admin_password = { file = "@SECRET@" }
app_user = "wso2"
app_password = { file = "@SECRET@" }
[admin]
password = { file = "@SECRET@" }
[options]
multi_tenancy = false
[[hosts]]
name = "app1"
address = "127.0.10.1"
roles = ["keymanager", "gateway", "publisher", "store"]
[[hosts]]
name = "db"
address = "127.0.10.250"
roles = ["database"]
"#;

/// A directory with a valid (mode 0600) secret file.
struct Secrets0600 {
    dir: tempfile::TempDir,
}

impl Secrets0600 {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret-value\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }
}

/// Applies `edits` (each `from` must occur in the base), then points the `@SECRET@`
/// references at the secret file, and returns the inventory text.
fn edited(secrets: &Secrets0600, edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_owned();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "edit target {from:?} not in the base inventory"
        );
        text = text.replacen(from, to, 1);
    }
    text.replace("@SECRET@", secrets.path().to_str().unwrap())
}

/// Checks the edited base the way `check` does and compares the error lines.
fn check(edits: &[(&str, &str)], expected: &str) {
    let secrets = Secrets0600::new();
    let text = edited(&secrets, edits);
    let actual = match Topology::from_text(&text, "test.toml", Secrets::Resolve) {
        Ok(_) => "ok".to_owned(),
        Err(err) => err.to_string(),
    };
    let expected = expected
        .trim()
        .replace("@SECRET@", secrets.path().to_str().unwrap());
    assert_eq!(
        actual, expected,
        "\n--- actual ---\n{actual}\n--- expected ---\n{expected}\n"
    );
}

#[test]
fn base_inventory_is_valid() {
    check(&[], "ok");
}

#[test]
fn toml_syntax_error_points_at_the_spot() {
    check(
        &[("address = \"127.0.10.1\"", "address = \"127.0.10.1")],
        "test.toml:23:22: invalid basic string, expected `\"`",
    );
}

#[test]
fn unknown_key_lists_the_allowed_keys() {
    check(
        &[("roles = [\"keymanager\"", "role = [\"keymanager\"")],
        "test.toml:24:1: unknown key `role` (did you mean `roles`? allowed keys here: `name`, \
         `address`, `roles`, `port`, `user`, `offsets`, `member_ports`)",
    );
}

#[test]
fn unknown_role_lists_the_roles() {
    check(
        &[("\"gateway\", ", "\"gatway\", ")],
        "test.toml:24:24: unknown role `gatway` (did you mean `gateway`? allowed roles: \
         `keymanager`, `gateway`, `publisher`, `store`, `database`)",
    );
}

#[test]
fn hostile_address_is_rejected_with_the_rule() {
    check(
        &[("\"127.0.10.1\"", "\"127.0.10.1; rm -rf /\"")],
        "test.toml:23:11: invalid address `127.0.10.1; rm -rf /` (expected an IPv4 or IPv6 \
         address, or a DNS name (dot-separated labels of letters, digits and `-` (each 1-63 \
         characters, not starting or ending with `-`), at most 253 characters))",
    );
}

#[test]
fn hostile_host_name_is_rejected() {
    check(
        &[("name = \"app1\"", "name = \"app1$(id)\"")],
        "test.toml:22:8: invalid host name `app1$(id)` (expected dot-separated labels of \
         letters, digits and `-` (each 1-63 characters, not starting or ending with `-`), at \
         most 253 characters)",
    );
}

#[test]
fn hostile_database_name_is_rejected() {
    check(
        &[(
            "[options]",
            "[database.names]\napimgt = \"apim`db\"\n[options]",
        )],
        "test.toml:20:10: invalid database identifier `apim`db` (expected 1-64 characters of \
         `A-Z`, `a-z`, `0-9` and `_`)",
    );
}

#[test]
fn hostile_user_name_is_rejected() {
    check(
        &[("app_user = \"wso2\"", "app_user = \"wso2'@'%\"")],
        "test.toml:15:12: invalid user name `wso2'@'%` (expected 1-32 characters of letters, \
         digits, `_`, `.` and `-`, starting with a letter or `_`)",
    );
}

#[test]
fn install_root_must_be_absolute_without_dot_dot() {
    check(
        &[("root = \"/opt/wso2\"", "root = \"/opt/../etc\"")],
        "test.toml:10:8: invalid path `/opt/../etc` (expected an absolute path other than `/` \
         of letters, digits, `.`, `_`, `-` and `/`, without `.` or `..` components)",
    );
}

#[test]
fn sha256_must_be_64_hex_digits() {
    check(
        &[(&format!("\"{}\"", "a".repeat(64)), "\"abc123\"")],
        "test.toml:5:10: invalid sha256 `abc123` (expected 64 hexadecimal digits (`sha256sum FILE` prints it))",
    );
}

#[test]
fn inline_secret_requires_a_reference_and_is_never_echoed() {
    let secrets = Secrets0600::new();
    let text = edited(
        &secrets,
        &[(
            "password = { file = \"@SECRET@\" }\n[options]",
            "password = \"hunter2-inline\"\n[options]",
        )],
    );
    let err = Topology::from_text(&text, "test.toml", Secrets::Resolve).unwrap_err();
    assert_eq!(err.problems[0].kind, ProblemKind::InlineSecret);
    assert_eq!(
        err.to_string(),
        "test.toml:18:12: a secret must be a reference, not an inline string (write `{ env = \
         \"VAR\" }` (read from the environment variable VAR), `{ file = \"/absolute/path\" }` \
         (a file of mode 0600 holding the secret) or `{ command = [\"pass\", \"show\", \
         \"apim/db\"] }` (a program that prints it))"
    );
    let rendered = err.render(false);
    assert!(rendered.contains("[test.toml:18:12]"), "{rendered}");
    assert!(
        !rendered.contains("hunter2"),
        "the inline secret was echoed:\n{rendered}"
    );
}

#[test]
fn duplicate_host_names_and_addresses_are_all_reported() {
    check(
        &[(
            "name = \"db\"\naddress = \"127.0.10.250\"",
            "name = \"app1\"\naddress = \"127.0.10.1\"",
        )],
        "test.toml:12:8: database.host `db` is not the name of a [[hosts]] entry (name the host \
         with the `database` role; hosts: `app1`, `app1`)\n\
         test.toml:26:8: duplicate host name `app1` (host names must be unique; `app1` is first \
         used on line 22)\n\
         test.toml:27:11: duplicate address `127.0.10.1` (hosts `app1` and `app1`) (each host \
         needs its own address; put several roles on one host instead (first used on line 23))\n\
         test.toml:28:10: host `app1` has the `database` role but database.host is `db` \
         (apim-deploy manages one database host: the one named in `database.host`)",
    );
}

#[test]
fn missing_key_manager_is_reported_at_the_hosts() {
    check(
        &[("\"keymanager\", \"gateway\"", "\"gateway\"")],
        "test.toml:21:1: no host has the role `keymanager` (add `keymanager` to a host's roles; \
         every deployment needs one (roles: keymanager, gateway, publisher, store, database))",
    );
}

#[test]
fn publisher_without_gateway_points_at_the_publisher() {
    check(
        &[("\"gateway\", ", "")],
        "test.toml:24:24: the publisher on `app1` has no gateway to publish to (add `gateway` \
         to a host's roles (roles: keymanager, gateway, publisher, store, database))",
    );
}

#[test]
fn missing_gateway_without_publisher_is_reported_at_the_hosts() {
    check(
        &[("\"gateway\", \"publisher\", \"store\"", "\"store\"")],
        "test.toml:21:1: no host has the role `gateway` (add `gateway` to a host's roles (roles: \
         keymanager, gateway, publisher, store, database))",
    );
}

#[test]
fn missing_database_role_is_reported_twice_where_it_matters() {
    check(
        &[("roles = [\"database\"]", "roles = [\"store\"]")],
        "test.toml:12:8: database.host `db` names a host without the `database` role (add \
         \"database\" to the roles of `db` (line 28))\n\
         test.toml:21:1: no host has the role `database` (add a host with roles = [\"database\"] \
         and name it in `database.host` (roles: keymanager, gateway, publisher, store, database))",
    );
}

#[test]
fn same_offset_twice_on_a_host_collides() {
    check(
        &[(
            "\"store\"]",
            "\"store\"]\noffsets = { keymanager = 1, gateway = 1 }",
        )],
        "test.toml:25:39: ports 9444 (https), 9764 (http), 8281 (nio_http), 8244 (nio_https), \
         10000 (jmx_rmi_registry), 11112 (jmx_rmi_server) on host `app1` are used by both \
         app1/keymanager and app1/gateway (give each node on this host its own port offset in `offsets` (or \
         drop the overrides to get KM 0, GW 1, Publisher 2, Store 3))",
    );
}

#[test]
fn offset_port_on_the_unshifted_thrift_port_collides() {
    // 9443 + 954 = 10397, the Key Manager's Thrift port, which the offset does not move.
    check(
        &[("\"store\"]", "\"store\"]\noffsets = { gateway = 954 }")],
        "test.toml:25:23: port 10397 on host `app1` is used twice: app1/keymanager thrift_server \
         and app1/gateway https (Thrift (10397), Hazelcast (4000+) and the database port are not \
         offset; choose `offsets` that keep 9443/9763/8280/8243/9999/11111 + offset clear of them)",
    );
}

#[test]
fn hazelcast_member_ports_on_one_host_collide() {
    check(
        &[(
            "\"store\"]",
            "\"store\"]\nmember_ports = { publisher = 4000, store = 4000 }",
        )],
        "test.toml:25:44: port 4000 on host `app1` is used twice: app1/publisher hazelcast and \
         app1/store hazelcast (Hazelcast member ports are not offset; give each clustering node \
         on this host its own `member_ports` value (or drop the overrides to get 4000, 4001, ...))",
    );
}

#[test]
fn unset_environment_variable_is_reported_at_the_reference() {
    check(
        &[(
            "admin_password = { file = \"@SECRET@\" }",
            "admin_password = { env = \"APIM_TEST_NEVER_SET_8d1f\" }",
        )],
        "test.toml:14:18: database.admin_password: environment variable `APIM_TEST_NEVER_SET_8d1f` \
         is not set (export APIM_TEST_NEVER_SET_8d1f=... before running apim-deploy, or use \
         `{ file = \"/absolute/path\" }`)",
    );
}

#[test]
fn secret_file_readable_by_others_is_refused() {
    let secrets = Secrets0600::new();
    let open = secrets.dir.path().join("open");
    std::fs::write(&open, "pw\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = edited(&secrets, &[]).replacen(
        &format!(
            "app_password = {{ file = \"{}\" }}",
            secrets.path().display()
        ),
        &format!("app_password = {{ file = \"{}\" }}", open.display()),
        1,
    );
    let err = Topology::from_text(&text, "test.toml", Secrets::Resolve).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "test.toml:16:16: database.app_password: secret file `{0}` has mode 0644; it must not \
             be accessible by group or others (run `chmod 600 {0}`)",
            open.display()
        )
    );
}

#[test]
fn missing_secret_file_is_reported() {
    let secrets = Secrets0600::new();
    let missing = secrets.dir.path().join("missing");
    let text = edited(&secrets, &[]).replacen(
        &format!(
            "[admin]\npassword = {{ file = \"{}\" }}",
            secrets.path().display()
        ),
        &format!("[admin]\npassword = {{ file = \"{}\" }}", missing.display()),
        1,
    );
    let err = Topology::from_text(&text, "test.toml", Secrets::Resolve).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "test.toml:18:12: admin.password: cannot read secret file `{}`: No such file or \
             directory (os error 2) (create the file with the secret on its first line, then \
             `chmod 600` it)",
            missing.display()
        )
    );
}

#[test]
fn load_balanced_key_managers_need_the_load_balancer_url() {
    check(
        &[("multi_tenancy = false", "key_manager_behind_lb = true")],
        "test.toml:20:25: key_manager_behind_lb = true needs key_manager_url (add \
         `key_manager_url = \"https://<load balancer>:<port>/services/\"` to [options])",
    );
}

#[test]
fn load_balancer_url_without_the_flag_is_refused() {
    check(
        &[(
            "multi_tenancy = false",
            "key_manager_url = \"https://lb:9443/services/\"",
        )],
        "test.toml:20:19: key_manager_url is set but key_manager_behind_lb is not true (set \
         `key_manager_behind_lb = true` to use this load balancer, or remove it)",
    );
}

#[test]
fn member_port_of_a_node_that_does_not_cluster_is_refused() {
    check(
        &[(
            "\"store\"]",
            "\"store\"]\nmember_ports = { gateway = 4100 }",
        )],
        "test.toml:25:28: member_ports sets `gateway` on `app1`, but that node does not cluster \
         (nodes cluster when the deployment has two or more publishers and stores, or several \
         nodes of the role; remove this entry)",
    );
}

#[test]
fn database_port_counts_for_collisions_on_the_database_host() {
    check(
        &[
            (
                "\"store\"]",
                "\"store\", \"database\"]\nmember_ports = { store = 3306 }",
            ),
            ("host = \"db\"", "host = \"app1\""),
            (
                "[[hosts]]\nname = \"db\"\naddress = \"127.0.10.250\"\nroles = [\"database\"]\n",
                "",
            ),
        ],
        "test.toml:25:26: port 3306 on host `app1` is used twice: database mysql and app1/store \
         hazelcast (Thrift (10397), Hazelcast (4000+) and the database port are not offset; \
         choose `offsets` that keep 9443/9763/8280/8243/9999/11111 + offset clear of them)",
    );
}

#[test]
fn unknown_role_in_offsets_is_an_unknown_role() {
    check(
        &[("\"store\"]", "\"store\"]\noffsets = { gatway = 1 }")],
        "test.toml:25:13: unknown role `gatway` (did you mean `gateway`? allowed roles: \
         `keymanager`, `gateway`, `publisher`, `store`, `database`)",
    );
}

#[test]
fn missing_required_section_names_it() {
    check(
        &[("[admin]\npassword = { file = \"@SECRET@\" }\n", "")],
        "test.toml:1:1: missing field `admin` (`admin` is required here (docs/inventory.md lists \
         the schema))",
    );
}

// ---- the binary ----------------------------------------------------------------------

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventory")
        .join(name)
}

/// `apim-deploy` with the example inventories' secrets set.
fn apim_deploy() -> Command {
    let mut cmd = Command::cargo_bin("apim-deploy").unwrap();
    cmd.env("APIM_DB_ADMIN_PASSWORD", "db-admin-pw-7f3a")
        .env("APIM_DB_APP_PASSWORD", "db-app-pw-9c2e")
        .env("APIM_ADMIN_PASSWORD", "wso2-admin-pw-1b4d")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn check_prints_nodes_ports_and_links_of_an_example() {
    let assert = apim_deploy()
        .args(["check", "--offline"])
        .arg(example("all-in-one.toml"))
        .assert()
        .success();
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        out.contains(
            "app1/gateway     127.0.10.1  /opt/wso2/Gateway     1       9444   9764  8281      8244"
        ),
        "{out}"
    );
    assert!(out.contains("Who talks to whom"), "{out}");
    assert!(
        out.contains("app1/gateway     app1/keymanager  key validation (Thrift)                127.0.10.1:10397"),
        "{out}"
    );
    for secret in ["db-admin-pw-7f3a", "db-app-pw-9c2e", "wso2-admin-pw-1b4d"] {
        assert!(!out.contains(secret), "secret printed:\n{out}");
    }
}

#[test]
fn every_example_passes_check() {
    for name in ["all-in-one.toml", "distributed.toml", "two-gateways.toml"] {
        apim_deploy()
            .args(["check", "--offline"])
            .arg(example(name))
            .assert()
            .success();
    }
}

#[test]
fn check_json_is_the_topology() {
    let assert = apim_deploy()
        .args(["check", "--offline", "--json"])
        .arg(example("two-gateways.toml"))
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(json["schema"], "apim-deploy.check/1");
    assert_eq!(json["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(
        json["gateway_environments"][1]["name"],
        "Production and Sandbox (gw2)"
    );
    assert_eq!(json["clusters"][1]["domain"], "wso2.apim.gateway.domain");
    // Each node as the playbook sees it: what `apply` writes, and nothing it does not.
    let node = |id: &str| {
        json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap_or_else(|| panic!("{id}"))
            .clone()
    };
    let gw = node("gw2/gateway");
    assert_eq!(gw["key_manager"]["thrift_server_host"], "127.0.10.1");
    assert_eq!(gw["conf"], "/opt/wso2/Gateway/repository/conf");
    assert_eq!(gw["ports"]["all"][0], 9443);
    assert_eq!(gw["revoke_url"], "", "a gateway does not read RevokeAPIURL");
    assert_eq!(node("app1/publisher")["revoke_url"], "");
    assert_eq!(
        node("app1/store")["revoke_url"],
        "https://127.0.10.2:8243/revoke"
    );
    assert_eq!(
        node("app1/keymanager")["key_manager"]["thrift_server_host"],
        "127.0.10.1"
    );
}

#[test]
fn check_fails_with_file_line_column_when_a_secret_is_missing() {
    apim_deploy()
        .env_remove("APIM_ADMIN_PASSWORD")
        .arg("check")
        .arg(example("distributed.toml"))
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("distributed.toml:28:12]"))
        .stderr(predicate::str::contains(
            "admin.password: environment variable `APIM_ADMIN_PASSWORD` is not set",
        ));
}

#[test]
fn a_secret_from_a_command_resolves_and_a_failing_one_is_named_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("distributed.toml")).unwrap();
    let write = |argv: &str| {
        let path = dir.path().join("inventory.toml");
        let edited = text.replace(
            "password = { env = \"APIM_ADMIN_PASSWORD\" }",
            &format!("password = {{ command = {argv} }}"),
        );
        assert_ne!(edited, text);
        std::fs::write(&path, edited).unwrap();
        path
    };
    apim_deploy()
        .env_remove("APIM_ADMIN_PASSWORD")
        .args(["check", "--offline"])
        .arg(write(r#"["printf", "from-the-vault"]"#))
        .assert()
        .success();
    apim_deploy()
        .env_remove("APIM_ADMIN_PASSWORD")
        .args(["check", "--offline"])
        .arg(write(r#"["sh", "-c", "echo vault-said-this >&2; exit 4"]"#))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("inventory.toml:28:12]"))
        .stderr(predicate::str::contains(
            "admin.password: secret command `sh -c echo vault-said-this >&2; exit 4` failed (exit status: 4)",
        ));
}

#[test]
fn java_home_and_a_java_archive_together_are_an_error_at_java_home() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("distributed.toml")).unwrap();
    assert!(!text.contains("[install]"));
    let edited = text
        + "\n[install]\njava_home = \"/usr/lib/jvm/jdk1.7.0_80\"\n\
           \n[java]\npath = \"jdk.tar.gz\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";
    let path = dir.path().join("inventory.toml");
    std::fs::write(&path, edited).unwrap();
    apim_deploy()
        .arg("check")
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "[install] java_home and [java] both choose the JDK",
        ));
}

#[test]
fn check_skip_secrets_validates_the_layout_only() {
    Command::cargo_bin("apim-deploy")
        .unwrap()
        .env_remove("APIM_ADMIN_PASSWORD")
        .args(["check", "--offline", "--skip-secrets"])
        .arg(example("distributed.toml"))
        .assert()
        .success();
}

#[test]
fn check_of_a_missing_file_fails_cleanly() {
    apim_deploy()
        .args(["check", "/nonexistent/inventory.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/nonexistent/inventory.toml: cannot read the inventory: No such file or directory",
        ));
}

/// The nodes table of `check --limit LIMIT` on the two-gateway example.
fn nodes_limited_to(limit: &str) -> String {
    let assert = apim_deploy()
        .args(["check", "--offline", "--limit", limit])
        .arg(example("two-gateways.toml"))
        .assert()
        .success();
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    out.split("\nDatabase").next().unwrap().to_string()
}

/// `check --limit LIMIT` on the two-gateway example fails with `error`.
fn limit_fails(limit: &str, error: &str) {
    apim_deploy()
        .args(["check", "--offline", "--limit", limit])
        .arg(example("two-gateways.toml"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(error));
}

#[test]
fn check_limit_shows_only_the_named_role_and_rejects_unknown_names() {
    let nodes = nodes_limited_to("gateway");
    assert!(
        nodes.contains("gw1/gateway") && nodes.contains("gw2/gateway"),
        "{nodes}"
    );
    assert!(!nodes.contains("app1/store"), "{nodes}");
    limit_fails(
        "gw9",
        "--limit: `gw9` is no host, role or node of the inventory",
    );
}

#[test]
fn check_limit_takes_globs_exclusions_and_a_file() {
    // should: one matcher behind every --limit: `gw*,!gw1` and `@FILE` (listing the same)
    // both show gw2's gateway alone; a glob that matches nothing is an error.
    let glob = nodes_limited_to("gw*,!gw1");
    assert!(
        glob.contains("gw2/gateway") && !glob.contains("gw1/gateway"),
        "{glob}"
    );
    assert!(!glob.contains("app1/"), "{glob}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("limit");
    std::fs::write(&file, "# retry\ngw*\n!gw1\n").unwrap();
    assert_eq!(nodes_limited_to(&format!("@{}", file.display())), glob);
    limit_fails(
        "app9*",
        "--limit: `app9*` matches no host, role or node of the inventory",
    );
}

#[test]
fn a_wrong_type_says_what_is_expected_in_plain_words() {
    check(
        &[(
            "address = \"127.0.10.1\"",
            "address = \"127.0.10.1\"\nport = \"22\"",
        )],
        "test.toml:24:8: expected a whole number such as 22, found the text \"22\" \
         (write the number without quotes, e.g. `port = 22`)",
    );
}

#[test]
fn an_inventory_that_is_not_utf8_gets_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.toml");
    std::fs::write(&path, b"# inventory\n# caf\xe9\n").unwrap();
    let err = match Topology::load(&path, Secrets::Skip) {
        Ok(_) => panic!("a latin-1 file was read as UTF-8"),
        Err(e) => e.to_string(),
    };
    let expected = format!("{}:2:6: the inventory is not UTF-8 text", path.display());
    assert!(err.starts_with(&expected), "{err}");
}

#[test]
fn check_reads_the_artifacts_and_key_unless_offline() {
    // A distribution whose bytes do not match, a driver that is not there, a key that
    // is not there: each would fail `apply` after connecting; `check` names them first.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wso2am-1.9.0.zip"), b"not the zip").unwrap();
    let text = std::fs::read_to_string(example("all-in-one.toml"))
        .unwrap()
        .replace("../dist/wso2am-1.9.0.zip", "wso2am-1.9.0.zip")
        .replace("/tmp/apimlab/id_ed25519", "missing_key");
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, text).unwrap();
    let out = apim_deploy()
        .arg("check")
        .arg(&inventory)
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("distribution") && err.contains("wso2am-1.9.0.zip: sha256 is "),
        "{err}"
    );
    assert!(
        err.contains("JDBC driver") && err.contains("No such file"),
        "{err}"
    );
    assert!(
        err.contains("ssh.identity_file") && err.contains("missing_key"),
        "{err}"
    );
    apim_deploy()
        .args(["check", "--offline"])
        .arg(&inventory)
        .assert()
        .success();
}

#[test]
fn weak_secrets_are_warnings_named_by_key_never_by_value() {
    // should: exit 0, one warning per weak secret on stderr and in `warnings` of --json,
    // naming the inventory key; the values appear nowhere; strong secrets are not named.
    let run = |json: bool| {
        let mut cmd = Command::cargo_bin("apim-deploy").unwrap();
        cmd.env("APIM_DB_ADMIN_PASSWORD", "ChangeMe")
            .env("APIM_DB_APP_PASSWORD", "Sh0rt!")
            .env("APIM_ADMIN_PASSWORD", "a-long-strong-one-9f2c")
            .env("NO_COLOR", "1")
            .args(["check", "--offline"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg(example("all-in-one.toml")).assert().success();
        let out = out.get_output();
        (
            String::from_utf8(out.stdout.clone()).unwrap(),
            String::from_utf8(out.stderr.clone()).unwrap(),
        )
    };
    let (out, err) = run(false);
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        err.contains("warning: database.admin_password is a WSO2 or MySQL default"),
        "{err}"
    );
    assert!(
        err.contains("warning: database.app_password is shorter than 8 characters"),
        "{err}"
    );
    assert!(!err.contains("admin.password"), "{err}");
    let (json_out, json_err) = run(true);
    let doc: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    let listed: Vec<&str> = doc["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed[0].starts_with("database.admin_password "),
        "{listed:?}"
    );
    assert!(
        listed[1].starts_with("database.app_password "),
        "{listed:?}"
    );
    for text in [&out, &err, &json_out, &json_err] {
        assert!(!text.contains("Sh0rt!"), "a secret printed:\n{text}");
        assert!(!text.contains("ChangeMe"), "a secret printed:\n{text}");
    }
}
