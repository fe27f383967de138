//! Topology of the example inventories and of the rules' edge cases: offsets, every port,
//! every cross reference. Each test compares a compact per-node summary with the
//! expected text, so a wrong port or URL shows up as a one-line diff.

use super::*;

/// The topology of inventory `text` (secrets are not resolved).
fn topology(text: &str) -> Topology {
    let (_, topology) = Topology::from_text(text, "test.toml", Secrets::Skip)
        .unwrap_or_else(|err| panic!("inventory should be valid:\n{err}"));
    topology
}

/// One block per node: placement and ports, then what it is told about the others.
fn summary(topology: &Topology) -> String {
    let mut out = String::new();
    for n in &topology.nodes {
        let p = &n.ports;
        let opt = |v: Option<u16>| v.map_or("-".to_owned(), |v| v.to_string());
        out += &format!(
            "{} {} {} offset={} https={} http={} nio={}/{} jmx={}/{} thrift={} hz={}\n",
            n.id,
            n.address,
            n.dir,
            n.offset,
            p.https,
            p.http,
            p.nio_http,
            p.nio_https,
            p.jmx_rmi_registry,
            p.jmx_rmi_server,
            opt(p.thrift_server),
            opt(p.hazelcast)
        );
        let km = &n.key_manager;
        out += &format!(
            "  km={} via={:?} thrift_server={} host={} client_port={}\n",
            km.server_url,
            km.client_type,
            km.enable_thrift_server,
            km.thrift_server_host
                .as_ref()
                .map_or("-".to_owned(), |a| a.to_string()),
            km.thrift_client_port
        );
        out += &format!(
            "  revoke={} envs={}\n",
            n.revoke_url, n.configures_gateway_environments
        );
        if let Some(c) = &n.clustering {
            let members: Vec<String> = c
                .members
                .iter()
                .map(|m| format!("{}:{}", m.host, m.port))
                .collect();
            out += &format!(
                "  cluster={} local={}:{} members={}\n",
                c.domain,
                c.local_member_host,
                c.local_member_port,
                members.join(",")
            );
        }
        let ds: Vec<&str> = n.datasources.iter().map(|d| d.name).collect();
        out += &format!(
            "  ds={} um={} reg={}\n",
            ds.join(","),
            n.shared_user_store,
            n.shared_registry
        );
    }
    for env in &topology.gateway_environments {
        out += &format!("env {:?} {} {}\n", env.name, env.server_url, env.endpoint);
    }
    out
}

