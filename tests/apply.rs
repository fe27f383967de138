//! End-to-end tests of `apim-deploy apply` on real lab hosts: sshd in namespaces,
//! MariaDB on the db host, and the stand-in WSO2 API Manager 1.9.0 built by apim-standin.
//!
//! Every assertion reads the hosts: their files (through the lab's state dir), their
//! processes and ports, their name resolution, and the database (the `mariadb` client on
//! the db host). Of the tool's own output only the exit status, the error text of a refused
//! run and the rerun's recap ("0 changed, 0 restarted") are used.
//!
//! Root and `APIM_LAB_TESTS=1`; otherwise each test prints a skip line and returns. Each
//! test gets its lab from `support::Deployable` (a prefix leased from the shared test
//! range, so it never meets another test's lab); the tests run in parallel threads.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use apim_lab::{KillScope, Lab, Layout, Role};
use assert_cmd::Command;
use roxmltree::{Document, Node};
use sha2::{Digest, Sha256};
use support::{Deployable, lab_tests_enabled};

// ---------------------------------------------------------------------------------------
// The tests

#[test]
fn one_role_per_host_is_configured_started_in_order_and_a_rerun_changes_nothing() {
    // should: take 4 bare hosts + db to a healthy cluster with every seed setting, then change nothing on a rerun
    if !lab_tests_enabled(
        "one_role_per_host_is_configured_started_in_order_and_a_rerun_changes_nothing",
    ) {
        return;
    }
    deploy_check_and_rerun(Layout::OnePerHost);
}

#[test]
fn all_four_roles_on_one_host_get_offsets_0_to_3_and_a_rerun_changes_nothing() {
    // should: run KM, GW, Publisher and Store side by side on one host with offsets 0..3 and offset-aware URLs
    if !lab_tests_enabled(
        "all_four_roles_on_one_host_get_offsets_0_to_3_and_a_rerun_changes_nothing",
    ) {
        return;
    }
    let world = deploy_check_and_rerun(Layout::AllInOne);
    let offsets: Vec<(R, u16)> = world.nodes.iter().map(|n| (n.role, n.offset)).collect();
    assert_eq!(
        offsets,
        [(R::Km, 0), (R::Gw, 1), (R::Pub, 2), (R::Store, 3)]
    );
}

#[test]
fn two_gateways_cluster_get_one_environment_each_and_a_rerun_changes_nothing() {
    // should: configure both gateways (clustered, each its own environment on KM/Publisher/Store)
    if !lab_tests_enabled(
        "two_gateways_cluster_get_one_environment_each_and_a_rerun_changes_nothing",
    ) {
        return;
    }
    let world = deploy_check_and_rerun(Layout::TwoGateways);
    assert_eq!(world.of(R::Gw).len(), 2);
}

#[test]
fn tenants_and_jwt_give_gateway_and_key_manager_the_shared_stores_and_token_generation() {
    // should: with multi_tenancy and jwt, add the user store and registry to the Gateway, the registry to the KM, JWT on KM and GW
    if !lab_tests_enabled(
        "tenants_and_jwt_give_gateway_and_key_manager_the_shared_stores_and_token_generation",
    ) {
        return;
    }
    let options = Options {
        multi_tenancy: true,
        jwt: true,
    };
    let world = deploy_with_options_check_and_rerun(Layout::OnePerHost, options);
    assert!(world.nodes.iter().all(|n| n.uses_user_db()));
}

#[test]
fn a_wrong_checksum_an_unreachable_host_or_a_refused_db_login_stops_before_any_host_changes() {
    // should: refuse each fault with an error naming it, leaving every host and the database as they were
    if !lab_tests_enabled(
        "a_wrong_checksum_an_unreachable_host_or_a_refused_db_login_stops_before_any_host_changes",
    ) {
        return;
    }
    let lab = Deployable::up(Layout::OnePerHost, START_DELAY_SECS);
    let before = untouched_state(&lab);

    // A distribution (or driver) whose bytes do not match the pinned sha256.
    let zip_sha = lab.dist.zip.sha256.clone();
    let jar_sha = lab.dist.jdbc_jar.sha256.clone();
    let wrong_zip = lab.inventory_variant("wrong-zip-sha", |t| t.replacen(&zip_sha, &jar_sha, 1));
    let err = expect_refused(&apply(&wrong_zip));
    assert!(
        err.contains("sha256") && err.contains("wso2am-1.9.0.zip") && err.contains(&jar_sha),
        "the error should name the archive and the pinned digest:\n{err}"
    );
    let wrong_jar = lab.inventory_variant("wrong-jar-sha", |t| t.replace(&jar_sha, &zip_sha));
    let err = expect_refused(&apply(&wrong_jar));
    assert!(
        err.contains("sha256") && err.contains("mysql-connector-java"),
        "{err}"
    );
    assert_eq!(
        untouched_state(&lab),
        before,
        "a checksum failure changed a host"
    );

    // One host refusing connections (sshd killed) and one dropping all traffic.
    lab.kill("app3", KillScope::Sshd).unwrap();
    lab.cut("app4").unwrap();
    let err = expect_refused(&apply(&lab.inventory));
    lab.revive("app3").unwrap();
    lab.heal("app4").unwrap();
    assert!(
        err.contains("app3") && err.contains("app4"),
        "the error should name both hosts:\n{err}"
    );
    assert!(
        err.contains("to leave them out: --limit '!app3,!app4'"),
        "the error should name the --limit that leaves them out:\n{err}"
    );
    assert_eq!(
        untouched_state(&lab),
        before,
        "an unreachable host left a change behind"
    );

    // A database server that refuses the admin login.
    let wrong_password = "not-the-admin-password-7Q";
    let wrong_file = lab.state_dir().join("wrong_db_admin_password");
    fs::write(&wrong_file, wrong_password).unwrap();
    fs::set_permissions(&wrong_file, fs::Permissions::from_mode(0o600)).unwrap();
    let right_file = lab.db_admin().unwrap().password_file.display().to_string();
    let refused = lab.inventory_variant("wrong-db-admin", |t| {
        t.replace(&right_file, &wrong_file.display().to_string())
    });
    let err = expect_refused(&apply(&refused));
    assert!(
        err.contains("db") && err.contains("cannot log in") && err.contains("Access denied"),
        "the error should name the database host and the refused login:\n{err}"
    );
    assert!(
        !err.contains(wrong_password),
        "the error shows the password:\n{err}"
    );
    assert_eq!(
        untouched_state(&lab),
        before,
        "a refused db login left a change behind"
    );

    // Nothing half-done stands in the way: the same lab then deploys cleanly.
    let out = apply(&lab.inventory);
    assert!(out.status.success(), "{}", output_text(&out));
}

// ---------------------------------------------------------------------------------------
// A deployed lab, checked

/// Deploys the layout on a fresh lab, checks every host, reruns and checks that nothing
/// moved. Returns the checked world for layout-specific assertions.
fn deploy_check_and_rerun(layout: Layout) -> World {
    deploy_with_options_check_and_rerun(layout, Options::default())
}

