//! The topology: every per-node fact derived once from a validated inventory (issue #2).
//!
//! The inventory says which roles run on which hosts; the topology says what that means
//! for WSO2 API Manager 1.9.0: one [`Node`] per (host, WSO2 role), its directory, port
//! offset and effective ports, the URLs it must be given for the other nodes, the
//! Hazelcast cluster it joins, the datasources it needs, and the databases with the
//! accounts to grant. The playbook engine feeds these plain values into templates, so
//! nothing downstream recomputes a port or a URL.
//!
//! Port facts (see `wso2-1.9-facts.md` §3): the Carbon `Offset` shifts the servlet ports
//! 9443/9763, the NIO pass-through ports 8280/8243 and the JMX ports 9999/11111. It does
//! **not** shift the key-validation Thrift port 10397 nor the Hazelcast member port 4000,
//! so only the Key Manager runs a Thrift server and clustering nodes that share a host get
//! distinct member ports (4000, 4001, ...).
//!
//! [`Topology::from_inventory`] is pure and fails only on port collisions, reported with
//! the same [`InventoryError`] type (and spans) as the inventory checks.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::inventory::{
    Address, DbIdent, DnsName, GrantHost, HostName, Inventory, InventoryError, Problem,
    ProblemKind, Role, Secrets, UserName,
};

/// Servlet HTTPS port before the offset (management console, admin services, OAuth).
pub const HTTPS_PORT: u16 = 9443;
/// Servlet HTTP port before the offset.
pub const HTTP_PORT: u16 = 9763;
/// Gateway pass-through HTTP port before the offset.
pub const NIO_HTTP_PORT: u16 = 8280;
/// Gateway pass-through HTTPS port before the offset.
pub const NIO_HTTPS_PORT: u16 = 8243;
/// JMX RMI registry port before the offset.
pub const JMX_RMI_REGISTRY_PORT: u16 = 9999;
/// JMX RMI server port before the offset.
pub const JMX_RMI_SERVER_PORT: u16 = 11111;
/// Key-validation Thrift port; never offset.
pub const THRIFT_PORT: u16 = 10397;
/// First Hazelcast member port; never offset.
pub const HAZELCAST_BASE_PORT: u16 = 4000;

/// Everything derived from an inventory. Plain data; serializes to the JSON of `check --json`.
#[derive(Debug, Clone, Serialize)]
pub struct Topology {
    /// Directory under which each node's distribution is unpacked.
    pub install_root: String,
    /// Unix user owning and running the servers.
    pub service_user: UserName,
    /// WSO2 admin user name (the password stays in the inventory as a secret reference).
    pub admin_username: UserName,
    /// Tenants in use.
    pub multi_tenancy: bool,
    /// JWT generation on.
    pub jwt: bool,
    /// The hosts, in inventory order.
    pub hosts: Vec<HostPlan>,
    /// One node per (host, WSO2 role): hosts in inventory order, roles in
    /// [`Role::WSO2`] order within a host.
    pub nodes: Vec<Node>,
    /// How gateways validate keys.
    pub key_validation: KeyValidation,
    /// One API gateway environment per gateway node (configured on KM, Publisher, Store).
    pub gateway_environments: Vec<GatewayEnvironment>,
    /// The Hazelcast clusters (publisher+store; any role with several nodes).
    pub clusters: Vec<Cluster>,
    /// The database server and its databases.
    pub database: DatabasePlan,
    /// Who talks to whom (for the `check` report, firewalls and connectivity checks).
    pub links: Vec<Link>,
}

/// A host and what runs on it.
#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    /// Inventory name.
    pub name: HostName,
    /// Address.
    pub address: Address,
    /// SSH port.
    pub ssh_port: u16,
    /// SSH login user.
    pub ssh_user: UserName,
    /// Roles, in inventory order.
    pub roles: Vec<Role>,
    /// Ids of the WSO2 nodes on this host.
    pub nodes: Vec<String>,
    /// Whether this is the database host.
    pub database: bool,
    /// `/etc/hosts` lines this host needs (the database host names), empty on a host
    /// without WSO2 nodes.
    pub etc_hosts: Vec<EtcHostsEntry>,
}

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcHostsEntry {
    /// The address the names resolve to.
    pub address: Address,
    /// The names.
    pub names: Vec<DnsName>,
}

