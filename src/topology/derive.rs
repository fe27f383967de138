//! Cross references: what each placed node is told about the others (Key Manager and
//! gateway URLs, revoke URL, cluster members, datasources) and the database plan.

use super::place::{Placed, client_type, cluster_group};
use super::*;

pub(super) fn https_url(address: &Address, port: u16, path: &str) -> String {
    format!("https://{}:{port}{path}", address.url_host())
}

/// Builds the cross references of collision-free placed nodes.
pub(super) fn build(inventory: &Inventory, placed: Vec<Placed>) -> Topology {
    let root = inventory.install.root.clone();
    let client_type = client_type(inventory);
    let multi_tenancy = inventory.options.multi_tenancy;
    let lb_url = inventory
        .options
        .key_manager_url
        .as_ref()
        .filter(|_| inventory.options.key_manager_behind_lb())
        .map(|u| u.get_ref().to_string());

    let mut nodes: Vec<Node> = placed
        .iter()
        .map(|p| {
            let host = &inventory.hosts[p.host_index];
            Node {
                id: format!("{}/{}", host.name(), p.role),
                host: host.name().clone(),
                address: host.address().clone(),
                role: p.role,
                dir: root.join(p.role.dir_name()),
                offset: p.offset,
                offset_from_inventory: p.offset_span.is_some(),
                ports: p.ports(),
                key_manager: KeyManagerClient {
                    server_url: String::new(),
                    key_manager_node: None,
                    client_type,
                    enable_thrift_server: p.thrift_server,
                    thrift_server_port: THRIFT_PORT,
                    thrift_server_host: p.thrift_server.then(|| host.address().clone()),
                    thrift_client_port: THRIFT_PORT,
                },
                revoke_url: String::new(),
                revoke_gateway_node: String::new(),
                configures_gateway_environments: p.role != Role::Gateway,
                clustering: None,
                datasources: Vec::new(),
                shared_user_store: DatabaseKind::User.needed_by(p.role, multi_tenancy),
                shared_registry: DatabaseKind::Reg.needed_by(p.role, multi_tenancy),
            }
        })
        .collect();

    assign_key_managers(&mut nodes, lb_url.as_deref());
    assign_gateway_thrift_hosts(&mut nodes);
    assign_revoke_urls(&mut nodes);
    let clusters = assign_clusters(inventory, &mut nodes);
    let database = database_plan(inventory, &nodes);
    assign_datasources(inventory, &mut nodes);
    let gateway_environments = gateway_environments(&nodes);
    let hosts = host_plans(inventory, &nodes, &database);
    let key_validation = KeyValidation {
        client_type,
        key_manager_urls: nodes
            .iter()
            .filter(|n| n.role == Role::KeyManager)
            .map(|n| https_url(&n.address, n.ports.https, "/services/"))
            .collect(),
        load_balancer_url: lb_url,
    };
    let links = super::links::links(&nodes, &gateway_environments, &database);
    Topology {
        install_root: root.to_string(),
        service_user: inventory.install.service_user.clone(),
        admin_username: inventory.admin.username.clone(),
        multi_tenancy,
        jwt: inventory.options.jwt,
        hosts,
        nodes,
        key_validation,
        gateway_environments,
        clusters,
        database,
        links,
    }
}

/// Points every node at a Key Manager: the load balancer if there is one; a Key Manager
/// at itself; otherwise a Key Manager on the same host, else the Key Managers in turn.
fn assign_key_managers(nodes: &mut [Node], lb_url: Option<&str>) {
    let key_managers: Vec<(String, HostName, String)> = nodes
        .iter()
        .filter(|n| n.role == Role::KeyManager)
        .map(|n| {
            (
                n.id.clone(),
                n.host.clone(),
                https_url(&n.address, n.ports.https, "/services/"),
            )
        })
        .collect();
    let mut turn = 0;
    for node in nodes.iter_mut() {
        if let Some(url) = lb_url {
            node.key_manager.server_url = url.to_owned();
            continue;
        }
        let chosen = if node.role == Role::KeyManager {
            key_managers.iter().find(|(id, _, _)| *id == node.id)
        } else if let Some(local) = key_managers.iter().find(|(_, host, _)| *host == node.host) {
            Some(local)
        } else {
            turn += 1;
            key_managers.get((turn - 1) % key_managers.len().max(1))
        };
        if let Some((id, _, url)) = chosen {
            node.key_manager.server_url = url.clone();
            node.key_manager.key_manager_node = Some(id.clone());
        }
    }
}