/// [`deploy_check_and_rerun`] with `[options]` added to the lab's inventory.
fn deploy_with_options_check_and_rerun(layout: Layout, options: Options) -> World {
    let lab = Deployable::up(layout, START_DELAY_SECS);
    let mut text = read_string(&lab.inventory);
    assert!(
        !text.contains("[options]"),
        "the lab inventory has its own [options]"
    );
    text.push_str(&format!(
        "\n[options]\nmulti_tenancy = {}\njwt = {}\n",
        options.multi_tenancy, options.jwt
    ));
    fs::write(&lab.inventory, text).unwrap();
    let world = World::new(&lab, options);
    let hosts_before: BTreeMap<String, String> = world
        .app_hosts()
        .into_iter()
        .map(|h| {
            (
                h.clone(),
                read_string(&lab.host_path(&h, "/etc/hosts").unwrap()),
            )
        })
        .collect();

    let out = apply(&lab.inventory);
    assert!(out.status.success(), "apply failed:\n{}", output_text(&out));

    for n in &world.nodes {
        check_node_config(&world, &lab, n);
        check_only_intended_changes(&world, &lab, n);
        check_ownership(&lab, n);
    }
    check_etc_hosts(&world, &lab, &hosts_before);
    check_database(&world, &lab);
    check_running_in_order(&world, &lab);

    // The rerun: nothing reported, restarted, written or executed against the database.
    let files = file_stamps(&world, &lab);
    let db = database_stamps(&lab);
    let pids = node_processes(&world, &lab);
    let out = apply(&lab.inventory);
    assert!(out.status.success(), "rerun failed:\n{}", output_text(&out));
    let (changed, restarted) = recap_totals(&out);
    assert_eq!(
        (changed, restarted),
        (0, 0),
        "rerun:\n{}",
        output_text(&out)
    );
    assert_eq!(
        node_processes(&world, &lab),
        pids,
        "a node was restarted by the rerun"
    );
    assert_same(
        &file_stamps(&world, &lab),
        &files,
        "file stamps after the rerun",
    );
    assert_eq!(database_stamps(&lab), db, "the rerun touched the database");
    drop(lab);
    world
}

/// What the test expects, derived from the lab's layout (not from the tool).
struct World {
    nodes: Vec<N>,
    db_address: String,
    admin_password: String,
    db_app_password: String,
    /// The distribution's regular files below its top folder: bytes and unix mode.
    archive: BTreeMap<String, (Vec<u8>, u32)>,
    jar_name: String,
    jar_sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum R {
    Km,
    Gw,
    Pub,
    Store,
}

const ROLE_ORDER: [R; 4] = [R::Km, R::Gw, R::Pub, R::Store];

/// One WSO2 node as the test expects it.
#[derive(Debug, Clone)]
struct N {
    host: String,
    address: String,
    role: R,
    offset: u16,
    /// The deployment's `[options]`.
    options: Options,
}

/// The inventory's `[options]` a test deploys with.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    multi_tenancy: bool,
    jwt: bool,
}

impl N {
    fn dir(&self) -> String {
        let name = match self.role {
            R::Km => "KeyManager",
            R::Gw => "Gateway",
            R::Pub => "Publisher",
            R::Store => "Store",
        };
        format!("/opt/wso2/{name}")
    }
    fn label(&self) -> String {
        format!("{}/{:?}", self.host, self.role)
    }
    fn https(&self) -> u16 {
        9443 + self.offset
    }
    fn services_url(&self) -> String {
        format!("https://{}:{}/services/", self.address, self.https())
    }
    fn gateway_endpoint(&self) -> String {
        format!(
            "http://{a}:{},https://{a}:{}",
            8280 + self.offset,
            8243 + self.offset,
            a = self.address
        )
    }
    fn revoke_url(&self) -> String {
        format!("https://{}:{}/revoke", self.address, 8243 + self.offset)
    }
    /// WSO2UM_DB: every node (the admin account has one home, so it can be rotated).
    fn uses_user_db(&self) -> bool {
        true
    }
    /// WSO2REG_DB and the registry mounts: Publisher, Store; Gateway and KM too with tenants.
    fn uses_reg_db(&self) -> bool {
        matches!(self.role, R::Pub | R::Store) || self.options.multi_tenancy
    }
    /// `APIConsumerAuthentication/EnableTokenGeneration` on the KM and the Gateway.
    fn generates_jwt(&self) -> bool {
        self.options.jwt && matches!(self.role, R::Km | R::Gw)
    }
}

impl World {
    fn new(lab: &Deployable, options: Options) -> World {
        let mut nodes = Vec::new();
        for host in lab.hosts().iter().filter(|h| !h.is_db) {
            // On a host, roles in KM, GW, Publisher, Store order take offsets 0, 1, 2, ...
            let mut offset = 0;
            for role in ROLE_ORDER {
                let lab_role = match role {
                    R::Km => Role::Keymanager,
                    R::Gw => Role::Gateway,
                    R::Pub => Role::Publisher,
                    R::Store => Role::Store,
                };
                if host.roles.contains(&lab_role) {
                    nodes.push(N {
                        host: host.name.clone(),
                        address: host.address.to_string(),
                        role,
                        offset,
                        options,
                    });
                    offset += 1;
                }
            }
        }
        let secret = |name: &str| read_string(&lab.state_dir().join("secrets").join(name));
        World {
            nodes,
            db_address: lab.db_admin().unwrap().address.to_string(),
            admin_password: secret("admin_password"),
            db_app_password: secret("db_app_password"),
            archive: read_archive(&lab.dist.zip.path),
            jar_name: file_name(&lab.dist.jdbc_jar.path),
            jar_sha256: lab.dist.jdbc_jar.sha256.clone(),
        }
    }

    fn of(&self, role: R) -> Vec<&N> {
        self.nodes.iter().filter(|n| n.role == role).collect()
    }
    fn km(&self) -> &N {
        self.of(R::Km)[0]
    }
    fn app_hosts(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.nodes.iter().map(|n| n.host.clone()).collect();
        set.into_iter().collect()
    }
    /// The Hazelcast group a node joins: Publisher+Store always (there are two of them),
    /// gateways among themselves when there are several.
    fn cluster_of(&self, n: &N) -> Option<Vec<&N>> {
        match n.role {
            R::Pub | R::Store => Some(
                self.nodes
                    .iter()
                    .filter(|m| matches!(m.role, R::Pub | R::Store))
                    .collect(),
            ),
            R::Gw if self.of(R::Gw).len() > 1 => Some(self.of(R::Gw)),
            _ => None,
        }
    }
    fn original(&self, rel: &str) -> String {
        String::from_utf8(self.archive[rel].0.clone()).unwrap()
    }
}

const CARBON: &str = "repository/conf/carbon.xml";
const DATASOURCES: &str = "repository/conf/datasources/master-datasources.xml";
const API_MANAGER: &str = "repository/conf/api-manager.xml";
const USER_MGT: &str = "repository/conf/user-mgt.xml";
const REGISTRY: &str = "repository/conf/registry.xml";
const AXIS2: &str = "repository/conf/axis2/axis2.xml";

