//! The operations behind `plan` and `apply` (cargo's `ops`): load, verify,
//! connect, probe, plan, then show or execute. Commands in `cli` only parse
//! arguments and print.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::connect::{self, Hosts};
use crate::engine::Run;
use crate::engine::execute::{self, ExecOptions, Outcome};
use crate::engine::limit::Limit;
use crate::engine::plan::{self, Plan};
use crate::engine::playbook::Playbook;
use crate::engine::report::{Event, Reporter};
use crate::engine::traced::Traced;
use crate::inventory::{Inventory, Secrets};
use crate::topology::Topology;
use crate::wso2::{self, RunSettings};

/// Options shared by `plan` and `apply`.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    pub inventory: PathBuf,
    /// A playbook file instead of the built-in one.
    pub playbook: Option<PathBuf>,
    pub settings: RunSettings,
    /// The part of the cluster to act on (`--limit`).
    pub limit: Limit,
    pub exec: ExecOptions,
}

/// Everything a planned run holds on to.
pub struct Prepared {
    pub playbook: Playbook,
    pub run: Run,
    pub hosts: Hosts,
    pub plan: Plan,
}

/// Load, verify, connect, probe and plan. Changes nothing anywhere.
pub async fn prepare(opts: &DeployOptions) -> anyhow::Result<Prepared> {
    let Loaded {
        playbook,
        inventory,
        topology,
        mut run,
    } = load(&opts.inventory, opts.playbook.as_ref(), &opts.settings)?;
    topology
        .check_limit(&opts.limit)
        .map_err(anyhow::Error::msg)?;
    run.limit(&opts.limit);
    let wanted = run.host_names();
    if wanted.is_empty() {
        anyhow::bail!("--limit {} matches no host, role or node", opts.limit);
    }
    let targets = connect::targets(&inventory, &topology)?
        .into_iter()
        .filter(|t| wanted.contains(&t.name))
        .collect();
    let started = std::time::Instant::now();
    let hosts: Hosts = connect::connect_all(targets)
        .await?
        .into_iter()
        .map(|(name, host)| (name, Traced::wrap(host, &run.redactor)))
        .collect();
    tracing::info!(
        "connected to {} host(s) in {}ms",
        hosts.len(),
        started.elapsed().as_millis()
    );
    let started = std::time::Instant::now();
    let plan = plan::make_plan(&playbook, &run, &hosts).await?;
    tracing::info!(
        "probed and planned {} step(s) in {}ms",
        plan.steps.len(),
        started.elapsed().as_millis()
    );
    Ok(Prepared {
        playbook,
        run,
        hosts,
        plan,
    })
}

/// What every command that acts on a deployment starts from.
pub struct Loaded {
    pub playbook: Playbook,
    pub inventory: Inventory,
    pub topology: Topology,
    pub run: Run,
}

/// Loads the playbook, the inventory with its secrets and topology, and the run
/// (verifying the artifacts), so every command sees the same variables.
pub fn load(
    inventory: &Path,
    playbook: Option<&PathBuf>,
    settings: &RunSettings,
) -> anyhow::Result<Loaded> {
    let playbook = match playbook {
        Some(p) => Playbook::load(p)?,
        None => wso2::builtin_playbook(),
    };
    let (inventory, topology) =
        Topology::load(inventory, Secrets::Resolve).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = wso2::prepare(&inventory, &topology, settings)?;
    Ok(Loaded {
        playbook,
        inventory,
        topology,
        run,
    })
}

/// Executes a prepared plan and reports the outcome; `started` is when the run
/// began (before connecting), so the recap's time is the operator's wall time.
pub async fn apply(
    p: &Prepared,
    reporter: Arc<dyn Reporter>,
    opts: &DeployOptions,
    started: std::time::Instant,
) -> Outcome {
    reporter.event(&Event::RunStart {
        schema: "apim-deploy.events/1".into(),
        command: "apply".into(),
        hosts: p.hosts.len(),
        nodes: p.run.nodes.len(),
    });
    let outcome = execute::execute(
        &p.playbook,
        &p.plan,
        &p.hosts,
        reporter.clone(),
        &p.run.redactor,
        &opts.exec,
    )
    .await;
    reporter.event(&Event::Recap {
        hosts: outcome.hosts.clone(),
        ok: outcome.ok,
        duration_ms: started.elapsed().as_millis() as u64,
    });
    for t in p.hosts.values() {
        t.close().await;
    }
    outcome
}
