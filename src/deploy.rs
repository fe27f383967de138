//! The operations behind `plan` and `apply` (cargo's `ops`): load, verify,
//! connect, probe, plan, then show or execute. Commands in `cli` only parse
//! arguments and print.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::connect::{self, Hosts};
use crate::engine::Run;
use crate::engine::execute::{self, ExecOptions, Outcome};
use crate::engine::guarded;
use crate::engine::limit::Limit;
use crate::engine::lock::{self, Holder, RunLock};
use crate::engine::plan::{self, Plan};
use crate::engine::playbook::Playbook;
use crate::engine::report::{Event, Reporter};
use crate::engine::saved::SavedPlan;
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
    /// Take the run lock (a run that changes things) or only look at it (`None`).
    pub lock: Option<LockRequest>,
    /// A saved plan the fresh plan must equal (`apply --plan`), else nothing runs.
    pub saved: Option<SavedPlan>,
}

/// How a run that changes things takes the run lock.
#[derive(Debug, Clone, Default)]
pub struct LockRequest {
    /// What the lock file says the holder runs (`apim-deploy apply ...`).
    pub command: String,
    /// How long to wait for another run's lock (zero: stop at once).
    pub wait: std::time::Duration,
}

/// The directory of the run lock on every host: under the install root, so
/// every run against one cluster meets the same file whatever its inventory.
pub fn lock_dir(topology: &Topology) -> String {
    format!(
        "{}/.apim-deploy",
        topology.install_root.trim_end_matches('/')
    )
}

/// The command line of this process, as the lock file records it.
pub fn this_command() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Takes the run lock on every host, or says who holds it; nothing has been
/// changed anywhere when this fails.
pub async fn take_lock(
    hosts: &std::collections::HashMap<String, Arc<dyn apim_transport::Transport>>,
    topology: &Topology,
    request: &LockRequest,
) -> anyhow::Result<RunLock> {
    let sorted = hosts.iter().map(|(h, t)| (h.clone(), t.clone())).collect();
    let me = Holder::this_process(request.command.clone());
    Ok(lock::acquire(&sorted, &lock_dir(topology), &me, request.wait).await?)
}

/// The hosts where another run holds the lock now (read without taking it).
pub async fn runs_in_progress(
    hosts: &std::collections::HashMap<String, Arc<dyn apim_transport::Transport>>,
    topology: &Topology,
) -> std::collections::BTreeMap<String, Holder> {
    let sorted = hosts.iter().map(|(h, t)| (h.clone(), t.clone())).collect();
    lock::inspect_all(&sorted, &lock_dir(topology)).await
}

/// Everything a planned run holds on to.
pub struct Prepared {
    pub playbook: Playbook,
    pub run: Run,
    pub hosts: Hosts,
    pub plan: Plan,
    /// The run lock, held until [`apply`] ends (`apply` only).
    pub lock: Option<RunLock>,
    /// Other runs holding the lock on some host while this one planned.
    pub in_progress: std::collections::BTreeMap<String, Holder>,
    /// What the plan was made from, as a saved plan records it.
    pub inputs: std::collections::BTreeMap<String, String>,
}