/// One WSO2 server instance: a role on a host.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// `host/role`, unique: e.g. `app1/gateway`.
    pub id: String,
    /// The host's inventory name.
    pub host: HostName,
    /// The host's address (what the other nodes use to reach this one).
    pub address: Address,
    /// The role.
    pub role: Role,
    /// CARBON_HOME: `<install root>/<KeyManager|Gateway|Publisher|Store>`.
    pub dir: String,
    /// `carbon.xml` `/Server/Ports/Offset`.
    pub offset: u16,
    /// Whether the offset came from the host's `offsets` table rather than the automatic rule.
    pub offset_from_inventory: bool,
    /// The ports the node listens on.
    pub ports: Ports,
    /// `api-manager.xml` `APIKeyValidator` and `AuthManager` settings.
    pub key_manager: KeyManagerClient,
    /// `APIKeyValidator/RevokeAPIURL`: a gateway's `https://<gw>:<8243+o>/revoke`
    /// (its own on a gateway, the first gateway's elsewhere). The Store and Publisher also
    /// derive the token URL from it (`revoke` -> `token`).
    pub revoke_url: String,
    /// The gateway node [`Node::revoke_url`] points at.
    pub revoke_gateway_node: String,
    /// Whether `APIGateway/Environments` must list [`Topology::gateway_environments`]
    /// (Key Manager, Publisher, Store).
    pub configures_gateway_environments: bool,
    /// Hazelcast clustering of this node, if it clusters.
    pub clustering: Option<NodeClustering>,
    /// The datasources `master-datasources.xml` must define (besides WSO2_CARBON_DB).
    pub datasources: Vec<Datasource>,
    /// Whether `user-mgt.xml` points its `dataSource` at `jdbc/WSO2UM_DB`.
    pub shared_user_store: bool,
    /// Whether `registry.xml` mounts the shared governance/config registry from WSO2REG_DB.
    pub shared_registry: bool,
}

impl Node {
    /// Whether this node uses `kind`'s database.
    pub fn uses(&self, kind: DatabaseKind) -> bool {
        self.datasources.iter().any(|d| d.kind == kind)
    }
}

/// The effective ports of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ports {
    /// Servlet HTTPS (9443 + offset): console, admin services, `/oauth2`, `/publisher`, `/store`.
    pub https: u16,
    /// Servlet HTTP (9763 + offset).
    pub http: u16,
    /// Pass-through HTTP (8280 + offset): API traffic on a gateway.
    pub nio_http: u16,
    /// Pass-through HTTPS (8243 + offset).
    pub nio_https: u16,
    /// JMX RMI registry (9999 + offset).
    pub jmx_rmi_registry: u16,
    /// JMX RMI server (11111 + offset).
    pub jmx_rmi_server: u16,
    /// Thrift key-validation server (10397, not offset): only on a Key Manager with
    /// Thrift validation.
    pub thrift_server: Option<u16>,
    /// Hazelcast `localMemberPort` (not offset): only on clustering nodes.
    pub hazelcast: Option<u16>,
}

impl Ports {
    /// Every port with what it is for, in a stable order.
    pub fn all(&self) -> Vec<(&'static str, u16)> {
        let mut ports = vec![
            ("https", self.https),
            ("http", self.http),
            ("nio_http", self.nio_http),
            ("nio_https", self.nio_https),
            ("jmx_rmi_registry", self.jmx_rmi_registry),
            ("jmx_rmi_server", self.jmx_rmi_server),
        ];
        ports.extend(self.thrift_server.map(|p| ("thrift_server", p)));
        ports.extend(self.hazelcast.map(|p| ("hazelcast", p)));
        ports
    }
}

/// `KeyValidatorClientType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum KeyValidatorClientType {
    /// Thrift to the Key Manager's port 10397 (one Key Manager, not load balanced).
    ThriftClient,
    /// SOAP admin service over HTTPS (several Key Managers or a load balancer).
    WSClient,
}

/// Deployment-wide key validation settings.
#[derive(Debug, Clone, Serialize)]
pub struct KeyValidation {
    /// Thrift or WS.
    pub client_type: KeyValidatorClientType,
    /// The Key Manager nodes' admin-services URLs.
    pub key_manager_urls: Vec<String>,
    /// The load balancer URL every node uses instead, when `key_manager_behind_lb`.
    pub load_balancer_url: Option<String>,
}