fn node_file(lab: &Lab, n: &N, rel: &str) -> PathBuf {
    lab.host_path(&n.host, &format!("{}/{rel}", n.dir()))
        .unwrap()
}

fn node_text(lab: &Lab, n: &N, rel: &str) -> String {
    read_string(&node_file(lab, n, rel))
}

/// Every setting a role needs to join the cluster, read back from the node's files.
fn check_node_config(w: &World, lab: &Lab, n: &N) {
    let ctx = n.label();
    let carbon = node_text(lab, n, CARBON);
    assert_eq!(
        text(&parse(&carbon), "/Server/Ports/Offset"),
        n.offset.to_string(),
        "{ctx}: Offset"
    );

    // Values are written as an operator would type them: no character references such as
    // `&#x2f;` for `/` where the distribution had none.
    for rel in [CARBON, DATASOURCES, API_MANAGER, USER_MGT, REGISTRY, AXIS2] {
        let refs = |t: &str| t.matches("&#").count();
        assert_eq!(
            refs(&node_text(lab, n, rel)),
            refs(&w.original(rel)),
            "{ctx}: {rel} gained character references"
        );
    }

    check_datasources(w, n, &node_text(lab, n, DATASOURCES));
    check_api_manager(w, n, &node_text(lab, n, API_MANAGER));
    check_user_mgt(w, n, &node_text(lab, n, USER_MGT));
    check_registry(n, &node_text(lab, n, REGISTRY));
    check_clustering(w, lab, n);

    let jar = fs::read(node_file(
        lab,
        n,
        &format!("repository/components/lib/{}", w.jar_name),
    ))
    .unwrap_or_else(|e| panic!("{ctx}: JDBC driver: {e}"));
    assert_eq!(
        hex::encode(Sha256::digest(&jar)),
        w.jar_sha256,
        "{ctx}: JDBC driver bytes"
    );
}

fn check_datasources(w: &World, n: &N, xml: &str) {
    let ctx = format!("{} master-datasources.xml", n.label());
    let doc = parse(xml);
    let am = datasource(&doc, "WSO2AM_DB").unwrap_or_else(|| panic!("{ctx}: no WSO2AM_DB"));
    check_datasource(w, &ctx, am, "jdbc/WSO2AM_DB", "apimgtdb", true);
    let um = datasource(&doc, "WSO2UM_DB");
    assert_eq!(um.is_some(), n.uses_user_db(), "{ctx}: WSO2UM_DB present");
    if let Some(um) = um {
        check_datasource(w, &ctx, um, "jdbc/WSO2UM_DB", "userdb", false);
    }
    let reg = datasource(&doc, "WSO2REG_DB");
    assert_eq!(reg.is_some(), n.uses_reg_db(), "{ctx}: WSO2REG_DB present");
    if let Some(reg) = reg {
        check_datasource(w, &ctx, reg, "jdbc/WSO2REG_DB", "regdb", false);
    }
    let carbon =
        datasource(&doc, "WSO2_CARBON_DB").unwrap_or_else(|| panic!("{ctx}: WSO2_CARBON_DB gone"));
    assert!(
        child_text(carbon, "definition/configuration/url").starts_with("jdbc:h2:"),
        "{ctx}: WSO2_CARBON_DB stays H2"
    );
}

/// The seed's datasource values (url with autoReconnect, pool settings, MySQL driver).
fn check_datasource(w: &World, ctx: &str, ds: Node, jndi: &str, db: &str, auto_commit_off: bool) {
    let ctx = format!("{ctx}: {}", child_text(ds, "name"));
    assert_eq!(child_text(ds, "jndiConfig/name"), jndi, "{ctx}");
    let definition = only(children(ds, "definition"), &ctx);
    assert_eq!(definition.attribute("type"), Some("RDBMS"), "{ctx}");
    let c = |p: &str| child_text(ds, &format!("definition/configuration/{p}"));
    assert_eq!(
        c("url"),
        format!("jdbc:mysql://{db}.mysql-wso2.com:3306/{db}?autoReconnect=true"),
        "{ctx}"
    );
    assert_eq!(c("username"), "wso2", "{ctx}");
    assert_eq!(c("password"), w.db_app_password, "{ctx}: password");
    assert_eq!(c("driverClassName"), "com.mysql.jdbc.Driver", "{ctx}");
    assert_eq!(c("maxActive"), "50", "{ctx}");
    assert_eq!(c("maxWait"), "60000", "{ctx}");
    assert_eq!(c("testOnBorrow"), "true", "{ctx}");
    assert_eq!(c("validationQuery"), "SELECT 1", "{ctx}");
    assert_eq!(c("validationInterval"), "30000", "{ctx}");
    let auto_commit = find(ds, "definition/configuration/defaultAutoCommit");
    if auto_commit_off {
        assert_eq!(c("defaultAutoCommit"), "false", "{ctx}");
    } else {
        assert!(
            auto_commit.is_empty(),
            "{ctx}: unexpected defaultAutoCommit"
        );
    }
}

