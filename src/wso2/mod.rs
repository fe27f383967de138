//! The WSO2 API Manager 1.9 layer: small typed helpers that turn a validated
//! inventory and its topology into the engine's [`Run`] (targets with their
//! template variables, the verified artifacts, the secrets to mask).
//!
//! The product knowledge itself (which file, which element, which value) is
//! data in `playbooks/wso2am-1.9.toml`; this module only names the variables
//! the playbook reads (documented in docs/playbooks.md).

pub mod artifacts;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::engine::archive::Archive;
use crate::engine::redact::Redactor;
use crate::engine::{Run, Target};
use crate::inventory::Inventory;
use crate::topology::{DatabaseKind, Node, Topology};

pub use artifacts::{ArtifactError, Artifacts};

/// The playbook shipped with apim-deploy, embedded so the binary is self-contained.
pub const PLAYBOOK: &str = include_str!("../../playbooks/wso2am-1.9.toml");

/// The built-in WSO2 API Manager 1.9 playbook.
pub fn builtin_playbook() -> crate::engine::playbook::Playbook {
    crate::engine::playbook::Playbook::parse(PLAYBOOK, "playbooks/wso2am-1.9.toml")
        .expect("built-in playbook is valid")
}

/// Settings of a run that are not in the inventory.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// How long a node may take to become healthy.
    pub start_timeout_secs: u64,
    /// Preflight checks to skip (`--skip-preflight`).
    pub skip_checks: std::collections::BTreeSet<String>,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            start_timeout_secs: 180,
            skip_checks: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("secret {field}: {message}")]
    Secret {
        field: &'static str,
        message: String,
    },
}

/// Builds the engine's run: verifies the artifacts on the controller first
/// (a wrong checksum stops here, before any host is touched).
pub fn prepare(
    inv: &Inventory,
    topo: &Topology,
    settings: &RunSettings,
) -> Result<Run, PrepareError> {
    let artifacts = Artifacts::verify(inv)?;
    let archive = Arc::new(artifacts.open_distribution()?);
    let secrets = resolve_secrets(inv)?;
    Ok(build_run(
        inv,
        topo,
        settings,
        Some((&artifacts, archive)),
        secrets,
    ))
}

/// The run without artifacts or secrets: enough to render what describes a node
/// (its `service` task) for a command that must work before anything is verified
/// (`facts`). A task that reads `dist.*`, `jdbc.*` or `secret.*` fails to render.
pub fn describe(inv: &Inventory, topo: &Topology, settings: &RunSettings) -> Run {
    build_run(inv, topo, settings, None, Map::new())
}

fn build_run(
    inv: &Inventory,
    topo: &Topology,
    settings: &RunSettings,
    artifacts: Option<(&Artifacts, Arc<Archive>)>,
    secrets: Map<String, Value>,
) -> Run {
    let mut redactor = Redactor::new();
    for v in secrets.values() {
        if let Some(s) = v.as_str() {
            redactor.add(s);
        }
    }
    let globals = globals(
        inv,
        topo,
        artifacts.as_ref().map(|(a, z)| (*a, z.as_ref())),
        settings,
        secrets,
    );
    let hosts = topo
        .hosts
        .iter()
        .filter(|h| !h.nodes.is_empty())
        .map(|h| Target {
            host: h.name.to_string(),
            role: None,
            label: h.name.to_string(),
            vars: with(
                &globals,
                "host",
                json!({ "name": h.name.to_string(), "address": h.address.to_string() }),
            ),
        })
        .collect();
    let db = &topo.database;
    let database = Target {
        host: db.host.to_string(),
        role: Some("database".into()),
        label: db.host.to_string(),
        vars: globals.clone(),
    };
    let nodes = topo
        .nodes
        .iter()
        .map(|n| Target {
            host: n.host.to_string(),
            role: Some(n.role.key().to_string()),
            label: n.id.clone(),
            vars: with(&globals, "node", node_vars(n)),
        })
        .collect();
    Run {
        hosts,
        database: Some(database),
        nodes,
        globals,
        archive: artifacts.map(|(_, archive)| archive),
        redactor,
        skip_checks: settings.skip_checks.clone(),
    }
}

fn with(globals: &Value, key: &str, value: Value) -> Value {
    let mut v = globals.clone();
    if let Value::Object(m) = &mut v {
        m.insert(key.to_string(), value);
    }
    v
}

fn resolve_secrets(inv: &Inventory) -> Result<Map<String, Value>, PrepareError> {
    let mut m = Map::new();
    for (field, r) in [
        ("db_admin_password", &inv.database.admin_password),
        ("db_app_password", &inv.database.app_password),
        ("admin_password", &inv.admin.password),
    ] {
        let s = r.get_ref().resolve().map_err(|e| PrepareError::Secret {
            field,
            message: e.to_string(),
        })?;
        m.insert(field.to_string(), Value::String(s.expose().to_string()));
    }
    Ok(m)
}