fn assert_lines(actual: &str, expected: &str) {
    let expected: String = expected
        .lines()
        .map(|l| l.strip_prefix("        ").unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    if actual != expected {
        let none = crate::engine::redact::Redactor::new();
        let diff =
            crate::engine::modules::file_diff("", expected.as_bytes(), actual.as_bytes(), &none)
                .diff;
        panic!("topology differs (-expected +actual):\n{diff}");
    }
}

const ALL_IN_ONE: &str = include_str!("../../inventory/all-in-one.toml");
const DISTRIBUTED: &str = include_str!("../../inventory/distributed.toml");
const TWO_GATEWAYS: &str = include_str!("../../inventory/two-gateways.toml");

#[test]
fn all_in_one_offsets_every_port_and_points_at_the_offset_gateway() {
    // The seed's single-machine table: KM 0, GW 1, Pub 2, Store 3. Gateway URLs carry the
    // gateway's offset (9444, 8281/8244), which the seed forgets; Thrift stays 10397 and
    // runs only on the KM; Publisher and Store get distinct member ports.
    assert_lines(
        &summary(&topology(ALL_IN_ONE)),
        r#"
        app1/keymanager 127.0.10.1 /opt/wso2/KeyManager offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=10397 hz=-
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=true host=127.0.10.1 client_port=10397
          revoke=https://127.0.10.1:8244/revoke envs=true
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        app1/gateway 127.0.10.1 /opt/wso2/Gateway offset=1 https=9444 http=9764 nio=8281/8244 jmx=10000/11112 thrift=- hz=-
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke= envs=false
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        app1/publisher 127.0.10.1 /opt/wso2/Publisher offset=2 https=9445 http=9765 nio=8282/8245 jmx=10001/11113 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke= envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.1:4000 members=127.0.10.1:4001
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        app1/store 127.0.10.1 /opt/wso2/Store offset=3 https=9446 http=9766 nio=8283/8246 jmx=10002/11114 thrift=- hz=4001
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke=https://127.0.10.1:8244/revoke envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.1:4001 members=127.0.10.1:4000
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        env "Production and Sandbox" https://127.0.10.1:9444/services/ http://127.0.10.1:8281,https://127.0.10.1:8244
        "#,
    );
}

#[test]
fn distributed_nodes_keep_default_ports_and_reach_each_other_by_address() {
    assert_lines(
        &summary(&topology(DISTRIBUTED)),
        r#"
        km/keymanager 127.0.10.1 /opt/wso2/KeyManager offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=10397 hz=-
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=true host=127.0.10.1 client_port=10397
          revoke=https://127.0.10.2:8243/revoke envs=true
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        gw/gateway 127.0.10.2 /opt/wso2/Gateway offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=- hz=-
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=127.0.10.1 client_port=10397
          revoke= envs=false
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        pub/publisher 127.0.10.3 /opt/wso2/Publisher offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke= envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.3:4000 members=127.0.10.4:4000
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        store/store 127.0.10.4 /opt/wso2/Store offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke=https://127.0.10.2:8243/revoke envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.4:4000 members=127.0.10.3:4000
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        env "Production and Sandbox" https://127.0.10.2:9443/services/ http://127.0.10.2:8280,https://127.0.10.2:8243
        "#,
    );
}

#[test]
fn two_gateways_cluster_get_one_environment_each_and_revoke_via_the_first() {
    // Offsets on app1 skip the absent gateway: KM 0, Publisher 1, Store 2.
    assert_lines(
        &summary(&topology(TWO_GATEWAYS)),
        r#"
        app1/keymanager 127.0.10.1 /opt/wso2/KeyManager offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=10397 hz=-
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=true host=127.0.10.1 client_port=10397
          revoke=https://127.0.10.2:8243/revoke envs=true
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        app1/publisher 127.0.10.1 /opt/wso2/Publisher offset=1 https=9444 http=9764 nio=8281/8244 jmx=10000/11112 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke= envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.1:4000 members=127.0.10.1:4001
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        app1/store 127.0.10.1 /opt/wso2/Store offset=2 https=9445 http=9765 nio=8282/8245 jmx=10001/11113 thrift=- hz=4001
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=- client_port=10397
          revoke=https://127.0.10.2:8243/revoke envs=true
          cluster=wso2.apim.pubstore.domain local=127.0.10.1:4001 members=127.0.10.1:4000
          ds=WSO2AM_DB,WSO2UM_DB,WSO2REG_DB um=true reg=true
        gw1/gateway 127.0.10.2 /opt/wso2/Gateway offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=127.0.10.1 client_port=10397
          revoke= envs=false
          cluster=wso2.apim.gateway.domain local=127.0.10.2:4000 members=127.0.10.3:4000
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        gw2/gateway 127.0.10.3 /opt/wso2/Gateway offset=0 https=9443 http=9763 nio=8280/8243 jmx=9999/11111 thrift=- hz=4000
          km=https://127.0.10.1:9443/services/ via=ThriftClient thrift_server=false host=127.0.10.1 client_port=10397
          revoke= envs=false
          cluster=wso2.apim.gateway.domain local=127.0.10.3:4000 members=127.0.10.2:4000
          ds=WSO2AM_DB,WSO2UM_DB um=true reg=false
        env "Production and Sandbox (gw1)" https://127.0.10.2:9443/services/ http://127.0.10.2:8280,https://127.0.10.2:8243
        env "Production and Sandbox (gw2)" https://127.0.10.3:9443/services/ http://127.0.10.3:8280,https://127.0.10.3:8243
        "#,
    );
}

/// An inventory with the common sections, then `extra` (options and hosts) appended.
/// A valid inventory: the required tables, `extra` (more tables or hosts), and the
/// database host `db` at 127.0.10.250.
pub(crate) fn inventory_with(extra: &str) -> String {
    let sha = "0".repeat(64);
    format!(
        r#"
[distribution]
path = "dist/wso2am-1.9.0.zip"
sha256 = "{sha}"
[jdbc_driver]
path = "dist/connector.jar"
sha256 = "{sha}"
[database]
host = "db"
admin_user = "apimadmin"
admin_password = {{ env = "APIM_DB_ADMIN_PASSWORD" }}
app_user = "wso2"
app_password = {{ env = "APIM_DB_APP_PASSWORD" }}
[admin]
password = {{ env = "APIM_ADMIN_PASSWORD" }}
{extra}
[[hosts]]
name = "db"
address = "127.0.10.250"
roles = ["database"]
"#
    )
}

fn node<'a>(topology: &'a Topology, id: &str) -> &'a Node {
    topology.node(id).unwrap_or_else(|| panic!("no node {id}"))
}

