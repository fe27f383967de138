//! Placement: which nodes run on which host, their port offsets and Hazelcast member
//! ports, and the port collisions that make a layout impossible.
//!
//! Automatic values are chosen here (smallest free offset in role order, member ports
//! 4000, 4001, ... per host) so that explicit `offsets`/`member_ports` win and everything
//! else fits around them; collisions that remain point back at the inventory value.

use super::*;

/// A node's placement before cross references: where it runs and which ports it opens,
/// plus the inventory spans that explain them (for collision errors).
pub(super) struct Placed {
    pub(super) host_index: usize,
    pub(super) role: Role,
    pub(super) offset: u16,
    pub(super) offset_span: Option<Range<usize>>,
    pub(super) member_port: Option<u16>,
    pub(super) member_span: Option<Range<usize>>,
    pub(super) thrift_server: bool,
}

impl Placed {
    pub(super) fn ports(&self) -> Ports {
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

pub(super) fn client_type(inventory: &Inventory) -> KeyValidatorClientType {
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
pub(super) fn cluster_group(inventory: &Inventory, role: Role) -> Option<&'static str> {
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
pub(super) fn place_nodes(inventory: &Inventory) -> Vec<Placed> {
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
pub(super) fn unused_member_ports(inventory: &Inventory) -> Vec<Problem> {
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
pub(super) fn port_collisions(inventory: &Inventory, placed: &[Placed]) -> Vec<Problem> {
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