fn check_api_manager(w: &World, n: &N, xml: &str) {
    let ctx = format!("{} api-manager.xml", n.label());
    let doc = parse(xml);
    let original = w.original(API_MANAGER);
    let orig = parse(&original);
    let km = w.km();
    let gateways = w.of(R::Gw);
    let first = doc
        .root_element()
        .children()
        .find(|c| c.is_element())
        .unwrap();
    assert_eq!(
        (first.tag_name().name(), first.text()),
        ("DataSourceName", Some("jdbc/WSO2AM_DB")),
        "{ctx}"
    );

    let kv = |d: &Document, p: &str| text(d, &format!("/APIManager/APIKeyValidator/{p}"));
    let auth = |d: &Document, p: &str| text(d, &format!("/APIManager/AuthManager/{p}"));
    for field in ["ServerURL", "Username", "Password"] {
        let (want_kv, want_auth) = match field {
            "ServerURL" => (km.services_url(), km.services_url()),
            "Username" => ("admin".to_string(), "admin".to_string()),
            _ => (w.admin_password.clone(), w.admin_password.clone()),
        };
        let want_kv = if n.role == R::Km {
            kv(&orig, field)
        } else {
            want_kv
        };
        assert_eq!(kv(&doc, field), want_kv, "{ctx}: APIKeyValidator/{field}");
        let want_auth = if matches!(n.role, R::Pub | R::Store) {
            want_auth
        } else {
            auth(&orig, field)
        };
        assert_eq!(auth(&doc, field), want_auth, "{ctx}: AuthManager/{field}");
    }
    assert_eq!(kv(&doc, "KeyValidatorClientType"), "ThriftClient", "{ctx}");
    let thrift_server = if n.role == R::Km { "true" } else { "false" };
    assert_eq!(
        kv(&doc, "EnableThriftServer"),
        thrift_server,
        "{ctx}: EnableThriftServer"
    );
    assert_eq!(kv(&doc, "ThriftClientPort"), "10397", "{ctx}");
    assert_eq!(kv(&doc, "ThriftServerPort"), "10397", "{ctx}");
    let thrift_host: Vec<String> = match n.role {
        R::Km => vec![km.address.clone()],
        R::Gw if n.host != km.host => vec![km.address.clone()],
        _ => vec![],
    };
    assert_eq!(
        texts(&doc, "/APIManager/APIKeyValidator/ThriftServerHost"),
        thrift_host,
        "{ctx}: ThriftServerHost"
    );
    let revoke = if matches!(n.role, R::Km | R::Store) {
        gateways[0].revoke_url()
    } else {
        kv(&orig, "RevokeAPIURL")
    };
    assert_eq!(kv(&doc, "RevokeAPIURL"), revoke, "{ctx}: RevokeAPIURL");
    assert!(
        find(doc.root_element(), "APIKeyManager").is_empty(),
        "{ctx}: an APIKeyManager block was added"
    );
    let jwt: &[&str] = if n.generates_jwt() { &["true"] } else { &[] };
    assert_eq!(
        texts(
            &doc,
            "/APIManager/APIConsumerAuthentication/EnableTokenGeneration"
        ),
        jwt,
        "{ctx}: EnableTokenGeneration"
    );

    let envs = find(doc.root_element(), "APIGateway/Environments/Environment");
    if n.role == R::Gw {
        let orig_env = only(
            find(orig.root_element(), "APIGateway/Environments/Environment"),
            &ctx,
        );
        assert_eq!(envs.len(), 1, "{ctx}");
        for p in [
            "Name",
            "ServerURL",
            "GatewayEndpoint",
            "Username",
            "Password",
        ] {
            assert_eq!(
                child_text(envs[0], p),
                child_text(orig_env, p),
                "{ctx}: a gateway keeps its own environment"
            );
        }
        return;
    }
    assert_eq!(
        envs.len(),
        gateways.len(),
        "{ctx}: one environment per gateway"
    );
    for gw in &gateways {
        let env = envs
            .iter()
            .find(|e| child_text(**e, "ServerURL") == gw.services_url())
            .unwrap_or_else(|| {
                panic!("{ctx}: no environment with ServerURL {}", gw.services_url())
            });
        assert_eq!(
            child_text(*env, "GatewayEndpoint"),
            gw.gateway_endpoint(),
            "{ctx}"
        );
        assert_eq!(child_text(*env, "Username"), "admin", "{ctx}");
        assert_eq!(child_text(*env, "Password"), w.admin_password, "{ctx}");
        assert_eq!(env.attribute("type"), Some("hybrid"), "{ctx}");
    }
    let names: BTreeSet<String> = envs.iter().map(|e| child_text(*e, "Name")).collect();
    assert_eq!(
        names.len(),
        envs.len(),
        "{ctx}: environment names are unique"
    );
}

fn check_user_mgt(w: &World, n: &N, xml: &str) {
    let ctx = format!("{} user-mgt.xml", n.label());
    let doc = parse(xml);
    let props: Vec<Node> = find(doc.root_element(), "Realm/Configuration/Property")
        .into_iter()
        .filter(|p| p.attribute("name") == Some("dataSource"))
        .collect();
    let want = if n.uses_user_db() {
        "jdbc/WSO2UM_DB"
    } else {
        "jdbc/WSO2CarbonDB"
    };
    assert_eq!(only(props, &ctx).text(), Some(want), "{ctx}: dataSource");
    assert_eq!(
        text(&doc, "/UserManager/Realm/Configuration/AdminUser/UserName"),
        "admin",
        "{ctx}"
    );
    assert_eq!(
        text(&doc, "/UserManager/Realm/Configuration/AdminUser/Password"),
        w.admin_password,
        "{ctx}"
    );
}

fn check_registry(n: &N, xml: &str) {
    let ctx = format!("{} registry.xml", n.label());
    assert_eq!(
        xml.matches('\n').count(),
        xml.matches("\r\n").count(),
        "{ctx}: every line stays CRLF"
    );
    let doc = parse(xml);
    let root = doc.root_element();
    let db_configs = find(root, "dbConfig");
    let by_name = |name: &str| -> Vec<Node> {
        db_configs
            .iter()
            .copied()
            .filter(|d| d.attribute("name") == Some(name))
            .collect()
    };
    assert_eq!(
        child_text(only(by_name("wso2registry"), &ctx), "dataSource"),
        "jdbc/WSO2CarbonDB",
        "{ctx}"
    );
    assert_eq!(
        text(&doc, "/wso2registry/currentDBConfig"),
        "wso2registry",
        "{ctx}"
    );
    let shared = n.uses_reg_db();
    let gov = by_name("govregistry");
    let instances = find(root, "remoteInstance");
    let mounts = find(root, "mount");
    if !shared {
        assert!(
            gov.is_empty() && instances.is_empty() && mounts.is_empty(),
            "{ctx}: no shared registry here"
        );
        return;
    }
    assert_eq!(
        child_text(only(gov, &ctx), "dataSource"),
        "jdbc/WSO2REG_DB",
        "{ctx}"
    );
    let instance = only(instances, &ctx);
    for (child, want) in [
        ("id", "gov"),
        ("dbConfig", "govregistry"),
        ("readOnly", "false"),
        ("enableCache", "true"),
        ("registryRoot", "/"),
        (
            "cacheId",
            "wso2@jdbc:mysql://regdb.mysql-wso2.com:3306/regdb",
        ),
    ] {
        assert_eq!(
            child_text(instance, child),
            want,
            "{ctx}: remoteInstance/{child}"
        );
    }
    assert!(
        instance
            .attribute("url")
            .is_some_and(|u| u.starts_with("https://")),
        "{ctx}"
    );
    assert_eq!(mounts.len(), 2, "{ctx}: two mounts");
    for path in ["/_system/config", "/_system/governance"] {
        let mount = only(
            mounts
                .iter()
                .copied()
                .filter(|m| m.attribute("path") == Some(path))
                .collect(),
            &ctx,
        );
        assert_eq!(mount.attribute("overwrite"), Some("true"), "{ctx}: {path}");
        assert_eq!(child_text(mount, "instanceId"), "gov", "{ctx}: {path}");
        assert_eq!(child_text(mount, "targetPath"), path, "{ctx}: {path}");
    }
}

