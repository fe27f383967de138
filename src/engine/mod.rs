//! The generic playbook engine. It knows nothing of WSO2: it takes a
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
pub mod modules;
pub mod plan;
pub mod playbook;
pub mod probe;
pub mod redact;
pub mod report;
pub mod state;
pub mod template;

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
    /// How the target is shown: `app1` or `app1/gateway`.
    pub label: String,
    /// The template variables for tasks on this target.
    pub vars: Value,
}

/// Everything the engine needs for one run, built by the product layer.
#[derive(Clone)]
pub struct Run {
    pub hosts: Vec<Target>,
    pub database: Target,
    pub nodes: Vec<Target>,
    /// Variables for controller tasks (and the base of every target's).
    pub globals: Value,
    /// The verified distribution archive on the controller.
    pub archive: Option<Arc<archive::Archive>>,
    /// Every secret value, for masking.
    pub redactor: redact::Redactor,
}