/// What a node puts in `APIKeyValidator` (and `AuthManager`).
#[derive(Debug, Clone, Serialize)]
pub struct KeyManagerClient {
    /// `APIKeyValidator/ServerURL` and `AuthManager/ServerURL`:
    /// `https://<km>:<km https>/services/` (the node itself on a Key Manager).
    pub server_url: String,
    /// The Key Manager node this URL points at (`None` behind a load balancer).
    pub key_manager_node: Option<String>,
    /// `KeyValidatorClientType`.
    pub client_type: KeyValidatorClientType,
    /// `EnableThriftServer`: true only on a Key Manager with Thrift validation
    /// (the shipped default is true everywhere, which clashes on shared hosts).
    pub enable_thrift_server: bool,
    /// `ThriftServerPort` (10397).
    pub thrift_server_port: u16,
    /// `ThriftServerHost` on a Thrift Key Manager: its own address (the default would be
    /// the machine's first non-loopback IP).
    pub thrift_server_host: Option<Address>,
    /// `ThriftClientPort`: the Key Manager's `ThriftServerPort`.
    pub thrift_client_port: u16,
}

/// One `APIGateway/Environments/Environment`.
#[derive(Debug, Clone, Serialize)]
pub struct GatewayEnvironment {
    /// `Name` (unique).
    pub name: String,
    /// The gateway node.
    pub gateway_node: String,
    /// `ServerURL`: `https://<gw>:<gw https>/services/`.
    pub server_url: String,
    /// `GatewayEndpoint`: `http://<gw>:<8280+o>,https://<gw>:<8243+o>`.
    pub endpoint: String,
}

/// A Hazelcast cluster (wka membership).
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// The clustering `domain`.
    pub domain: String,
    /// Why these nodes cluster.
    pub purpose: String,
    /// Member node ids.
    pub nodes: Vec<String>,
}

/// A node's clustering settings (`axis2.xml` `clustering`).
#[derive(Debug, Clone, Serialize)]
pub struct NodeClustering {
    /// `domain`.
    pub domain: String,
    /// `localMemberHost`: the node's address.
    pub local_member_host: Address,
    /// `localMemberPort`.
    pub local_member_port: u16,
    /// `members/member`: every other node of the cluster.
    pub members: Vec<ClusterMember>,
}

/// One well-known member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterMember {
    /// The member node.
    pub node: String,
    /// `hostName`.
    pub host: Address,
    /// `port`: its `localMemberPort`.
    pub port: u16,
}

/// The three WSO2 databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// API Manager (WSO2AM_DB): every node.
    Apimgt,
    /// User store (WSO2UM_DB).
    User,
    /// Shared registry (WSO2REG_DB).
    Reg,
}

impl DatabaseKind {
    /// All three, in datasource order.
    pub const ALL: [DatabaseKind; 3] =
        [DatabaseKind::Apimgt, DatabaseKind::User, DatabaseKind::Reg];

    /// The datasource `name`.
    pub fn datasource_name(self) -> &'static str {
        match self {
            DatabaseKind::Apimgt => "WSO2AM_DB",
            DatabaseKind::User => "WSO2UM_DB",
            DatabaseKind::Reg => "WSO2REG_DB",
        }
    }

    /// The JNDI name (`jndiConfig/name`).
    pub fn jndi_name(self) -> &'static str {
        match self {
            DatabaseKind::Apimgt => "jdbc/WSO2AM_DB",
            DatabaseKind::User => "jdbc/WSO2UM_DB",
            DatabaseKind::Reg => "jdbc/WSO2REG_DB",
        }
    }

    /// The schema script, relative to CARBON_HOME.
    pub fn script(self) -> &'static str {
        match self {
            DatabaseKind::Apimgt => "dbscripts/apimgt/mysql.sql",
            DatabaseKind::User | DatabaseKind::Reg => "dbscripts/mysql.sql",
        }
    }

    /// Whether a node of `role` needs this database (multi-tenancy adds the user store to
    /// gateways and the registry to gateways and key managers, as the WSO2 guide says).
    pub fn needed_by(self, role: Role, multi_tenancy: bool) -> bool {
        match self {
            DatabaseKind::Apimgt => role.is_wso2(),
            DatabaseKind::User => match role {
                Role::KeyManager | Role::Publisher | Role::Store => true,
                Role::Gateway => multi_tenancy,
                Role::Database => false,
            },
            DatabaseKind::Reg => match role {
                Role::Publisher | Role::Store => true,
                Role::Gateway | Role::KeyManager => multi_tenancy,
                Role::Database => false,
            },
        }
    }
}