/// axis2.xml clustering: wka, one domain per group, the node's own address and a member
/// port distinct on its host, and the `members` block listing exactly the peers.
fn check_clustering(w: &World, lab: &Lab, n: &N) {
    let ctx = format!("{} axis2.xml", n.label());
    let member = |m: &N| -> (String, String, String, String) {
        let doc_text = node_text(lab, m, AXIS2);
        let doc = parse(&doc_text);
        let cl = only(find(doc.root_element(), "clustering"), "clustering");
        let param = |name: &str| {
            only(
                children(cl, "parameter")
                    .into_iter()
                    .filter(|p| p.attribute("name") == Some(name))
                    .collect(),
                name,
            )
            .text()
            .unwrap_or_default()
            .to_string()
        };
        (
            cl.attribute("enable").unwrap_or_default().to_string(),
            param("membershipScheme"),
            param("domain"),
            param("localMemberPort"),
        )
    };
    let xml = node_text(lab, n, AXIS2);
    let doc = parse(&xml);
    let cl = only(find(doc.root_element(), "clustering"), &ctx);
    let (enable, scheme, domain, port) = member(n);
    let Some(group) = w.cluster_of(n) else {
        assert_eq!(enable, "false", "{ctx}: this node does not cluster");
        assert_eq!(scheme, "multicast", "{ctx}");
        return;
    };
    assert_eq!((enable.as_str(), scheme.as_str()), ("true", "wka"), "{ctx}");
    assert!(
        !domain.is_empty() && domain != "wso2.carbon.domain",
        "{ctx}: domain {domain}"
    );
    let host_param = children(cl, "parameter")
        .into_iter()
        .find(|p| p.attribute("name") == Some("localMemberHost"))
        .and_then(|p| p.text().map(str::to_string));
    assert_eq!(
        host_param.as_deref(),
        Some(n.address.as_str()),
        "{ctx}: localMemberHost"
    );
    let mut want_members = Vec::new();
    for peer in &group {
        let (p_enable, _, p_domain, p_port) = member(peer);
        assert_eq!(
            (p_enable.as_str(), p_domain.as_str()),
            ("true", domain.as_str()),
            "{ctx}: {} in the same domain",
            peer.label()
        );
        if peer.host == n.host && peer.role != n.role {
            assert_ne!(p_port, port, "{ctx}: member ports on one host must differ");
        }
        if peer.role != n.role || peer.host != n.host {
            want_members.push((peer.address.clone(), p_port));
        }
    }
    assert!(
        !xml.lines()
            .any(|l| l.contains("<member>") && l.contains("<hostName>")),
        "{ctx}: members are laid out one element per line, like the distribution's"
    );
    let members_blocks = children(cl, "members");
    let members = only(members_blocks, &format!("{ctx}: one members block"));
    let mut found: Vec<(String, String)> = children(members, "member")
        .into_iter()
        .map(|m| (child_text(m, "hostName"), child_text(m, "port")))
        .collect();
    found.sort();
    want_members.sort();
    assert_eq!(found, want_members, "{ctx}: members");
    let in_group = |m: &N| group.iter().any(|g| g.host == m.host && g.role == m.role);
    for other in w
        .nodes
        .iter()
        .filter(|m| !in_group(m) && w.cluster_of(m).is_some())
    {
        assert_ne!(
            member(other).2,
            domain,
            "{ctx}: each group has its own domain"
        );
    }
}

/// The config files each role is meant to change, with the elements each change touches
/// (paths as [`element_path`] spells them; attributes as `.../@name`).
fn intended_edits(w: &World, n: &N) -> BTreeMap<&'static str, Vec<String>> {
    let mut edits: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    if n.offset != 0 {
        edits.insert(CARBON, vec!["/Server/Ports/Offset".into()]);
    }
    let mut ds: Vec<String> = ["url", "username", "password", "driverClassName"]
        .iter()
        .map(|c| format!("/datasources-configuration/datasources/datasource[WSO2AM_DB]/definition/configuration/{c}"))
        .collect();
    if n.uses_user_db() {
        ds.push("/datasources-configuration/datasources/datasource[WSO2UM_DB]".into());
    }
    if n.uses_reg_db() {
        ds.push("/datasources-configuration/datasources/datasource[WSO2REG_DB]".into());
    }
    edits.insert(DATASOURCES, ds);
    let mut um = vec![
        "/UserManager/Realm/Configuration/AdminUser/UserName".to_string(),
        "/UserManager/Realm/Configuration/AdminUser/Password".to_string(),
    ];
    if n.uses_user_db() {
        um.push("/UserManager/Realm/Configuration/Property[@name=dataSource]".into());
    }
    edits.insert(USER_MGT, um);
    if n.uses_reg_db() {
        edits.insert(
            REGISTRY,
            [
                "dbConfig[@name=govregistry]",
                "remoteInstance[gov]",
                "mount[@path=/_system/config]",
                "mount[@path=/_system/governance]",
            ]
            .iter()
            .map(|e| format!("/wso2registry/{e}"))
            .collect(),
        );
    }
    let kv = |e: &str| format!("/APIManager/APIKeyValidator/{e}");
    let mut am = vec!["/APIManager/DataSourceName".to_string()];
    am.extend(
        [
            "KeyValidatorClientType",
            "EnableThriftServer",
            "ThriftClientPort",
            "ThriftServerPort",
        ]
        .map(kv),
    );
    if n.role != R::Km {
        am.extend(["ServerURL", "Username", "Password"].map(kv));
    }
    if n.role == R::Km || (n.role == R::Gw && n.host != w.km().host) {
        am.push(kv("ThriftServerHost"));
    }
    if matches!(n.role, R::Km | R::Store) {
        am.push(kv("RevokeAPIURL"));
    }
    if n.generates_jwt() {
        am.push("/APIManager/APIConsumerAuthentication/EnableTokenGeneration".into());
    }
    if matches!(n.role, R::Pub | R::Store) {
        am.extend(
            ["ServerURL", "Username", "Password"].map(|e| format!("/APIManager/AuthManager/{e}")),
        );
    }
    if n.role != R::Gw {
        am.push("/APIManager/APIGateway/Environments/Environment".into());
    }
    edits.insert(API_MANAGER, am);
    if w.cluster_of(n).is_some() {
        let mut ax = vec![
            "/axisconfig/clustering/@enable".to_string(),
            "/axisconfig/clustering/members".to_string(),
        ];
        ax.extend(
            [
                "membershipScheme",
                "domain",
                "localMemberHost",
                "localMemberPort",
            ]
            .map(|p| format!("/axisconfig/clustering/parameter[@name={p}]")),
        );
        edits.insert(AXIS2, ax);
    }
    edits
}

/// Compares every file under the node's directory with the distribution: only the
/// intended files differ, and only the secret-bearing ones in mode (0600); in them every other element, attribute and comment is as it
/// was, and every line that changed belongs to an intended element. Files that are not
/// in the distribution are only the tool's markers, the driver, and the server's runtime
/// files (pid file, logs, tmp).
fn check_only_intended_changes(w: &World, lab: &Lab, n: &N) {
    let root = lab.host_path(&n.host, &n.dir()).unwrap();
    let edits = intended_edits(w, n);
    for (rel, (bytes, mode)) in &w.archive {
        let path = root.join(rel);
        let meta = fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {rel}: {e}", n.label()));
        // The files holding a secret are the service user's alone; every other file
        // keeps the distribution's mode.
        let holds_secret = [DATASOURCES, API_MANAGER, USER_MGT].contains(&rel.as_str());
        let want = if holds_secret { 0o600 } else { mode & 0o777 };
        assert_eq!(
            meta.permissions().mode() & 0o777,
            want,
            "{}: mode of {rel}",
            n.label()
        );
        let now = fs::read(&path).unwrap();
        let touched = edits.get(rel.as_str());
        assert_eq!(
            now != *bytes,
            touched.is_some(),
            "{}: {rel} changed: {}",
            n.label(),
            now != *bytes
        );
        if let Some(touched) = touched {
            let (before, after) = (
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(&now),
            );
            check_edit_scope(&format!("{}: {rel}", n.label()), &before, &after, touched);
        }
    }
    let jar = format!("repository/components/lib/{}", w.jar_name);
    for rel in walk_files(&root) {
        let runtime = ["tmp/", "repository/logs/", ".apim-deploy/"]
            .iter()
            .any(|p| rel.starts_with(p))
            || rel == "wso2carbon.pid"
            || rel == jar;
        assert!(
            w.archive.contains_key(&rel) || runtime,
            "{}: unexpected file {rel}",
            n.label()
        );
    }
}