#[test]
fn several_key_managers_switch_to_wsclient_without_thrift_servers() {
    let t = topology(&inventory_with(
        r#"
[[hosts]]
name = "km1"
address = "127.0.10.1"
roles = ["keymanager", "gateway"]
[[hosts]]
name = "km2"
address = "127.0.10.2"
roles = ["keymanager"]
[[hosts]]
name = "app"
address = "127.0.10.3"
roles = ["publisher", "store"]
"#,
    ));
    assert_eq!(
        t.key_validation.client_type,
        KeyValidatorClientType::WSClient
    );
    assert!(t.nodes.iter().all(|n| !n.key_manager.enable_thrift_server));
    assert!(t.nodes.iter().all(|n| n.ports.thrift_server.is_none()));
    // A gateway uses the KM on its own host; the others take the KMs in turn.
    let km_of = |id| node(&t, id).key_manager.server_url.clone();
    assert_eq!(km_of("km1/gateway"), "https://127.0.10.1:9443/services/");
    assert_eq!(km_of("km2/keymanager"), "https://127.0.10.2:9443/services/");
    assert_eq!(km_of("app/publisher"), "https://127.0.10.1:9443/services/");
    assert_eq!(km_of("app/store"), "https://127.0.10.2:9443/services/");
    // The key managers cluster with each other; km1's KM is alone among clustering nodes
    // on its host, so it gets 4000.
    let km1 = node(&t, "km1/keymanager").clustering.as_ref().unwrap();
    assert_eq!(km1.domain, "wso2.apim.keymanager.domain");
    assert_eq!(km1.local_member_port, 4000);
    assert_eq!(km1.members[0].host.as_str(), "127.0.10.2");
}

#[test]
fn key_managers_behind_a_load_balancer_are_reached_through_it() {
    let t = topology(&inventory_with(
        r#"
[options]
key_manager_behind_lb = true
key_manager_url = "https://km-lb.example.org:9443/services/"
[[hosts]]
name = "app1"
address = "127.0.10.1"
roles = ["keymanager", "gateway", "publisher", "store"]
"#,
    ));
    assert_eq!(
        t.key_validation.client_type,
        KeyValidatorClientType::WSClient
    );
    assert_eq!(
        t.key_validation.load_balancer_url.as_deref(),
        Some("https://km-lb.example.org:9443/services/")
    );
    for n in &t.nodes {
        assert_eq!(
            n.key_manager.server_url,
            "https://km-lb.example.org:9443/services/"
        );
        assert_eq!(n.key_manager.key_manager_node, None);
        assert!(!n.key_manager.enable_thrift_server, "{}", n.id);
    }
}

#[test]
fn multi_tenancy_adds_the_registry_to_gateway_and_key_manager() {
    let t = topology(&inventory_with(
        r#"
[options]
multi_tenancy = true
[[hosts]]
name = "app1"
address = "127.0.10.1"
roles = ["keymanager", "gateway", "publisher", "store"]
"#,
    ));
    for n in &t.nodes {
        let names: Vec<&str> = n.datasources.iter().map(|d| d.name).collect();
        assert_eq!(names, ["WSO2AM_DB", "WSO2UM_DB", "WSO2REG_DB"], "{}", n.id);
        assert!(n.shared_user_store && n.shared_registry, "{}", n.id);
    }
    let gw = node(&t, "app1/gateway");
    assert_eq!(gw.datasources[0].jndi_name, "jdbc/WSO2AM_DB");
    assert_eq!(
        gw.datasources[2].url,
        "jdbc:mysql://regdb.mysql-wso2.com:3306/regdb?autoReconnect=true"
    );
}

#[test]
fn explicit_offsets_and_member_ports_win_and_automatic_ones_fill_the_gaps() {
    let t = topology(&inventory_with(
        r#"
[[hosts]]
name = "app1"
address = "127.0.10.1"
roles = ["store", "publisher", "gateway", "keymanager"]
offsets = { keymanager = 2 }
member_ports = { store = 4100 }
"#,
    ));
    let offsets: Vec<(String, u16, bool)> = t
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.offset, n.offset_from_inventory))
        .collect();
    assert_eq!(
        offsets,
        [
            ("app1/keymanager".to_owned(), 2, true),
            ("app1/gateway".to_owned(), 0, false),
            ("app1/publisher".to_owned(), 1, false),
            ("app1/store".to_owned(), 3, false),
        ]
    );
    assert_eq!(node(&t, "app1/keymanager").ports.https, 9445);
    assert_eq!(node(&t, "app1/store").ports.hazelcast, Some(4100));
    assert_eq!(node(&t, "app1/publisher").ports.hazelcast, Some(4000));
    let members = &node(&t, "app1/publisher")
        .clustering
        .as_ref()
        .unwrap()
        .members;
    assert_eq!(members[0].port, 4100);
}

