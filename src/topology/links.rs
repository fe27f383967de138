//! "Who talks to whom": the connections the derived configuration makes nodes open,
//! for the `check` report, firewall rules and connectivity checks.

use super::*;

pub(super) fn links(
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

/// Key Manager and Publisher call every gateway's admin services; the nodes with a
/// revoke URL (Key Manager and Store) revoke tokens through a gateway.
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
    if node.revoke_url.is_empty() {
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