/// `before` -> `after` touched only the elements `touched` names (semantically and by line).
fn check_edit_scope(ctx: &str, before: &str, after: &str, touched: &[String]) {
    let skip = |path: &str| {
        touched.iter().any(|t| {
            path == t || path.starts_with(&format!("{t}/")) || path.starts_with(&format!("{t}["))
        })
    };
    let (old, new) = (flatten(before, &skip), flatten(after, &skip));
    if old != new {
        let (old, new) = (old.join("\n") + "\n", new.join("\n") + "\n");
        let diff = show_diff(&old, &new);
        panic!(
            "{ctx}: elements, attributes or comments outside the intended edits changed:\n{diff}"
        );
    }
    let allowed_old = touched_lines(before, &skip);
    let allowed_new = touched_lines(after, &skip);
    // Without the lines of the intended elements, both versions must be the same lines.
    let rest = |text: &str, allowed: &BTreeSet<usize>| -> String {
        text.split_inclusive('\n')
            .enumerate()
            .filter(|(i, _)| !allowed.contains(i))
            .map(|(_, l)| l)
            .collect()
    };
    let (old_rest, new_rest) = (rest(before, &allowed_old), rest(after, &allowed_new));
    if old_rest != new_rest {
        let diff = show_diff(&old_rest, &new_rest);
        panic!("{ctx}: lines outside the intended elements changed:\n{diff}");
    }
}

/// The engine's own diff of two texts, for failure messages.
fn show_diff(old: &str, new: &str) -> String {
    let none = apim_deploy::engine::redact::Redactor::new();
    apim_deploy::engine::modules::file_diff("", old.as_bytes(), new.as_bytes(), &none).diff
}

/// The element's path with an identity for repeated siblings (datasource name,
/// environment Name, remoteInstance id, mount path, or the `name` attribute).
fn element_path(parent: &str, n: Node) -> String {
    let name = n.tag_name().name();
    let id = match name {
        "datasource" => format!("[{}]", child_text(n, "name")),
        "Environment" => format!("[{}]", child_text(n, "Name")),
        "remoteInstance" => format!("[{}]", child_text(n, "id")),
        "mount" => format!("[@path={}]", n.attribute("path").unwrap_or_default()),
        _ if parent.is_empty() => String::new(),
        _ => n
            .attribute("name")
            .map(|v| format!("[@name={v}]"))
            .unwrap_or_default(),
    };
    format!("{parent}/{name}{id}")
}

/// Every element (path and own text), attribute and comment of a document, in order,
/// leaving out what `skip` names.
fn flatten(xml: &str, skip: &dyn Fn(&str) -> bool) -> Vec<String> {
    fn walk(n: Node, parent: &str, skip: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
        let path = element_path(parent, n);
        if skip(&path) {
            return;
        }
        let own: Vec<&str> = n
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        out.push(format!("E {path} = {}", own.join(" ")));
        let mut attrs: Vec<(&str, &str)> = n.attributes().map(|a| (a.name(), a.value())).collect();
        attrs.sort();
        for (k, v) in attrs {
            let at = format!("{path}/@{k}");
            if !skip(&at) {
                out.push(format!("A {at} = {v}"));
            }
        }
        for c in n.children() {
            if c.is_element() {
                walk(c, &path, skip, out);
            } else if c.is_comment() {
                out.push(format!("C {path}: {}", c.text().unwrap_or_default().trim()));
            }
        }
    }
    let doc = parse(xml);
    let mut out: Vec<String> = doc
        .root()
        .children()
        .filter(|c| c.is_comment())
        .map(|c| format!("C /: {}", c.text().unwrap_or_default().trim()))
        .collect();
    walk(doc.root_element(), "", skip, &mut out);
    out
}

/// The 0-based line numbers covered by skipped elements (whole element) and skipped
/// attributes (their element's start tag).
fn touched_lines(xml: &str, skip: &dyn Fn(&str) -> bool) -> BTreeSet<usize> {
    fn line_of(xml: &str, byte: usize) -> usize {
        xml[..byte].matches('\n').count()
    }
    fn walk(
        xml: &str,
        n: Node,
        parent: &str,
        skip: &dyn Fn(&str) -> bool,
        out: &mut BTreeSet<usize>,
    ) {
        let path = element_path(parent, n);
        let range = n.range();
        if skip(&path) {
            out.extend(line_of(xml, range.start)..=line_of(xml, range.end.saturating_sub(1)));
            return;
        }
        if n.attributes()
            .any(|a| skip(&format!("{path}/@{}", a.name())))
        {
            let tag_end = range.start + xml[range.start..].find('>').unwrap();
            out.extend(line_of(xml, range.start)..=line_of(xml, tag_end));
        }
        for c in n.children().filter(|c| c.is_element()) {
            walk(xml, c, &path, skip, out);
        }
    }
    let doc = parse(xml);
    let mut out = BTreeSet::new();
    walk(xml, doc.root_element(), "", skip, &mut out);
    out
}

/// Every file and directory under the node directory belongs to the service user.
fn check_ownership(lab: &Lab, n: &N) {
    let uid = service_uid(lab, &n.host);
    let root = lab.host_path(&n.host, &n.dir()).unwrap();
    for rel in walk_all(&root) {
        let meta = fs::symlink_metadata(root.join(&rel)).unwrap();
        assert_eq!(
            meta.uid(),
            uid,
            "{}: {rel} is not owned by wso2carbon",
            n.label()
        );
    }
}

fn service_uid(lab: &Lab, host: &str) -> u32 {
    let passwd = read_string(&lab.host_path(host, "/etc/passwd").unwrap());
    passwd
        .lines()
        .find_map(|l| l.strip_prefix("wso2carbon:"))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|uid| uid.parse().ok())
        .unwrap_or_else(|| panic!("{host}: no wso2carbon user"))
}

/// Each app host's /etc/hosts is what it was plus exactly one managed block, and the
/// database names resolve to the db host inside the host.
fn check_etc_hosts(w: &World, lab: &Lab, before: &BTreeMap<String, String>) {
    for host in w.app_hosts() {
        let now = read_string(&lab.host_path(&host, "/etc/hosts").unwrap());
        let want = format!(
            "{}# BEGIN apim-deploy databases\n{}\tapimgtdb.mysql-wso2.com userdb.mysql-wso2.com regdb.mysql-wso2.com\n# END apim-deploy databases\n",
            before[&host], w.db_address
        );
        assert_eq!(now, want, "{host}: /etc/hosts");
        for name in [
            "apimgtdb.mysql-wso2.com",
            "userdb.mysql-wso2.com",
            "regdb.mysql-wso2.com",
        ] {
            let out = lab.exec(&host, &["getent", "hosts", name]).unwrap();
            let resolved = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                resolved.split_whitespace().next(),
                Some(w.db_address.as_str()),
                "{host}: {name}"
            );
        }
    }
}