/// One datasource of a node.
#[derive(Debug, Clone, Serialize)]
pub struct Datasource {
    /// Which database.
    pub kind: DatabaseKind,
    /// `name`, e.g. `WSO2AM_DB`.
    pub name: &'static str,
    /// `jndiConfig/name`, e.g. `jdbc/WSO2AM_DB`.
    pub jndi_name: &'static str,
    /// `url`: `jdbc:mysql://<hostname>:<port>/<database>?autoReconnect=true`.
    pub url: String,
    /// `username` (the password is the inventory's `database.app_password`).
    pub username: UserName,
}

/// The database server.
#[derive(Debug, Clone, Serialize)]
pub struct DatabasePlan {
    /// Its host.
    pub host: HostName,
    /// Its address (what the database host names map to).
    pub address: Address,
    /// Its port.
    pub port: u16,
    /// Character set of the created databases.
    pub charset: DbIdent,
    /// Account for creating databases and users.
    pub admin_user: UserName,
    /// Account of the nodes.
    pub app_user: UserName,
    /// The three databases.
    pub databases: Vec<DatabaseSpec>,
}

/// One database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseSpec {
    /// Which one.
    pub kind: DatabaseKind,
    /// Database name.
    pub name: DbIdent,
    /// The DNS name in the nodes' JDBC URLs.
    pub hostname: DnsName,
    /// Schema script (relative to CARBON_HOME).
    pub script: &'static str,
    /// Nodes that connect to it.
    pub used_by: Vec<String>,
    /// Host parts of the app account to grant on it: `database.grant_host`, or the
    /// distinct addresses of the nodes using it.
    pub grant_hosts: Vec<GrantHost>,
}

/// A connection one node opens to another (or to the database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// The client node.
    pub from: String,
    /// The server node (or `database`).
    pub to: String,
    /// What for.
    pub purpose: &'static str,
    /// Address and port, or URL, connected to.
    pub target: String,
}

impl Topology {
    /// Derives the topology of a checked inventory. Fails when two listeners on one host
    /// would share a port.
    pub fn from_inventory(inventory: &Inventory) -> Result<Topology, InventoryError> {
        let placed = place_nodes(inventory);
        let mut problems = unused_member_ports(inventory);
        problems.extend(port_collisions(inventory, &placed));
        if !problems.is_empty() {
            return Err(inventory.error(problems));
        }
        Ok(build(inventory, placed))
    }

    /// Loads `path` and derives its topology, reporting the file's semantic and secret
    /// problems and the port collisions together where possible. The one call a command
    /// needs: `let (inventory, topology) = Topology::load(path, Secrets::Resolve)?;`
    pub fn load(path: &Path, secrets: Secrets) -> Result<(Inventory, Topology), InventoryError> {
        let (inventory, problems) = Inventory::load_with_problems(path, secrets)?;
        Self::derive_collecting(inventory, problems)
    }

    /// [`Topology::load`] for inventory text named `name`.
    pub fn from_text(
        text: &str,
        name: &str,
        secrets: Secrets,
    ) -> Result<(Inventory, Topology), InventoryError> {
        let (inventory, problems) = Inventory::parse_with_problems(text, name, secrets)?;
        Self::derive_collecting(inventory, problems)
    }

    /// Derives the topology unless the inventory has structural problems; unresolved
    /// secrets do not affect the layout, so port collisions are reported along with them.
    fn derive_collecting(
        inventory: Inventory,
        mut problems: Vec<Problem>,
    ) -> Result<(Inventory, Topology), InventoryError> {
        if problems
            .iter()
            .any(|p| p.kind != ProblemKind::UnresolvedSecret)
        {
            return Err(inventory.error(problems));
        }
        match Topology::from_inventory(&inventory) {
            Ok(topology) if problems.is_empty() => Ok((inventory, topology)),
            Ok(_) => Err(inventory.error(problems)),
            Err(error) => {
                problems.extend(error.problems);
                Err(inventory.error(problems))
            }
        }
    }

    /// The node with id `id`.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The nodes of `role`, in topology order.
    pub fn nodes_with_role(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
    }
}

/// A node's placement before cross references: where it runs and which ports it opens,
/// plus the inventory spans that explain them (for collision errors).
struct Placed {
    host_index: usize,
    role: Role,
    offset: u16,
    offset_span: Option<Range<usize>>,
    member_port: Option<u16>,
    member_span: Option<Range<usize>>,
    thrift_server: bool,
}

