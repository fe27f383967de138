//! `restart`: a rolling, health-gated restart of the cluster's nodes.
//!
//! Roles go in the playbook's dependency order. Within a role, nodes go in
//! batches; each node of a batch is stopped, started and confirmed healthy
//! (the `service` module's own script: the playbook's ready line logged after
//! this start and the health port accepting) before the next batch starts.
//! No fixed sleeps: the only waits are each node's own health polling.
//!
//! Availability budget (docs/operations.md, "restart"): `--max-unavailable N`
//! is one number for the whole run: at no instant are more than N selected
//! nodes down, counting the batch being restarted, nodes that failed to come
//! back earlier in this run, and nodes found stopped and not started yet. A
//! batch is shrunk to the room left; with no room the roll stops. Without it,
//! the first node that does not come back stops the roll at once, names the
//! node, shows its log tail and touches nothing more, so never more nodes are
//! down than one batch.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_transport::{Cmd, Transport};

use super::events::{OpEvent, OpReporter};
use crate::engine::limit::Limit;
use crate::engine::modules::service::{self, ServiceAction};
use crate::engine::modules::unpack;
use crate::engine::plan;
use crate::engine::probe::Fact;
use crate::engine::redact::Redactor;
use crate::engine::report::HostRecap;
use crate::engine::state::HostState;
use crate::topology::Topology;
use crate::wso2::RunSettings;

/// How many nodes of a role go at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Count(usize),
    /// A share of the role's selected nodes, rounded down, at least 1.
    Percent(u8),
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Count(1)
    }
}

impl std::str::FromStr for Batch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid batch `{s}`: give a node count (1, 2, ...) or a percentage (1% to 100%)"
            )
        };
        match s.strip_suffix('%') {
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=100).contains(&n) => Ok(Batch::Percent(n)),
                _ => Err(bad()),
            },
            None => match s.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(Batch::Count(n)),
                _ => Err(bad()),
            },
        }
    }
}

