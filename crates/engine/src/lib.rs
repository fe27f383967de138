//! The generic playbook engine. It names no product: it takes a
//! [`playbook::Playbook`] and a [`Run`] (the targets with their template
//! variables), and turns them into a [`plan::Plan`] and then into changes.
//!
//! Stages (pyinfra's, Terraform's): **connect** to every host; **probe** each
//! host once ([`probe`]); **plan** by walking every task against the probed and
//! planned state ([`state`], [`modules`]); then either **show** the plan or
//! **execute** it ([`execute`]), phase by phase, with service starts ordered by
//! the role graph and gated on health. Output goes through [`report`].

pub mod archive;
pub mod execute;
pub mod guarded;
pub mod limit;
pub mod lock;
pub mod modules;
pub mod plan;
pub mod playbook;
pub mod preflight;
pub mod probe;
pub mod redact;
pub mod report;
pub mod saved;
pub mod schedule;
pub mod shell;
pub mod state;
pub mod template;
pub mod traced;

use std::sync::Arc;

use serde_json::Value;

/// One place a task can run: the controller, a host, the database host, or a
/// node (a role on a host).
#[derive(Debug, Clone)]
pub struct Target {
    /// The host's name (the key of its transport); empty for the controller.
    pub host: String,
    /// The node's role, for node targets.
    pub role: Option<String>,
    /// How the target is shown: `app1` or `app1/web`.
    pub label: String,
    /// The template variables for tasks on this target.
    pub vars: Value,
}

/// Everything the engine needs for one run, built by the product layer.
#[derive(Clone)]
pub struct Run {
    pub hosts: Vec<Target>,
    /// The database host's target; `None` when `--limit` leaves it out.
    pub database: Option<Target>,
    pub nodes: Vec<Target>,
    /// Variables for controller tasks (and the base of every target's).
    pub globals: Value,
    /// The verified distribution archive on the controller.
    pub archive: Option<Arc<archive::Archive>>,
    /// Every secret value, for masking.
    pub redactor: redact::Redactor,
    /// Preflight checks the operator chose to skip (`preflight::CHECKS`).
    pub skip_checks: std::collections::BTreeSet<String>,
}

impl Run {
    /// Keeps only the targets `--limit` picks: the nodes and the database it picks,
    /// and the hosts that carry a picked node.
    pub fn limit(&mut self, limit: &limit::Limit) {
        let picked = |t: &Target| limit.matches(&t.host, t.role.as_deref());
        self.nodes.retain(picked);
        let node_hosts: Vec<String> = self.nodes.iter().map(|t| t.host.clone()).collect();
        self.hosts.retain(|t| node_hosts.contains(&t.host));
        if self.database.as_ref().is_some_and(|db| !picked(db)) {
            self.database = None;
        }
    }

    /// The hosts any target of this run lives on.
    pub fn host_names(&self) -> std::collections::BTreeSet<String> {
        self.hosts
            .iter()
            .chain(&self.nodes)
            .chain(&self.database)
            .map(|t| t.host.clone())
            .collect()
    }
}