impl Placed {
    fn ports(&self) -> Ports {
        let o = self.offset;
        Ports {
            https: HTTPS_PORT + o,
            http: HTTP_PORT + o,
            nio_http: NIO_HTTP_PORT + o,
            nio_https: NIO_HTTPS_PORT + o,
            jmx_rmi_registry: JMX_RMI_REGISTRY_PORT + o,
            jmx_rmi_server: JMX_RMI_SERVER_PORT + o,
            thrift_server: self.thrift_server.then_some(THRIFT_PORT),
            hazelcast: self.member_port,
        }
    }
}

fn client_type(inventory: &Inventory) -> KeyValidatorClientType {
    let key_managers = inventory
        .hosts
        .iter()
        .filter(|h| h.has_role(Role::KeyManager))
        .count();
    if inventory.options.key_manager_behind_lb() || key_managers > 1 {
        KeyValidatorClientType::WSClient
    } else {
        KeyValidatorClientType::ThriftClient
    }
}

/// Which roles cluster: publisher and store together when there are two or more of them,
/// and key managers or gateways among themselves when there are several.
fn cluster_group(inventory: &Inventory, role: Role) -> Option<&'static str> {
    let count = |r| inventory.hosts.iter().filter(|h| h.has_role(r)).count();
    match role {
        Role::Publisher | Role::Store if count(Role::Publisher) + count(Role::Store) >= 2 => {
            Some("wso2.apim.pubstore.domain")
        }
        Role::KeyManager if count(Role::KeyManager) >= 2 => Some("wso2.apim.keymanager.domain"),
        Role::Gateway if count(Role::Gateway) >= 2 => Some("wso2.apim.gateway.domain"),
        _ => None,
    }
}

/// Assigns offsets and member ports host by host. Explicit values win; the others take
/// the smallest value not yet used on the host, in [`Role::WSO2`] order (so KM 0, GW 1,
/// Publisher 2, Store 3 when all four share a host, and 0 for a node alone).
fn place_nodes(inventory: &Inventory) -> Vec<Placed> {
    let thrift = client_type(inventory) == KeyValidatorClientType::ThriftClient;
    let mut placed = Vec::new();
    for (host_index, host) in inventory.hosts.iter().enumerate() {
        let roles: Vec<Role> = Role::WSO2
            .into_iter()
            .filter(|r| host.has_role(*r))
            .collect();
        let mut used_offsets: BTreeSet<u16> = host.offsets.values().map(|v| *v.get_ref()).collect();
        let mut used_members: BTreeSet<u16> =
            host.member_ports.values().map(|v| *v.get_ref()).collect();
        for role in roles {
            let explicit = host.offsets.get(&role);
            let offset = match explicit {
                Some(value) => *value.get_ref(),
                None => take_lowest_free(&mut used_offsets, 0),
            };
            let clusters = cluster_group(inventory, role).is_some();
            let explicit_member = host.member_ports.get(&role).filter(|_| clusters);
            let member_port = match (clusters, explicit_member) {
                (false, _) => None,
                (true, Some(value)) => Some(*value.get_ref()),
                (true, None) => Some(take_lowest_free(&mut used_members, HAZELCAST_BASE_PORT)),
            };
            placed.push(Placed {
                host_index,
                role,
                offset,
                offset_span: explicit.map(|v| v.span()),
                member_port,
                member_span: explicit_member.map(|v| v.span()),
                thrift_server: thrift && role == Role::KeyManager,
            });
        }
    }
    placed
}

/// `member_ports` for a role that does not cluster would be silently ignored.
fn unused_member_ports(inventory: &Inventory) -> Vec<Problem> {
    let mut problems = Vec::new();
    for host in &inventory.hosts {
        for (role, value) in &host.member_ports {
            if role.is_wso2() && host.has_role(*role) && cluster_group(inventory, *role).is_none() {
                problems.push(
                    Problem::new(
                        ProblemKind::BadOption,
                        format!(
                            "member_ports sets `{role}` on `{}`, but that node does not cluster",
                            host.name()
                        ),
                        value.span(),
                    )
                    .label("would be ignored")
                    .help(
                        "nodes cluster when the deployment has two or more publishers and stores, \
                         or several nodes of the role; remove this entry",
                    ),
                );
            }
        }
    }
    problems
}