/// `ThriftServerHost` for a Thrift-validating Gateway on another machine than its Key
/// Manager: the Key Manager's address. The product would fall back to the host of
/// `APIKeyValidator/ServerURL` (the same address); stating it keeps the Gateway's Thrift
/// client independent of that URL: a change to how the URL is written cannot move token
/// validation elsewhere (docs/seed-deviations.md, rows 13 and 19).
fn assign_gateway_thrift_hosts(nodes: &mut [Node]) {
    let hosts: Vec<(String, String, Address)> = nodes
        .iter()
        .map(|n| (n.id.clone(), n.host.to_string(), n.address.clone()))
        .collect();
    for node in nodes.iter_mut() {
        if node.role != Role::Gateway
            || node.key_manager.client_type != KeyValidatorClientType::ThriftClient
        {
            continue;
        }
        let km = node.key_manager.key_manager_node.as_deref();
        if let Some((_, km_host, km_address)) =
            hosts.iter().find(|(id, _, _)| Some(id.as_str()) == km)
            && *km_host != node.host.to_string()
        {
            node.key_manager.thrift_server_host = Some(km_address.clone());
        }
    }
}

/// Only the Key Manager (its subscriber service) and the Store (its default key
/// manager, which also derives the token URL from it) read `RevokeAPIURL`: a
/// gateway of theirs revokes, the first one. Other roles get none.
fn assign_revoke_urls(nodes: &mut [Node]) {
    let revoke = |n: &Node| {
        (
            https_url(&n.address, n.ports.nio_https, "/revoke"),
            n.id.clone(),
        )
    };
    let first_gateway = nodes.iter().find(|n| n.role == Role::Gateway).map(revoke);
    for node in nodes.iter_mut() {
        if matches!(node.role, Role::KeyManager | Role::Store) {
            let (url, gateway) = first_gateway.clone().unwrap_or_default();
            node.revoke_url = url;
            node.revoke_gateway_node = gateway;
        }
    }
}

fn assign_clusters(inventory: &Inventory, nodes: &mut [Node]) -> Vec<Cluster> {
    let mut clusters: Vec<Cluster> = Vec::new();
    for node in nodes.iter() {
        let Some(domain) = cluster_group(inventory, node.role) else {
            continue;
        };
        match clusters.iter_mut().find(|c| c.domain == domain) {
            Some(cluster) => cluster.nodes.push(node.id.clone()),
            None => clusters.push(Cluster {
                domain: domain.to_owned(),
                purpose: match node.role {
                    Role::Publisher | Role::Store => {
                        "publisher and store share registry cache invalidation"
                    }
                    Role::KeyManager => "key managers share caches",
                    _ => "gateways share caches",
                }
                .to_owned(),
                nodes: vec![node.id.clone()],
            }),
        }
    }
    let member = |n: &Node| ClusterMember {
        node: n.id.clone(),
        host: n.address.clone(),
        port: n.ports.hazelcast.unwrap_or(HAZELCAST_BASE_PORT),
    };
    // A bounded well-known set: the first few nodes of each domain, in inventory order.
    // Every node lists the set (less itself), so the list does not grow with the cluster,
    // and with any one member down each node still lists one that is up.
    let wka = inventory.options.wka_members();
    let snapshot: Vec<Node> = nodes.to_vec();
    for node in nodes.iter_mut() {
        let Some(cluster) = clusters.iter().find(|c| c.nodes.contains(&node.id)) else {
            continue;
        };
        let members = snapshot
            .iter()
            .filter(|n| cluster.nodes[..cluster.nodes.len().min(wka)].contains(&n.id))
            .filter(|n| n.id != node.id)
            .map(member)
            .collect();
        node.clustering = Some(NodeClustering {
            domain: cluster.domain.clone(),
            local_member_host: node.address.clone(),
            local_member_port: node.ports.hazelcast.unwrap_or(HAZELCAST_BASE_PORT),
            members,
        });
    }
    clusters
}