fn globals(
    inv: &Inventory,
    topo: &Topology,
    artifacts: Option<(&Artifacts, &Archive)>,
    settings: &RunSettings,
    secrets: Map<String, Value>,
) -> Value {
    let db = &topo.database;
    let name = |k: DatabaseKind| {
        db.databases
            .iter()
            .find(|d| d.kind == k)
            .map(|d| (d.name.to_string(), d.hostname.to_string()))
            .unwrap_or_default()
    };
    let (apimgt, apimgt_host) = name(DatabaseKind::Apimgt);
    let (user, user_host) = name(DatabaseKind::User);
    let (reg, reg_host) = name(DatabaseKind::Reg);
    let grants = |k: DatabaseKind| -> Vec<String> {
        db.databases
            .iter()
            .filter(|d| d.kind == k)
            .flat_map(|d| d.grant_hosts.iter().map(|g| g.to_string()))
            .collect()
    };
    let mut globals = json!({
        "install": {
            "root": topo.install_root,
            "service_user": topo.service_user.to_string(),
            // Empty: the engine finds a supported JDK on each host.
            "java_home": inv.install.java_home.as_ref().map(|j| j.to_string()).unwrap_or_default(),
            "start_timeout_secs": settings.start_timeout_secs,
        },
        "db": {
            "address": db.address.to_string(),
            "port": db.port,
            "admin_user": db.admin_user.to_string(),
            "app_user": db.app_user.to_string(),
            "charset": db.charset.to_string(),
            "grant_hosts": {
                "apimgt": grants(DatabaseKind::Apimgt),
                "user": grants(DatabaseKind::User),
                "reg": grants(DatabaseKind::Reg),
            },
            "names": { "apimgt": apimgt, "user": user, "reg": reg },
            "hostnames": { "apimgt": apimgt_host, "user": user_host, "reg": reg_host },
        },
        "admin": { "username": topo.admin_username.to_string() },
        "options": { "multi_tenancy": topo.multi_tenancy, "jwt": topo.jwt },
        "gateway_environments": topo.gateway_environments,
        "secret": secrets,
        "java": false,
    });
    if let Some((artifacts, archive)) = artifacts {
        globals["dist"] = json!({
            "local_path": artifacts.distribution.display().to_string(),
            "sha256": artifacts.distribution_sha256,
            "remote_path": format!("{}/.apim-deploy/dist/{}", topo.install_root.trim_end_matches('/'), artifacts.distribution_file_name()),
            "top": archive.top(),
            "host_url": artifacts.distribution_host_url.clone().unwrap_or_default(),
        });
        // The JDK of `[java]`, installed once per host beside the others (its directory
        // is named by its checksum, so a new archive never replaces a JDK in use).
        if let Some(j) = &artifacts.java {
            let root = topo.install_root.trim_end_matches('/');
            let home = format!("{root}/java/{}-{}", &j.sha256[..12], j.vetted.top);
            globals["java"] = json!({
                "local_path": j.path.display().to_string(),
                "sha256": j.sha256,
                "remote_path": format!("{root}/.apim-deploy/java/{}", j.file_name()),
                "top": j.vetted.top,
                "format": j.vetted.format.as_str(),
                "unpacked_size": j.vetted.unpacked_size,
                "home": home,
                "host_url": j.host_url.clone().unwrap_or_default(),
            });
            globals["install"]["java_home"] = json!(home);
        }
        globals["jdbc"] = json!({
            "local_path": artifacts.jdbc.display().to_string(),
            "sha256": artifacts.jdbc_sha256,
            "file_name": artifacts.jdbc_file_name(),
            "host_url": artifacts.jdbc_host_url.clone().unwrap_or_default(),
        });
    }
    globals
}

/// A node's variables, exactly as the playbook sees them (and `check --json` shows
/// them): the topology's node, plus a few derived conveniences.
pub fn node_vars(n: &Node) -> Value {
    let mut v = serde_json::to_value(n).expect("nodes serialize");
    v["ports"]["all"] = json!(n.ports.all().iter().map(|(_, p)| p).collect::<Vec<_>>());
    let ds: Map<String, Value> = n
        .datasources
        .iter()
        .map(|d| {
            let plain = d.url.split('?').next().unwrap_or(&d.url).to_string();
            (
                serde_json::to_value(d.kind)
                    .ok()
                    .and_then(|k| k.as_str().map(str::to_string))
                    .unwrap_or_default(),
                json!({ "name": d.name, "jndi_name": d.jndi_name, "url": d.url, "url_plain": plain, "username": d.username.to_string() }),
            )
        })
        .collect();
    let cluster = n.clustering.as_ref().map(|c| {
        let members: String = c
            .members
            .iter()
            .map(|m| {
                format!(
                    "<member>\n    <hostName>{}</hostName>\n    <port>{}</port>\n</member>\n",
                    m.host, m.port
                )
            })
            .collect();
        json!({
            "domain": c.domain,
            "member_host": c.local_member_host.to_string(),
            "member_port": c.local_member_port,
            "members_xml": members,
        })
    });
    if let Value::Object(m) = &mut v {
        m.insert("conf".into(), json!(format!("{}/repository/conf", n.dir)));
        m.insert("ds".into(), Value::Object(ds));
        m.insert("cluster".into(), cluster.unwrap_or(Value::Bool(false)));
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_playbook_is_valid() {
        let p = super::builtin_playbook();
        assert_eq!(
            p.role_order().unwrap(),
            ["database", "keymanager", "gateway", "publisher", "store"]
        );
    }
}