fn take_lowest_free(used: &mut BTreeSet<u16>, from: u16) -> u16 {
    let free = (from..=u16::MAX)
        .find(|v| !used.contains(v))
        .unwrap_or(from);
    used.insert(free);
    free
}

/// Two listeners on one host with the same port: one problem per pair of clashing nodes
/// (listing every shared port), pointing at the explicit offset or member port that caused
/// it, or at the role when the value is automatic.
fn port_collisions(inventory: &Inventory, placed: &[Placed]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (host_index, host) in inventory.hosts.iter().enumerate() {
        let mut seen: BTreeMap<u16, (String, &'static str)> = BTreeMap::new();
        if host.name() == inventory.database.host.get_ref() {
            seen.insert(inventory.database.port, ("database".to_owned(), "mysql"));
        }
        for node in placed.iter().filter(|p| p.host_index == host_index) {
            let id = format!("{}/{}", host.name(), node.role);
            // Clashes of this node, grouped by the node it clashes with.
            let mut clashes: BTreeMap<String, Vec<Clash>> = BTreeMap::new();
            for (purpose, port) in node.ports().all() {
                match seen.get(&port) {
                    Some((other, other_purpose)) => {
                        clashes.entry(other.clone()).or_default().push(Clash {
                            port,
                            purpose,
                            other_purpose,
                        })
                    }
                    None => {
                        seen.insert(port, (id.clone(), purpose));
                    }
                }
            }
            for (other, clashes) in clashes {
                problems.push(collision_problem(host, node, &id, &other, &clashes));
            }
        }
    }
    problems
}

/// One port two listeners want.
struct Clash {
    port: u16,
    purpose: &'static str,
    other_purpose: &'static str,
}

fn collision_problem(
    host: &crate::inventory::Host,
    node: &Placed,
    id: &str,
    other: &str,
    clashes: &[Clash],
) -> Problem {
    let first = &clashes[0];
    let message = match clashes {
        [one] => format!(
            "port {} on host `{}` is used twice: {other} {} and {id} {}",
            one.port,
            host.name(),
            one.other_purpose,
            one.purpose
        ),
        _ => {
            let list: Vec<String> = clashes
                .iter()
                .map(|c| match c.purpose == c.other_purpose {
                    true => format!("{} ({})", c.port, c.purpose),
                    false => format!("{} ({} / {})", c.port, c.other_purpose, c.purpose),
                })
                .collect();
            format!(
                "ports {} on host `{}` are used by both {other} and {id}",
                list.join(", "),
                host.name()
            )
        }
    };
    let span = match first.purpose {
        "hazelcast" => node.member_span.clone(),
        _ => node.offset_span.clone(),
    }
    .unwrap_or_else(|| host.role_span(node.role));
    Problem::new(ProblemKind::PortCollision, message, span)
        .label(format!(
            "{id} would listen on {} already taken by {other}",
            first.port
        ))
        .help(collision_help(first.purpose, first.other_purpose))
}

fn collision_help(purpose: &str, other_purpose: &str) -> String {
    let fixed = |p: &str| matches!(p, "thrift_server" | "hazelcast" | "mysql");
    if purpose == "hazelcast" && other_purpose == "hazelcast" {
        "Hazelcast member ports are not offset; give each clustering node on this host its own \
         `member_ports` value (or drop the overrides to get 4000, 4001, ...)"
            .to_owned()
    } else if fixed(purpose) || fixed(other_purpose) {
        "Thrift (10397), Hazelcast (4000+) and the database port are not offset; choose \
         `offsets` that keep 9443/9763/8280/8243/9999/11111 + offset clear of them"
            .to_owned()
    } else {
        "give each node on this host its own port offset in `offsets` (or drop the overrides \
         to get KM 0, GW 1, Publisher 2, Store 3)"
            .to_owned()
    }
}

fn https_url(address: &Address, port: u16, path: &str) -> String {
    format!("https://{}:{port}{path}", address.url_host())
}

/// Builds the cross references of collision-free placed nodes.
fn build(inventory: &Inventory, placed: Vec<Placed>) -> Topology {
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
    let links = links(&nodes, &gateway_environments, &database);
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

/// A gateway revokes through itself; every other node through the first gateway.
fn assign_revoke_urls(nodes: &mut [Node]) {
    let revoke = |n: &Node| {
        (
            https_url(&n.address, n.ports.nio_https, "/revoke"),
            n.id.clone(),
        )
    };
    let first_gateway = nodes.iter().find(|n| n.role == Role::Gateway).map(revoke);
    for node in nodes.iter_mut() {
        let (url, gateway) = if node.role == Role::Gateway {
            revoke(node)
        } else {
            first_gateway.clone().unwrap_or_default()
        };
        node.revoke_url = url;
        node.revoke_gateway_node = gateway;
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
    let snapshot: Vec<Node> = nodes.to_vec();
    for node in nodes.iter_mut() {
        let Some(cluster) = clusters.iter().find(|c| c.nodes.contains(&node.id)) else {
            continue;
        };
        let members = snapshot
            .iter()
            .filter(|n| n.id != node.id && cluster.nodes.contains(&n.id))
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
                ssh_port: host.port.unwrap_or(inventory.ssh.port),
                ssh_user: host
                    .user
                    .clone()
                    .unwrap_or_else(|| inventory.ssh.user.clone()),
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

fn links(
    nodes: &[Node],
    environments: &[GatewayEnvironment],
    database: &DatabasePlan,
) -> Vec<Link> {
    let mut links = Vec::new();
    for node in nodes {
        links.extend(key_manager_links(node, nodes));
        links.extend(gateway_links(node, environments));
        if let Some(clustering) = &node.clustering {
            links.extend(clustering.members.iter().map(|member| Link {
                from: node.id.clone(),
                to: member.node.clone(),
                purpose: "Hazelcast cluster membership",
                target: format!("{}:{}", member.host.url_host(), member.port),
            }));
        }
        let used: Vec<&str> = node.datasources.iter().map(|d| d.name).collect();
        links.push(Link {
            from: node.id.clone(),
            to: format!("{}/database", database.host),
            purpose: "JDBC",
            target: format!(
                "{}:{} ({})",
                database.address.url_host(),
                database.port,
                used.join(", ")
            ),
        });
    }
    links
}

/// Gateways validate keys and proxy the OAuth APIs to a Key Manager; Publisher and Store
/// authenticate against it. A Key Manager talks to itself, which is not listed.
fn key_manager_links(node: &Node, nodes: &[Node]) -> Vec<Link> {
    let km = &node.key_manager;
    let to = km
        .key_manager_node
        .clone()
        .unwrap_or_else(|| "key manager load balancer".to_owned());
    let link = |purpose, target: String| Link {
        from: node.id.clone(),
        to: to.clone(),
        purpose,
        target,
    };
    match node.role {
        Role::Gateway => {
            let thrift_km = km
                .key_manager_node
                .as_deref()
                .and_then(|id| nodes.iter().find(|n| n.id == id))
                .filter(|_| km.client_type == KeyValidatorClientType::ThriftClient);
            let validation = match thrift_km {
                Some(km_node) => link(
                    "key validation (Thrift)",
                    format!("{}:{}", km_node.address.url_host(), km.thrift_client_port),
                ),
                None => link("key validation (WSClient)", km.server_url.clone()),
            };
            let oauth = km.server_url.trim_end_matches("/services/").to_owned() + "/oauth2/";
            vec![validation, link("token, authorize and revoke APIs", oauth)]
        }
        Role::Publisher | Role::Store => vec![link(
            "authentication and key management",
            km.server_url.clone(),
        )],
        Role::KeyManager | Role::Database => Vec::new(),
    }
}

/// Key Manager and Publisher call every gateway's admin services; Key Manager, Publisher
/// and Store revoke tokens through a gateway.
fn gateway_links(node: &Node, environments: &[GatewayEnvironment]) -> Vec<Link> {
    let admin_purpose = match node.role {
        Role::KeyManager => Some("clear gateway caches (admin services)"),
        Role::Publisher => Some("publish APIs (admin services)"),
        _ => None,
    };
    let mut links: Vec<Link> = environments
        .iter()
        .filter_map(|env| {
            Some(Link {
                from: node.id.clone(),
                to: env.gateway_node.clone(),
                purpose: admin_purpose?,
                target: env.server_url.clone(),
            })
        })
        .collect();
    if node.role == Role::Gateway {
        return links;
    }
    links.push(Link {
        from: node.id.clone(),
        to: node.revoke_gateway_node.clone(),
        purpose: "revoke tokens (RevokeAPIURL)",
        target: node.revoke_url.clone(),
    });
    links
}

#[cfg(test)]
mod tests;