fn database_spec_parts(inventory: &Inventory, kind: DatabaseKind) -> (DbIdent, DnsName) {
    let db = &inventory.database;
    match kind {
        DatabaseKind::Apimgt => (db.names.apimgt.clone(), db.hostnames.apimgt.clone()),
        DatabaseKind::User => (db.names.user.clone(), db.hostnames.user.clone()),
        DatabaseKind::Reg => (db.names.reg.clone(), db.hostnames.reg.clone()),
    }
}

fn assign_datasources(inventory: &Inventory, nodes: &mut [Node]) {
    let port = inventory.database.port;
    for node in nodes.iter_mut() {
        node.datasources = DatabaseKind::ALL
            .into_iter()
            .filter(|kind| kind.needed_by(node.role, inventory.options.multi_tenancy))
            .map(|kind| {
                let (name, hostname) = database_spec_parts(inventory, kind);
                Datasource {
                    kind,
                    name: kind.datasource_name(),
                    jndi_name: kind.jndi_name(),
                    url: format!("jdbc:mysql://{hostname}:{port}/{name}?autoReconnect=true"),
                    username: inventory.database.app_user.clone(),
                }
            })
            .collect();
    }
}

fn database_plan(inventory: &Inventory, nodes: &[Node]) -> DatabasePlan {
    let db_host = inventory.database_host();
    let multi_tenancy = inventory.options.multi_tenancy;
    let databases = DatabaseKind::ALL
        .into_iter()
        .map(|kind| {
            let (name, hostname) = database_spec_parts(inventory, kind);
            let users: Vec<&Node> = nodes
                .iter()
                .filter(|n| kind.needed_by(n.role, multi_tenancy))
                .collect();
            let grant_hosts = match &inventory.database.grant_host {
                Some(pattern) => vec![pattern.clone()],
                None => {
                    let addresses: BTreeSet<&str> =
                        users.iter().map(|n| n.address.as_str()).collect();
                    addresses
                        .into_iter()
                        .map(|a| GrantHost::parse(a).expect("addresses are valid grant hosts"))
                        .collect()
                }
            };
            DatabaseSpec {
                kind,
                name,
                hostname,
                script: kind.script(),
                used_by: users.iter().map(|n| n.id.clone()).collect(),
                grant_hosts,
            }
        })
        .collect();
    DatabasePlan {
        host: db_host.name().clone(),
        address: db_host.address().clone(),
        port: inventory.database.port,
        charset: inventory.database.charset.clone(),
        admin_user: inventory.database.admin_user.clone(),
        app_user: inventory.database.app_user.clone(),
        databases,
    }
}

fn gateway_environments(nodes: &[Node]) -> Vec<GatewayEnvironment> {
    let gateways: Vec<&Node> = nodes.iter().filter(|n| n.role == Role::Gateway).collect();
    let single = gateways.len() == 1;
    gateways
        .into_iter()
        .map(|gw| GatewayEnvironment {
            name: if single {
                "Production and Sandbox".to_owned()
            } else {
                format!("Production and Sandbox ({})", gw.host)
            },
            gateway_node: gw.id.clone(),
            server_url: https_url(&gw.address, gw.ports.https, "/services/"),
            endpoint: format!(
                "http://{host}:{},https://{host}:{}",
                gw.ports.nio_http,
                gw.ports.nio_https,
                host = gw.address.url_host()
            ),
        })
        .collect()
}

fn host_plans(inventory: &Inventory, nodes: &[Node], database: &DatabasePlan) -> Vec<HostPlan> {
    inventory
        .hosts
        .iter()
        .map(|host| {
            let host_nodes: Vec<String> = nodes
                .iter()
                .filter(|n| n.host == *host.name())
                .map(|n| n.id.clone())
                .collect();
            let etc_hosts = if host_nodes.is_empty() {
                Vec::new()
            } else {
                vec![EtcHostsEntry {
                    address: database.address.clone(),
                    names: dedup(database.databases.iter().map(|d| d.hostname.clone())),
                }]
            };
            HostPlan {
                name: host.name().clone(),
                address: host.address().clone(),
                ssh_port: host
                    .port
                    .or(inventory.ssh.port)
                    .unwrap_or(crate::inventory::Ssh::DEFAULT_PORT),
                ssh_user: host
                    .user
                    .clone()
                    .unwrap_or_else(|| inventory.ssh.default_user()),
                roles: host.roles().collect(),
                nodes: host_nodes,
                database: host.name() == &database.host,
                etc_hosts,
            }
        })
        .collect()
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}