/// Tables per database (as many as the distribution's scripts create, seeded once),
/// latin1, and the application account granted on exactly the databases its nodes use.
fn check_database(w: &World, lab: &Lab) {
    let creates = |rel: &str| {
        w.original(rel)
            .lines()
            .filter(|l| {
                l.trim_start()
                    .to_ascii_uppercase()
                    .starts_with("CREATE TABLE")
            })
            .count()
    };
    let (apimgt, mysql) = (
        creates("dbscripts/apimgt/mysql.sql"),
        creates("dbscripts/mysql.sql"),
    );
    assert!(
        apimgt > 5 && mysql > 5,
        "the scripts should create tables ({apimgt}, {mysql})"
    );
    let counts = sql(
        lab,
        "SELECT TABLE_SCHEMA, COUNT(*) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ('apimgtdb','userdb','regdb') GROUP BY TABLE_SCHEMA ORDER BY 1",
    );
    assert_eq!(
        counts,
        format!("apimgtdb\t{apimgt}\nregdb\t{mysql}\nuserdb\t{mysql}\n"),
        "tables per database"
    );
    let charsets = sql(
        lab,
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME IN ('apimgtdb','userdb','regdb') ORDER BY 1",
    );
    assert_eq!(
        charsets,
        "apimgtdb\tlatin1\nregdb\tlatin1\nuserdb\tlatin1\n"
    );
    assert_eq!(
        sql(lab, "SELECT COUNT(*) FROM apimgtdb.IDN_BASE_TABLE"),
        "1\n",
        "seeded exactly once"
    );
    for (db, sentinel) in [
        ("apimgtdb", "AM_SUBSCRIBER"),
        ("userdb", "UM_TENANT"),
        ("regdb", "REG_RESOURCE"),
    ] {
        let found = sql(
            lab,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}' AND TABLE_NAME='{sentinel}'"
            ),
        );
        assert_eq!(found, "1\n", "{db}.{sentinel}");
    }
    let mut want = BTreeSet::new();
    for n in &w.nodes {
        want.insert(format!("{}\tapimgtdb", n.address));
        if n.uses_user_db() {
            want.insert(format!("{}\tuserdb", n.address));
        }
        if n.uses_reg_db() {
            want.insert(format!("{}\tregdb", n.address));
        }
    }
    let grants: BTreeSet<String> = sql(lab, "SELECT Host, Db FROM mysql.db WHERE User='wso2'")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(grants, want, "grants of wso2 (host, database)");
}

/// Every node runs as wso2carbon, answers on its ports, logged one start and no error,
/// and each role started only after the roles before it reported started.
fn check_running_in_order(w: &World, lab: &Lab) {
    let mut spans: BTreeMap<R, Vec<(String, String)>> = BTreeMap::new();
    for n in &w.nodes {
        let ctx = n.label();
        let log = node_text(lab, n, "repository/logs/wso2carbon.log");
        let started: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("WSO2 Carbon started in"))
            .collect();
        assert_eq!(started.len(), 1, "{ctx}: started exactly once:\n{log}");
        assert!(!log.contains("ERROR {"), "{ctx}: errors in the log:\n{log}");
        let first = log.lines().next().and_then(timestamp).unwrap();
        spans
            .entry(n.role)
            .or_default()
            .push((first, timestamp(started[0]).unwrap()));

        let (pid, user, cmdline) =
            process_of(lab, n).unwrap_or_else(|| panic!("{ctx}: not running"));
        assert_eq!(user, "wso2carbon", "{ctx}: pid {pid} runs as {user}");
        assert!(cmdline.contains(&n.dir()), "{ctx}: pid {pid} is {cmdline}");
        let mut ports = vec![n.https(), 9763 + n.offset];
        if n.role == R::Gw {
            ports.extend([8280 + n.offset, 8243 + n.offset]);
        }
        for port in ports {
            let addr: SocketAddr = format!("{}:{port}", n.address).parse().unwrap();
            TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("{ctx}: port {port}: {e}"));
        }
    }
    for pair in ROLE_ORDER.windows(2) {
        let done = spans[&pair[0]]
            .iter()
            .map(|(_, s)| s.clone())
            .max()
            .unwrap();
        let began = spans[&pair[1]]
            .iter()
            .map(|(f, _)| f.clone())
            .min()
            .unwrap();
        assert!(
            done <= began,
            "{:?} began at {began}, before every {:?} had started ({done})",
            pair[1],
            pair[0]
        );
    }
}

/// `[2026-11-26 05:40:01,123]` of a Carbon log line.
fn timestamp(line: &str) -> Option<String> {
    let i = line.find("] [2")? + 3;
    line.get(i..i + 23).map(str::to_string)
}

/// The node's live process from its (NUL-padded) pid file: pid, user, command line.
fn process_of(lab: &Lab, n: &N) -> Option<(String, String, String)> {
    let raw = fs::read(node_file(lab, n, "wso2carbon.pid")).ok()?;
    let pid: String = String::from_utf8_lossy(&raw)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let script = format!("stat -c %U /proc/{pid} && tr '\\0' ' ' < /proc/{pid}/cmdline");
    let out = lab.exec(&n.host, &["sh", "-c", &script]).ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (user, cmdline) = text.split_once('\n')?;
    Some((pid, user.to_string(), cmdline.to_string()))
}

/// Each node's pid and its start time (field 22 of /proc/<pid>/stat): a restart changes it.
fn node_processes(w: &World, lab: &Lab) -> Vec<(String, String)> {
    w.nodes
        .iter()
        .map(|n| {
            let (pid, _, _) =
                process_of(lab, n).unwrap_or_else(|| panic!("{}: not running", n.label()));
            let out = lab
                .exec(&n.host, &["cat", &format!("/proc/{pid}/stat")])
                .unwrap();
            let stat = String::from_utf8_lossy(&out.stdout).into_owned();
            let start = stat
                .rsplit_once(')')
                .map(|(_, r)| r.split_whitespace().nth(19).unwrap_or_default().to_string());
            (
                n.label(),
                format!("{pid} started {}", start.unwrap_or_default()),
            )
        })
        .collect()
}

/// mtime, ctime, inode and size of every file and directory under /opt/wso2 and of
/// /etc/hosts on every app host.
fn file_stamps(w: &World, lab: &Lab) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for host in w.app_hosts() {
        let root = lab.host_path(&host, "/opt/wso2").unwrap();
        // The run lock's file records every run's holder: it is the run's own
        // bookkeeping, not a change to the deployment.
        let mut paths: Vec<PathBuf> = walk_all(&root)
            .into_iter()
            .filter(|r| r != ".apim-deploy/lock")
            .map(|r| root.join(r))
            .collect();
        paths.push(root.clone());
        paths.push(lab.host_path(&host, "/etc/hosts").unwrap());
        for p in paths {
            let m = fs::symlink_metadata(&p).unwrap();
            out.insert(
                format!("{host}:{}", p.display()),
                format!(
                    "mtime {}.{:09} ctime {}.{:09} ino {} size {}",
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.ino(),
                    m.size()
                ),
            );
        }
    }
    out
}