#[test]
fn grants_cover_each_database_users_addresses_or_the_configured_pattern() {
    let t = topology(DISTRIBUTED);
    let grants = |i: usize| -> Vec<String> {
        t.database.databases[i]
            .grant_hosts
            .iter()
            .map(|g| g.to_string())
            .collect()
    };
    assert_eq!(
        grants(0),
        ["127.0.10.1", "127.0.10.2", "127.0.10.3", "127.0.10.4"]
    );
    assert_eq!(
        grants(1),
        ["127.0.10.1", "127.0.10.2", "127.0.10.3", "127.0.10.4"]
    );
    assert_eq!(grants(2), ["127.0.10.3", "127.0.10.4"]);
    assert_eq!(t.database.databases[0].script, "dbscripts/apimgt/mysql.sql");
    assert_eq!(t.database.databases[2].script, "dbscripts/mysql.sql");
    assert_eq!(t.database.address.as_str(), "127.0.10.250");

    let with_pattern = DISTRIBUTED.replace("charset = \"latin1\"", "grant_host = \"%\"");
    let t = topology(&with_pattern);
    for db in &t.database.databases {
        let grants: Vec<&str> = db.grant_hosts.iter().map(|g| g.as_str()).collect();
        assert_eq!(grants, ["%"], "{:?}", db.kind);
    }
}

#[test]
fn wso2_hosts_map_the_database_names_to_the_database_address() {
    let t = topology(ALL_IN_ONE);
    let app1 = &t.hosts[0];
    assert_eq!(app1.nodes.len(), 4);
    assert_eq!(app1.ssh_user.as_str(), "root");
    let entry = &app1.etc_hosts[0];
    assert_eq!(entry.address.as_str(), "127.0.10.250");
    let names: Vec<&str> = entry.names.iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "apimgtdb.mysql-wso2.com",
            "userdb.mysql-wso2.com",
            "regdb.mysql-wso2.com"
        ]
    );
    let db = &t.hosts[1];
    assert!(db.database && db.etc_hosts.is_empty() && db.nodes.is_empty());
}

#[test]
fn distributed_links_say_who_talks_to_whom() {
    let t = topology(DISTRIBUTED);
    let lines: Vec<String> = t
        .links
        .iter()
        .map(|l| format!("{} -> {} {} {}", l.from, l.to, l.purpose, l.target))
        .collect();
    assert_lines(
        &(lines.join("\n") + "\n"),
        r#"
        km/keymanager -> gw/gateway clear gateway caches (admin services) https://127.0.10.2:9443/services/
        km/keymanager -> gw/gateway revoke tokens (RevokeAPIURL) https://127.0.10.2:8243/revoke
        km/keymanager -> db/database JDBC 127.0.10.250:3306 (WSO2AM_DB, WSO2UM_DB)
        gw/gateway -> km/keymanager key validation (Thrift) 127.0.10.1:10397
        gw/gateway -> km/keymanager token, authorize and revoke APIs https://127.0.10.1:9443/oauth2/
        gw/gateway -> db/database JDBC 127.0.10.250:3306 (WSO2AM_DB, WSO2UM_DB)
        pub/publisher -> km/keymanager authentication and key management https://127.0.10.1:9443/services/
        pub/publisher -> gw/gateway publish APIs (admin services) https://127.0.10.2:9443/services/
        pub/publisher -> store/store Hazelcast cluster membership 127.0.10.4:4000
        pub/publisher -> db/database JDBC 127.0.10.250:3306 (WSO2AM_DB, WSO2UM_DB, WSO2REG_DB)
        store/store -> km/keymanager authentication and key management https://127.0.10.1:9443/services/
        store/store -> gw/gateway revoke tokens (RevokeAPIURL) https://127.0.10.2:8243/revoke
        store/store -> pub/publisher Hazelcast cluster membership 127.0.10.3:4000
        store/store -> db/database JDBC 127.0.10.250:3306 (WSO2AM_DB, WSO2UM_DB, WSO2REG_DB)
        "#,
    );
}

