//! The topology: every per-node fact derived once from a validated inventory, so no two
//! places compute a node's port or URL and disagree.
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

use crate::engine::limit::Limit;

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
    /// `APIKeyValidator/RevokeAPIURL`: the first gateway's `https://<gw>:<8243+o>/revoke`
    /// on the Key Manager and the Store (the Store also derives the token URL from it,
    /// `revoke` -> `token`); empty on the roles that do not read it.
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

    /// Whether a node of `role` needs this database (multi-tenancy adds the registry to
    /// gateways and key managers, as the WSO2 guide says; the user store is every node's).
    pub fn needed_by(self, role: Role, multi_tenancy: bool) -> bool {
        match self {
            DatabaseKind::Apimgt => role.is_wso2(),
            // Every node, the Gateway too: the admin account then lives in one store, so
            // a rotated admin password is one update (a Gateway's local H2 store would
            // keep the old one, and the Publisher logs in to the Gateway with it).
            DatabaseKind::User => role.is_wso2(),
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
        let placed = place::place_nodes(inventory);
        let mut problems = place::unused_member_ports(inventory);
        problems.extend(place::port_collisions(inventory, &placed));
        if !problems.is_empty() {
            return Err(inventory.error(problems));
        }
        Ok(derive::build(inventory, placed))
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

    /// Checks that every `--limit` pattern picks a host, a role or a node (`host/role`)
    /// of this topology; the error lists what exists.
    pub fn check_limit(&self, limit: &Limit) -> Result<(), String> {
        limit.check(
            self.hosts
                .iter()
                .map(|h| (h.name.as_str(), h.roles.iter().map(|r| r.key()))),
        )
    }

    /// The hosts `--limit` picks: those with a picked node or database (a named host
    /// picks all of its own). An empty limit picks all.
    pub fn hosts_selected_by(&self, limit: &Limit) -> Vec<&HostPlan> {
        self.hosts
            .iter()
            .filter(|h| limit.matches_host(h.name.as_str(), h.roles.iter().map(|r| r.key())))
            .collect()
    }
}

impl Node {
    /// Whether `--limit` picks this node; an empty limit picks every node.
    pub fn selected_by(&self, limit: &Limit) -> bool {
        limit.matches(self.host.as_str(), Some(self.role.key()))
    }
}

mod derive;
mod links;
mod place;

#[cfg(test)]
pub(crate) mod tests;
