//! Operating a deployed cluster: `restart` (rolling, health-gated) and `status`
//! (what runs, is it healthy, does it match the inventory).
//!
//! Both reuse the deployment's own pieces rather than a second description of
//! a node: the topology names nodes and ports, the playbook's `service` task
//! (rendered for each node) gives the directory, account and health port, and
//! the planner (read-only) tells what drifted. This module holds what the two
//! share: loading, per-host connections, and each node's service parameters.

pub mod events;
pub mod restart;
pub mod status;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use apim_transport::Transport;

use crate::connect;
use crate::engine::Run;
use crate::engine::modules::{self, service};
use crate::engine::plan;
use crate::engine::playbook::{Playbook, Scope};
use crate::engine::template::Renderer;

pub use crate::deploy::{Loaded, load};

/// One connection per named host, opened concurrently; a host that cannot be
/// reached is an `Err` with the reason, the others are still usable.
pub async fn connect_each(
    loaded: &Loaded,
    only: Option<&[String]>,
) -> anyhow::Result<BTreeMap<String, Result<Arc<dyn Transport>, String>>> {
    let targets = connect::targets(&loaded.inventory, &loaded.topology)?
        .into_iter()
        .filter(|t| only.is_none_or(|o| o.contains(&t.name)))
        .collect();
    Ok(connect::connect_each(targets).await)
}

/// The playbook's `service` task rendered for every node it applies to (through
/// the planner's own render path), keyed by node label (`app2/gateway`). Errors
/// name the node and the task.
pub fn service_params(
    pb: &Playbook,
    run: &Run,
) -> anyhow::Result<BTreeMap<String, service::Params>> {
    let renderer = Renderer::new();
    let task = pb
        .phases
        .iter()
        .filter(|p| p.scope == Scope::Node)
        .flat_map(|p| p.tasks.iter())
        .find(|t| t.module.is_service())
        .with_context(|| {
            format!(
                "playbook `{}` has no `service` task in a node phase",
                pb.name
            )
        })?;
    let mut out = BTreeMap::new();
    for node in &run.nodes {
        for rendered in plan::render_task(&renderer, task, node, &run.redactor)? {
            let params: service::Params = modules::params(task.module, &rendered.params)
                .map_err(|e| anyhow::anyhow!("{}: task `{}`: {e}", node.label, rendered.name))?;
            out.insert(node.label.clone(), params);
        }
    }
    Ok(out)
}

/// Closes every open connection (politely ends the SSH sessions).
pub async fn close_all(hosts: &BTreeMap<String, Result<Arc<dyn Transport>, String>>) {
    for t in hosts.values().flatten() {
        t.close().await;
    }
}
