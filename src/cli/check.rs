//! `apim-deploy check INVENTORY`: validate an inventory and print the derived topology.
//!
//! Runs every check that needs no network: the file (syntax, keys, values, roles), the
//! secret references (resolved once, values discarded) and the topology (port
//! collisions). Problems of all three are reported together. On success it prints the
//! nodes with their directories, offsets and ports, then who talks to whom; `--json`
//! prints the [`Topology`] instead. The topology holds no secrets, so neither output can.
//! Secrets that are a WSO2 or MySQL default, or shorter than 8 characters, are warnings
//! (stderr, and `warnings` in `--json`), named by their inventory key, never by value.
//! Exit status: 0 valid (warnings or not), 1 invalid.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::shell::Shell;
use crate::inventory::{InventoryError, Secrets};
use crate::topology::Topology;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    /// Print the topology as JSON instead of tables (schema apim-deploy.check/1: docs/json.md).
    #[arg(long)]
    pub json: bool,
    /// Do not resolve secret references (for checking a layout without the secrets at hand).
    #[arg(long)]
    pub skip_secrets: bool,
    /// Do not read the artifacts and key files (their existence, readability and
    /// sha256): for checking a layout on a machine that does not hold them.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub limit: super::LimitArg,
}

/// The command; a shell from [`Shell::capture`] lets a test read what it wrote.
pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<ExitCode> {
    let limit = match args.limit.parse() {
        Ok(limit) => limit,
        Err(e) => {
            shell.error(e);
            return Ok(ExitCode::from(1));
        }
    };
    let selected = validate(&args).map(|t| (t.check_limit(&limit), t));
    let selected = match selected {
        Ok((Err(e), _)) => {
            shell.error(e);
            return Ok(ExitCode::from(1));
        }
        Ok((Ok(()), topology)) => Ok(only(topology, &limit)),
        Err(e) => Err(e),
    };
    if selected.is_ok() && !args.offline {
        let problems = local_files(&args.inventory);
        if !problems.is_empty() {
            for p in problems {
                shell.error(p);
            }
            return Ok(ExitCode::from(1));
        }
    }
    let warnings = match &selected {
        Ok(_) if !args.skip_secrets => weak_secrets(&args.inventory),
        _ => Vec::new(),
    };
    match selected {
        Ok(topology) if shell.is_json() => {
            // Each node as the playbook's templates see it (`node.*`), so what `check`
            // shows is what `apply` writes.
            let mut doc = serde_json::to_value(&topology)?;
            doc["nodes"] = topology.nodes.iter().map(crate::wso2::node_vars).collect();
            doc["schema"] = CHECK_SCHEMA.into();
            doc["warnings"] = warnings.clone().into();
            shell.print_json(&doc)?;
            warnings.iter().for_each(|w| shell.warn(w));
        }
        Ok(topology) => {
            shell.print(&report(&topology))?;
            warnings.iter().for_each(|w| shell.warn(w));
        }
        Err(error) => {
            shell.print_err(&error.render(shell.err_color()));
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The name and version of `check --json`'s document (docs/json.md): a reader can
/// tell what it holds, and a change that breaks readers bumps the number.
pub const CHECK_SCHEMA: &str = "apim-deploy.check/1";

/// The controller's files the inventory names: artifacts (existing, with their
/// pinned sha256) and the SSH key (readable). `apply` would fail on each later,
/// after connecting; `check` says so first.
fn local_files(inventory: &std::path::Path) -> Vec<String> {
    let Ok((inv, _)) = Topology::load(inventory, Secrets::Skip) else {
        return Vec::new();
    };
    let mut problems: Vec<String> = crate::wso2::artifacts::check_local(&inv)
        .iter()
        .map(|e| {
            e.to_string()
                .replace("; nothing was changed on any host", "")
        })
        .collect();
    if let Some(key) = &inv.ssh.identity_file {
        let path = if key.is_absolute() {
            key.clone()
        } else {
            inv.base_dir.join(key)
        };
        if let Err(e) = std::fs::File::open(&path) {
            problems.push(format!("ssh.identity_file {}: {e}", path.display()));
        }
    }
    problems
}

/// Secrets that resolve to a default or a short value: warnings, as a deployment with
/// them works (the lab's own may be short), but anyone who guesses them gets in.
fn weak_secrets(inventory: &std::path::Path) -> Vec<String> {
    match crate::inventory::Inventory::load_with(inventory, Secrets::Skip) {
        Ok(inv) => inv.weak_secret_warnings(),
        Err(_) => Vec::new(),
    }
}

/// The topology narrowed to what `--limit` picks (all of it when the limit is empty).
fn only(mut topology: Topology, limit: &crate::engine::limit::Limit) -> Topology {
    if limit.is_all() {
        return topology;
    }
    let hosts: Vec<String> = topology
        .hosts_selected_by(limit)
        .iter()
        .map(|h| h.name.to_string())
        .collect();
    topology.nodes.retain(|n| n.selected_by(limit));
    let nodes: Vec<String> = topology.nodes.iter().map(|n| n.id.clone()).collect();
    topology
        .hosts
        .retain(|h| hosts.contains(&h.name.to_string()));
    topology
        .links
        .retain(|l| nodes.contains(&l.from) || nodes.contains(&l.to));
    topology
}

/// Loads the inventory and derives the topology, with every problem found.
pub fn validate(args: &Args) -> Result<Topology, InventoryError> {
    let secrets = if args.skip_secrets {
        Secrets::Skip
    } else {
        Secrets::Resolve
    };
    Topology::load(&args.inventory, secrets).map(|(_, topology)| topology)
}

/// The human-readable report: nodes, shared settings, then who talks to whom.
pub fn report(topology: &Topology) -> String {
    let mut out = String::new();
    out.push_str("Nodes\n");
    let mut rows = vec![row([
        "NODE",
        "ADDRESS",
        "DIR",
        "OFFSET",
        "HTTPS",
        "HTTP",
        "NIO HTTP",
        "NIO HTTPS",
        "JMX",
        "THRIFT",
        "HAZELCAST",
    ])];
    for node in &topology.nodes {
        let p = &node.ports;
        let offset = format!(
            "{}{}",
            node.offset,
            if node.offset_from_inventory {
                " (set)"
            } else {
                ""
            }
        );
        rows.push(vec![
            node.id.clone(),
            node.address.to_string(),
            node.dir.clone(),
            offset,
            p.https.to_string(),
            p.http.to_string(),
            p.nio_http.to_string(),
            p.nio_https.to_string(),
            format!("{}/{}", p.jmx_rmi_registry, p.jmx_rmi_server),
            p.thrift_server.map_or("-".to_owned(), |t| t.to_string()),
            p.hazelcast.map_or("-".to_owned(), |h| h.to_string()),
        ]);
    }
    out.push_str(&super::table::aligned(&rows, "  "));

    let db = &topology.database;
    out.push_str(&format!(
        "\nDatabase {} ({}:{}), charset {}, app user {}\n",
        db.host,
        db.address.url_host(),
        db.port,
        db.charset,
        db.app_user
    ));
    let mut rows = vec![row(["DATABASE", "HOST NAME", "USED BY", "GRANT HOSTS"])];
    for spec in &db.databases {
        rows.push(vec![
            spec.name.to_string(),
            spec.hostname.to_string(),
            spec.used_by.join(", "),
            spec.grant_hosts
                .iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    out.push_str(&super::table::aligned(&rows, "  "));

    let kv = &topology.key_validation;
    out.push_str(&format!("\nKey validation: {:?}", kv.client_type));
    if let Some(url) = &kv.load_balancer_url {
        out.push_str(&format!(" through the load balancer {url}"));
    }
    out.push('\n');
    out.push_str("Gateway environments:\n");
    for env in &topology.gateway_environments {
        out.push_str(&format!(
            "  {}: {} endpoints {}\n",
            env.name, env.server_url, env.endpoint
        ));
    }
    if !topology.clusters.is_empty() {
        out.push_str("Clusters:\n");
        for cluster in &topology.clusters {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                cluster.domain,
                cluster.purpose,
                cluster.nodes.join(", ")
            ));
        }
    }

    out.push_str("\nWho talks to whom\n");
    let mut rows = vec![row(["FROM", "TO", "PURPOSE", "TARGET"])];
    for link in &topology.links {
        rows.push(vec![
            link.from.clone(),
            link.to.clone(),
            link.purpose.to_owned(),
            link.target.clone(),
        ]);
    }
    out.push_str(&super::table::aligned(&rows, "  "));
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}