/// What a write to the databases would change: tables with their times, checksums of the
/// account tables, and the server's counters of writing statements.
fn database_stamps(lab: &Lab) -> String {
    [
        "SELECT TABLE_SCHEMA, TABLE_NAME, CREATE_TIME, UPDATE_TIME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA IN ('apimgtdb','userdb','regdb') ORDER BY 1, 2",
        "CHECKSUM TABLE mysql.global_priv, mysql.db",
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1",
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_create_db','Com_create_table','Com_create_user',\
         'Com_grant','Com_insert','Com_alter_table','Com_create_index','Com_drop_table','Com_drop_db',\
         'Com_update','Com_delete','Com_drop_user','Com_revoke')",
    ]
    .iter()
    .map(|q| sql(lab, q))
    .collect::<Vec<_>>()
    .join("--\n")
}

/// Everything a refused run could have touched: /opt, /etc and /home of every host (path,
/// size, mtime, mode, owner) and the database server's schemas and accounts.
fn untouched_state(lab: &Lab) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for host in lab.hosts() {
        for dir in ["/opt", "/etc/", "/home"] {
            let root = lab.host_path(&host.name, dir).unwrap();
            for rel in walk_all(&root) {
                let m = fs::symlink_metadata(root.join(&rel)).unwrap();
                out.insert(
                    format!("{}:{dir}/{rel}", host.name),
                    format!(
                        "{} {}.{:09} {:o} {}",
                        m.size(),
                        m.mtime(),
                        m.mtime_nsec(),
                        m.mode(),
                        m.uid()
                    ),
                );
            }
        }
    }
    out.insert(
        "db schemas".into(),
        sql(
            lab,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1",
        ),
    );
    out.insert(
        "db accounts".into(),
        sql(lab, "SELECT User, Host FROM mysql.user ORDER BY 1, 2"),
    );
    out
}

// ---------------------------------------------------------------------------------------
// Lab, tool and small helpers

/// The stand-in's start delay: short, so four ordered starts stay quick.
const START_DELAY_SECS: f64 = 0.5;

/// Runs `apply --json`; whatever it printed must hold none of the lab's secrets.
fn apply(inventory: &Path) -> std::process::Output {
    let out = Command::cargo_bin("apim-deploy")
        .unwrap()
        .arg("apply")
        .arg(inventory)
        .arg("--json")
        .timeout(Duration::from_secs(240))
        .output()
        .unwrap();
    let secrets_dir = inventory.parent().unwrap().join("secrets");
    let secrets: Vec<String> = fs::read_dir(&secrets_dir)
        .unwrap()
        .map(|e| read_string(&e.unwrap().path()).trim().to_string())
        .collect();
    support::assert_no_secret_in(&[&out.stdout, &out.stderr], &secrets);
    out
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run that must fail: its whole output, for the error checks.
fn expect_refused(out: &std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run should be refused:\n{}",
        output_text(out)
    );
    output_text(out)
}

/// Sums `changed` and `restarted` over the hosts of the run's NDJSON recap.
fn recap_totals(out: &std::process::Output) -> (u64, u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let recap: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "recap")
        .unwrap_or_else(|| panic!("no recap event in:\n{stdout}"));
    let hosts = recap["hosts"].as_array().expect("recap hosts");
    let sum = |key: &str| hosts.iter().map(|h| h[key].as_u64().unwrap_or(0)).sum();
    (sum("changed"), sum("restarted"))
}

/// Runs SQL as root (socket auth) on the db host; tab-separated rows.
fn sql(lab: &Lab, query: &str) -> String {
    let out = lab
        .exec("db", &["mariadb", "-N", "-B", "-e", query])
        .unwrap();
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn read_string(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn read_archive(zip_path: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(File::open(zip_path).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        if !entry.is_file() {
            continue;
        }
        let name = entry.name().unwrap().to_string();
        let rel = name.split_once('/').map(|(_, r)| r.to_string()).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(rel, (bytes, entry.unix_mode().unwrap_or(0o644)));
    }
    out
}

/// Relative paths of every regular file under `root`.
fn walk_files(root: &Path) -> Vec<String> {
    walk_all(root)
        .into_iter()
        .filter(|r| fs::symlink_metadata(root.join(r)).is_ok_and(|m| m.is_file()))
        .collect()
}

/// Relative paths of everything under `root` (files, directories, links); empty if absent.
fn walk_all(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in entries.flatten() {
            let child = rel.join(e.file_name());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(child.clone());
            }
            out.push(child.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn assert_same(now: &BTreeMap<String, String>, before: &BTreeMap<String, String>, what: &str) {
    let changed: Vec<String> = before
        .iter()
        .filter(|(k, v)| now.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: {v} -> {:?}", now.get(k)))
        .chain(
            now.keys()
                .filter(|k| !before.contains_key(*k))
                .map(|k| format!("{k}: new")),
        )
        .collect();
    assert!(changed.is_empty(), "{what}:\n{}", changed.join("\n"));
}

// --- XML reading (roxmltree; comments are not elements, so commented blocks are absent) ---

fn parse(xml: &str) -> Document<'_> {
    Document::parse(xml).unwrap_or_else(|e| panic!("not well-formed XML: {e}"))
}

fn children<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Vec<Node<'a, 'i>> {
    n.children()
        .filter(|c| c.is_element() && c.tag_name().name() == name)
        .collect()
}

/// Elements below `n` along a relative path of local names.
fn find<'a, 'i>(n: Node<'a, 'i>, path: &str) -> Vec<Node<'a, 'i>> {
    path.split('/').fold(vec![n], |cur, step| {
        cur.into_iter().flat_map(|c| children(c, step)).collect()
    })
}

fn only<'a, 'i>(mut nodes: Vec<Node<'a, 'i>>, ctx: &str) -> Node<'a, 'i> {
    assert_eq!(nodes.len(), 1, "{ctx}: expected exactly one element");
    nodes.remove(0)
}

fn child_text(n: Node, path: &str) -> String {
    only(find(n, path), path)
        .text()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Texts of the elements at an absolute path (`/Root/a/b`).
fn texts(doc: &Document, path: &str) -> Vec<String> {
    let (root, rest) = path.trim_start_matches('/').split_once('/').unwrap();
    assert_eq!(doc.root_element().tag_name().name(), root);
    find(doc.root_element(), rest)
        .into_iter()
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

fn text(doc: &Document, path: &str) -> String {
    let mut all = texts(doc, path);
    assert_eq!(
        all.len(),
        1,
        "{path}: expected exactly one element, found {}",
        all.len()
    );
    all.remove(0)
}

fn datasource<'a, 'i>(doc: &'a Document<'i>, name: &str) -> Option<Node<'a, 'i>> {
    let all: Vec<Node> = find(doc.root_element(), "datasources/datasource")
        .into_iter()
        .filter(|d| child_text(*d, "name") == name)
        .collect();
    assert!(all.len() <= 1, "{name} is defined {} times", all.len());
    all.into_iter().next()
}