#[test]
fn ipv6_addresses_are_bracketed_in_urls() {
    let t = topology(&inventory_with(
        r#"
[[hosts]]
name = "app1"
address = "::1"
roles = ["keymanager", "gateway"]
"#,
    ));
    let gw = node(&t, "app1/gateway");
    assert_eq!(gw.key_manager.server_url, "https://[::1]:9443/services/");
    assert_eq!(
        t.gateway_environments[0].endpoint,
        "http://[::1]:8281,https://[::1]:8244"
    );
}

#[test]
fn json_has_the_documented_field_names() {
    let json = serde_json::to_value(topology(ALL_IN_ONE)).unwrap();
    let gw = &json["nodes"][1];
    assert_eq!(gw["id"], "app1/gateway");
    assert_eq!(gw["role"], "gateway");
    assert_eq!(gw["ports"]["nio_https"], 8244);
    assert_eq!(gw["key_manager"]["client_type"], "ThriftClient");
    assert_eq!(json["database"]["databases"][0]["kind"], "apimgt");
    assert_eq!(
        json["gateway_environments"][0]["server_url"],
        "https://127.0.10.1:9444/services/"
    );
}

#[test]
fn limit_picks_hosts_roles_and_nodes_and_rejects_unknown_names() {
    let t = topology(TWO_GATEWAYS);
    let parse = |limit: &[&str]| Limit::parse(limit).unwrap();
    let picked = |limit: &[&str]| -> Vec<String> {
        let limit = parse(limit);
        t.nodes
            .iter()
            .filter(|n| n.selected_by(&limit))
            .map(|n| n.id.clone())
            .collect()
    };
    let hosts = |limit: &[&str]| -> Vec<String> {
        t.hosts_selected_by(&parse(limit))
            .iter()
            .map(|h| h.name.to_string())
            .collect()
    };
    assert_eq!(picked(&["gateway"]), ["gw1/gateway", "gw2/gateway"]);
    assert_eq!(
        picked(&["app1/store", "gw2"]),
        ["app1/store", "gw2/gateway"]
    );
    assert_eq!(picked(&[]).len(), t.nodes.len());
    assert_eq!(hosts(&["publisher"]), ["app1"]);
    assert_eq!(hosts(&["database"]), ["db"]);
    assert_eq!(hosts(&["!gateway"]), ["app1", "db"]);
    assert_eq!(picked(&["gw*", "!gw1"]), ["gw2/gateway"]);
    let err = t.check_limit(&parse(&["gw3"])).unwrap_err();
    assert!(
        err.starts_with("--limit: `gw3` is no host, role or node"),
        "{err}"
    );
    assert!(err.contains("hosts: app1, gw1, gw2, db"), "{err}");
    assert!(t.check_limit(&parse(&["gw1/gateway", "store"])).is_ok());
}

/// The two-gateways inventory with gateways gw3..gwN added, and `extra` at the end.
fn many_gateways(gateways: usize, extra: &str) -> Topology {
    let mut text = TWO_GATEWAYS.to_string();
    for i in 3..=gateways {
        text += &format!(
            "\n[[hosts]]\nname = \"gw{i}\"\naddress = \"127.0.10.{}\"\nroles = [\"gateway\"]\n",
            i + 1
        );
    }
    topology(&(text + extra))
}

fn member_hosts(topology: &Topology, id: &str) -> Vec<String> {
    let clustering = node(topology, id).clustering.as_ref().unwrap();
    clustering
        .members
        .iter()
        .map(|m| m.host.to_string())
        .collect()
}

#[test]
fn well_known_members_are_a_bounded_set_that_survives_any_one_down() {
    // Twelve gateways: every gateway lists the first three (less itself), not the other eleven.
    let t = many_gateways(12, "");
    assert_eq!(
        member_hosts(&t, "gw1/gateway"),
        ["127.0.10.3", "127.0.10.4"]
    );
    assert_eq!(
        member_hosts(&t, "gw2/gateway"),
        ["127.0.10.2", "127.0.10.4"]
    );
    assert_eq!(
        member_hosts(&t, "gw12/gateway"),
        ["127.0.10.2", "127.0.10.3", "127.0.10.4"]
    );
    for n in 1..=12 {
        let listed = member_hosts(&t, &format!("gw{n}/gateway"));
        // With any one well-known member down, each node still lists one that is up.
        assert!(listed.len() >= 2, "gw{n} lists {listed:?}");
    }
    // Configurable, never below two.
    let t = many_gateways(6, "\n[options]\nwka_members = 5\n");
    assert_eq!(member_hosts(&t, "gw6/gateway").len(), 5);
    let t = many_gateways(6, "\n[options]\nwka_members = 1\n");
    assert_eq!(member_hosts(&t, "gw6/gateway").len(), 2);
}