/// What a saved plan is made from, by name: the inventory and playbook files, the
/// distribution, the flags that shape a plan, and the version of this program (a
/// newer one may decide differently). The files hold no secret (secrets are
/// references in the inventory), so plain digests of them give nothing away.
pub fn plan_inputs(
    opts: &DeployOptions,
    inventory: &Inventory,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    use sha2::{Digest, Sha256};
    let digest = |bytes: &[u8]| hex::encode(Sha256::digest(bytes));
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
    };
    let playbook = match &opts.playbook {
        Some(p) => digest(&read(p)?),
        None => digest(wso2::PLAYBOOK.as_bytes()),
    };
    let skipped: Vec<&str> = opts
        .settings
        .skip_checks
        .iter()
        .map(String::as_str)
        .collect();
    Ok([
        ("apim-deploy version", env!("CARGO_PKG_VERSION").to_string()),
        ("inventory", digest(&read(&opts.inventory)?)),
        ("playbook", playbook),
        (
            "distribution",
            inventory.distribution.sha256.as_str().to_string(),
        ),
        (
            "--limit",
            match opts.limit.is_all() {
                true => "all".to_string(),
                false => opts.limit.to_string(),
            },
        ),
        (
            "--skip-preflight",
            match skipped.is_empty() {
                true => "none".to_string(),
                false => skipped.join(","),
            },
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect())
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
    let inputs = plan_inputs(opts, &inventory)?;
    // A plan for other inputs is refused before any host is contacted.
    if let Some(saved) = &opts.saved {
        saved.check_inputs(&inputs, &run.redactor)?;
    }
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
    // The lock comes before the plan: the plan must see what the previous run left.
    let started = std::time::Instant::now();
    let (lock, in_progress) = match &opts.lock {
        Some(request) => {
            let lock = take_lock(&hosts, &topology, request).await?;
            tracing::info!(
                "locked {} host(s) in {}ms",
                hosts.len(),
                started.elapsed().as_millis()
            );
            (Some(lock), Default::default())
        }
        None => (None, runs_in_progress(&hosts, &topology).await),
    };
    let started = std::time::Instant::now();
    // With the lock held, nothing else changes the hosts between this check and
    // the changes; a saved plan that no longer matches what is there stops here.
    let planned = plan::make_plan(&playbook, &run, &hosts)
        .await
        .map_err(anyhow::Error::from)
        .and_then(|plan| match &opts.saved {
            Some(saved) => {
                saved.check_plan(&plan, &run.redactor)?;
                Ok(plan)
            }
            None => Ok(plan),
        });
    let plan = match planned {
        Ok(plan) => plan,
        Err(e) => {
            if let Some(l) = lock {
                l.release().await;
            }
            return Err(e);
        }
    };
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
        lock,
        in_progress,
        inputs,
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
    p: &mut Prepared,
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
    // A saved plan's run checks each file right before it replaces it, too.
    let hosts = match &opts.saved {
        Some(_) => guarded::guard_all(&p.hosts, &p.plan),
        None => p.hosts.clone(),
    };
    let outcome = execute::execute(
        &p.playbook,
        &p.plan,
        &hosts,
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
    if let Some(l) = p.lock.take() {
        let releasing = std::time::Instant::now();
        l.release().await;
        tracing::info!("released the lock in {}ms", releasing.elapsed().as_millis());
    }
    for t in p.hosts.values() {
        t.close().await;
    }
    outcome
}

/// What `unlock` found on one host.
#[derive(Debug)]
pub enum Unlocked {
    /// No live process held the lock.
    Free,
    /// The holder had not heard from its run for too long; it was ended.
    Broken(Holder),
    /// A live run holds it; left alone.
    Live(String),
    Unreachable(String),
}

/// Breaks the run lock where it is stale (its run no longer heard from) on every
/// host of the inventory, after reading whose it is; a live run's lock is kept.
pub async fn unlock(
    inventory: &Path,
) -> anyhow::Result<std::collections::BTreeMap<String, Unlocked>> {
    let (inventory, topology) =
        Topology::load(inventory, Secrets::Skip).map_err(|e| anyhow::anyhow!("{e}"))?;
    let conns = connect::connect_each(connect::targets(&inventory, &topology)?).await;
    let dir = lock_dir(&topology);
    let mut out = std::collections::BTreeMap::new();
    for (host, conn) in &conns {
        let found = match conn {
            Err(e) => Unlocked::Unreachable(e.clone()),
            Ok(t) => match lock::break_stale(t.as_ref(), &dir).await {
                Ok(None) => Unlocked::Free,
                Ok(Some(holder)) => Unlocked::Broken(holder),
                Err(e) => Unlocked::Live(e),
            },
        };
        out.insert(host.clone(), found);
    }
    for t in conns.values().flatten() {
        t.close().await;
    }
    Ok(out)
}