impl std::fmt::Display for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Batch::Count(n) => write!(f, "{n}"),
            Batch::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl Batch {
    /// The batch size for a role of `nodes` selected nodes.
    pub fn size(self, nodes: usize) -> usize {
        match self {
            Batch::Count(n) => n.min(nodes).max(1),
            Batch::Percent(p) => (nodes * p as usize / 100).max(1),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RestartOptions {
    pub inventory: PathBuf,
    pub playbook: Option<PathBuf>,
    pub settings: RunSettings,
    pub batch: Batch,
    /// Only these roles (empty: all).
    pub roles: Vec<String>,
    /// The part of the cluster to act on (`--limit`).
    pub limit: Limit,
    pub max_unavailable: Option<usize>,
    /// The run lock to take before anything is stopped.
    pub lock: crate::deploy::LockRequest,
}

/// How the roll went.
#[derive(Debug, Clone, Default)]
pub struct RollOutcome {
    pub restarted: Vec<String>,
    pub failed: Vec<String>,
    /// Selected nodes the roll never touched (it stopped first).
    pub untouched: Vec<String>,
    pub ok: bool,
}

/// One node to restart.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    host: String,
    params: service::Params,
    /// The environment of its commands on its host (the runtime found there).
    env: Vec<(String, String)>,
}

pub async fn restart(opts: &RestartOptions, out: &dyn OpReporter) -> anyhow::Result<RollOutcome> {
    let started = Instant::now();
    let loaded = super::load(&opts.inventory, opts.playbook.as_ref(), &opts.settings)?;
    let services = super::service_params(&loaded.playbook, &loaded.run)?;
    let order = loaded
        .playbook
        .role_order()
        .map_err(|e| anyhow::anyhow!("playbook `{}`: {e}", loaded.playbook.name))?;
    check_names(&loaded.topology, &order, opts)?;
    let mut roles: Vec<(String, Vec<Member>)> = Vec::new();
    for role in &order {
        if !opts.roles.is_empty() && !opts.roles.contains(role) {
            continue;
        }
        let members: Vec<Member> = loaded
            .topology
            .nodes
            .iter()
            .filter(|n| n.role.key() == role && n.selected_by(&opts.limit))
            .filter_map(|n| {
                services.get(&n.id).map(|p| Member {
                    env: Vec::new(),
                    id: n.id.clone(),
                    host: n.host.to_string(),
                    params: p.clone(),
                })
            })
            .collect();
        if !members.is_empty() {
            roles.push((role.clone(), members));
        }
    }
    let all: Vec<String> = roles
        .iter()
        .flat_map(|(_, m)| m.iter().map(|m| m.id.clone()))
        .collect();
    if all.is_empty() {
        anyhow::bail!("no node matches --roles/--limit; nothing to restart");
    }
    let wanted_hosts: Vec<String> = {
        let mut h: Vec<String> = roles
            .iter()
            .flat_map(|(_, m)| m.iter().map(|m| m.host.clone()))
            .collect();
        h.sort();
        h.dedup();
        h
    };
    // Every host must answer before anything is stopped anywhere.
    let conns = super::connect_each(&loaded, Some(&wanted_hosts)).await?;
    let failed_hosts: Vec<String> = conns
        .values()
        .filter_map(|r| r.as_ref().err().cloned())
        .collect();
    if !failed_hosts.is_empty() {
        super::close_all(&conns).await;
        anyhow::bail!(
            "cannot reach every host; nothing was restarted:\n{}",
            failed_hosts.join("\n")
        );
    }
    let hosts: HashMap<String, Arc<dyn Transport>> = conns
        .iter()
        .filter_map(|(h, r)| r.as_ref().ok().map(|t| (h.clone(), t.clone())))
        .collect();
    let lock = match crate::deploy::take_lock(&hosts, &loaded.topology, &opts.lock).await {
        Ok(lock) => lock,
        Err(e) => {
            super::close_all(&conns).await;
            return Err(e);
        }
    };
    let running = match probe_running(&mut roles, &hosts).await {
        Ok(r) => r,
        Err(e) => {
            lock.release().await;
            return Err(e);
        }
    };

    out.event(&OpEvent::run_start("restart"));
    out.event(&OpEvent::RollStart {
        nodes: all.clone(),
        batch: opts.batch.to_string(),
        max_unavailable: opts.max_unavailable,
    });
    let mut roll = Roll {
        hosts: &hosts,
        redactor: &loaded.run.redactor,
        out,
        outcome: RollOutcome::default(),
        recap: BTreeMap::new(),
        down_pending: all
            .iter()
            .filter(|n| !running.get(*n).copied().unwrap_or(false))
            .cloned()
            .collect(),
        all,
        touched: Vec::new(),
        first_failure: None,
    };
    let mut stopped = false;
    for (role, members) in &roles {
        if !roll.role(role, members, opts).await {
            stopped = true;
            break;
        }
    }
    lock.release().await;
    super::close_all(&conns).await;
    roll.outcome.untouched = roll.untouched();
    roll.outcome.ok = !stopped && roll.outcome.failed.is_empty();
    out.event(&OpEvent::Recap {
        hosts: roll.recap.values().cloned().collect(),
        ok: roll.outcome.ok,
        duration_ms: started.elapsed().as_millis() as u64,
    });
    Ok(roll.outcome)
}

/// Unknown names in `--roles` / `--limit` are errors that list what exists.
fn check_names(topology: &Topology, roles: &[String], opts: &RestartOptions) -> anyhow::Result<()> {
    for r in &opts.roles {
        if !roles.contains(r) {
            anyhow::bail!("--roles: unknown role `{r}` (roles: {})", roles.join(", "));
        }
    }
    topology
        .check_limit(&opts.limit)
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

/// Which selected nodes run now, and the environment each node's commands get
/// on its host: one probe round trip per host, concurrently. A node never
/// installed, or a host without a usable runtime, is an error before anything
/// is stopped: the roll would only wait out its timeout there.
async fn probe_running(
    roles: &mut [(String, Vec<Member>)],
    hosts: &HashMap<String, Arc<dyn Transport>>,
) -> anyhow::Result<HashMap<String, bool>> {
    let mut by_host: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    for m in roles.iter().flat_map(|(_, m)| m) {
        let list = by_host.entry(m.host.clone()).or_default();
        let mut questions =
            service::questions(&m.params).map_err(|e| anyhow::anyhow!("{}: {e}", m.id))?;
        questions.push(Fact::File(unpack::marker(&m.params.dir)));
        for q in questions {
            if !list.contains(&q) {
                list.push(q);
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (host, questions) in by_host {
        let t = hosts.get(&host).cloned().expect("connected above");
        set.spawn(async move {
            let facts = plan::probe_host(t.as_ref(), &questions).await;
            (host, facts)
        });
    }
    let mut states = HashMap::new();
    while let Some(joined) = set.join_next().await {
        let (host, facts) = joined?;
        let facts = facts.map_err(|e| anyhow::anyhow!("{host}: probe failed: {e}"))?;
        states.insert(host, HostState::new(facts));
    }
    let mut running = HashMap::new();
    let mut problems = Vec::new();
    for m in roles.iter_mut().flat_map(|(_, m)| m) {
        let state = &states[&m.host];
        if state.facts.file(&unpack::marker(&m.params.dir)).is_none() {
            problems.push(format!("{}: not installed in {}", m.id, m.params.dir));
        }
        match service::resolved_env(&m.params, state) {
            Ok(env) => m.env = env,
            Err(e) => problems.push(format!("{}: {e}", m.id)),
        }
        running.insert(
            m.id.clone(),
            service::running_pid(state, &m.params).is_some(),
        );
    }
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        anyhow::bail!(
            "cannot restart (run `apim-deploy apply` first, or fix what is named); nothing was restarted:\n{}",
            problems.join("\n")
        );
    }
    Ok(running)
}

struct Roll<'a> {
    hosts: &'a HashMap<String, Arc<dyn Transport>>,
    /// Masks every secret of the inventory in errors and log lines shown.
    redactor: &'a Redactor,
    out: &'a dyn OpReporter,
    outcome: RollOutcome,
    recap: BTreeMap<String, HostRecap>,
    /// Every selected node, in roll order.
    all: Vec<String>,
    touched: Vec<String>,
    /// Selected nodes found stopped and not started yet (all roles).
    down_pending: Vec<String>,
    /// The first failure: (node, error, log tail).
    first_failure: Option<(String, String, Vec<String>)>,
}

impl Roll<'_> {
    /// Rolls one role; false when the roll must stop.
    async fn role(&mut self, role: &str, members: &[Member], opts: &RestartOptions) -> bool {
        let size = opts.batch.size(members.len());
        // Stopped nodes first: starting them only adds capacity.
        let (mut down, mut up): (Vec<&Member>, Vec<&Member>) = members
            .iter()
            .partition(|m| self.down_pending.contains(&m.id));
        while !down.is_empty() || !up.is_empty() {
            let batch: Vec<&Member> = if !down.is_empty() {
                down.drain(..size.min(down.len())).collect()
            } else {
                let room = match opts.max_unavailable {
                    None => size,
                    Some(max) => {
                        max.saturating_sub(self.outcome.failed.len() + self.down_pending.len())
                    }
                };
                if room == 0 {
                    self.stop_for_budget(up[0], opts.max_unavailable.unwrap_or(0));
                    return false;
                }
                up.drain(..size.min(room).min(up.len())).collect()
            };
            let had_failed = self.outcome.failed.len();
            self.batch(role, &batch).await;
            self.down_pending
                .retain(|d| !batch.iter().any(|m| &m.id == d));
            if self.outcome.failed.len() > had_failed && opts.max_unavailable.is_none() {
                let (node, error, tail) =
                    self.first_failure.clone().expect("a failure was recorded");
                self.stop(node, error, tail);
                return false;
            }
        }
        true
    }

    /// Restarts a batch concurrently, recording the outcome of each node.
    async fn batch(&mut self, role: &str, batch: &[&Member]) {
        self.out.event(&OpEvent::BatchStart {
            role: role.to_string(),
            nodes: batch.iter().map(|m| m.id.clone()).collect(),
        });
        self.touched.extend(batch.iter().map(|m| m.id.clone()));
        let mut set = tokio::task::JoinSet::new();
        for m in batch {
            let t = self.hosts.get(&m.host).cloned().expect("connected above");
            let m = (*m).clone();
            set.spawn(async move {
                let started = Instant::now();
                let result = restart_node(t.as_ref(), &m).await;
                (m, result, started.elapsed().as_millis() as u64)
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((m, result, ms)) = joined else {
                continue;
            };
            let recap = self
                .recap
                .entry(m.host.clone())
                .or_insert_with(|| HostRecap {
                    host: m.host.clone(),
                    ..Default::default()
                });
            recap.duration_ms += ms;
            self.out.event(&OpEvent::Restart {
                target: m.id.clone(),
                healthy: result.is_ok(),
                duration_ms: ms,
            });
            match result {
                Ok(()) => {
                    recap.changed += 1;
                    recap.restarted += 1;
                    self.outcome.restarted.push(m.id);
                }
                Err((error, tail)) => {
                    let error = self.redactor.mask(&error);
                    let tail = tail.iter().map(|l| self.redactor.mask(l)).collect();
                    recap.failed += 1;
                    self.outcome.failed.push(m.id.clone());
                    self.first_failure.get_or_insert((m.id, error, tail));
                }
            }
        }
    }

    fn untouched(&self) -> Vec<String> {
        self.all
            .iter()
            .filter(|n| !self.touched.contains(n))
            .cloned()
            .collect()
    }

    fn stop(&mut self, node: String, error: String, log_tail: Vec<String>) {
        let untouched = self.untouched();
        self.out.event(&OpEvent::RollStopped {
            node,
            error,
            log_tail,
            untouched,
        });
    }

    /// The budget leaves no room to take `next` down.
    fn stop_for_budget(&mut self, next: &Member, max: usize) {
        let mut down: Vec<String> = self.outcome.failed.clone();
        down.extend(self.down_pending.iter().cloned());
        let (node, error, tail) = match self.first_failure.clone() {
            Some((node, error, tail)) => (
                node,
                format!(
                    "{error}; {} node(s) down ({}) and --max-unavailable {max} leaves no room to take {} down",
                    down.len(),
                    down.join(", "),
                    next.id
                ),
                tail,
            ),
            None => (
                next.id.clone(),
                format!(
                    "{} node(s) already down ({}) and --max-unavailable {max} leaves no room to take {} down",
                    down.len(),
                    down.join(", "),
                    next.id
                ),
                vec![],
            ),
        };
        self.stop(node, error, tail);
    }
}

/// Stops, starts and waits for health (the service module's script, one round
/// trip). On failure: the cause and the evidence the script printed.
async fn restart_node(t: &dyn Transport, m: &Member) -> Result<(), (String, Vec<String>)> {
    let action = ServiceAction {
        params: m.params.clone(),
        env: m.env.clone(),
        restart: true,
    };
    let limit = m.params.timeout_secs + m.params.stop_timeout_secs + 60;
    let cmd = Cmd::new("bash")
        .arg("-s")
        .stdin_bytes(action.script().into_bytes())
        .timeout(Duration::from_secs(limit));
    let out = t.exec(&cmd).await.map_err(|e| (e.to_string(), vec![]))?;
    if out.status.success() {
        return Ok(());
    }
    Err(service::failure(&out.stderr_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_follow_counts_and_percentages() {
        assert_eq!("2".parse::<Batch>().unwrap().size(5), 2);
        assert_eq!("9".parse::<Batch>().unwrap().size(3), 3);
        assert_eq!("50%".parse::<Batch>().unwrap().size(5), 2);
        assert_eq!("10%".parse::<Batch>().unwrap().size(3), 1);
        assert_eq!("100%".parse::<Batch>().unwrap().size(4), 4);
        for bad in ["0", "0%", "101%", "x", "-1", ""] {
            assert!(bad.parse::<Batch>().is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_failure_output_is_split_without_panicking(
            stderr in "(not healthy|
    |:|é|  |[a-z ]{0,8}){0,12}",
        ) {
            let (_, evidence) = service::failure(&stderr);
            proptest::prop_assert!(evidence.len() <= stderr.lines().count());
        }
    }
}
