//! `status`: per node, what runs (pid, uptime, ports), whether it is healthy,
//! which distribution it was unpacked from, whether a restart is pending, and
//! what drifted from the inventory. Read-only, like `plan`.
//!
//! Two concurrent round trips per host: one probe script for the process and
//! port facts (below), and the planner's own probe, whose verdicts give the
//! drift: an `xml`, `hosts_file` or `copy` step that would change something on
//! an installed node is a managed value someone changed by hand (or a run did
//! not finish). Exit code: 0 healthy and in sync, 2 drift or a pending restart,
//! 1 unhealthy or unreachable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use apim_transport::Transport;

use super::events::{Drift, NodeState, OpEvent, OpReporter, PortState, StatusSummary};
use crate::engine::limit::Limit;
use crate::engine::modules::{Kind, service, unpack};
use crate::engine::plan::{self, Plan};
use crate::engine::probe::{Fact, quote};
use crate::topology::Node;
use crate::wso2::RunSettings;

/// The modules whose changes on an installed node are drift.
const DRIFT_MODULES: &[Kind] = &[Kind::Xml, Kind::HostsFile, Kind::Copy];

/// Reads `/proc/net/tcp{,6}`: the listening sockets of the host.
const LISTEN_PROBE: &str = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null";

#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    pub inventory: PathBuf,
    pub playbook: Option<PathBuf>,
    /// The part of the cluster to act on (`--limit`).
    pub limit: Limit,
}

/// Collects every node's state and reports it; returns the summary (its
/// `exit_code` is the command's).
pub async fn status(opts: &StatusOptions, out: &dyn OpReporter) -> anyhow::Result<StatusSummary> {
    let started = Instant::now();
    let loaded = super::load(
        &opts.inventory,
        opts.playbook.as_ref(),
        &RunSettings::default(),
    )?;
    let services = super::service_params(&loaded.playbook, &loaded.run)?;
    loaded
        .topology
        .check_limit(&opts.limit)
        .map_err(anyhow::Error::msg)?;
    let nodes: Vec<&Node> = loaded
        .topology
        .nodes
        .iter()
        .filter(|n| n.selected_by(&opts.limit))
        .collect();
    if nodes.is_empty() {
        anyhow::bail!("--limit {} matches no node", opts.limit);
    }
    let conns = super::connect_each(&loaded, None).await?;
    let unreachable: Vec<String> = conns
        .iter()
        .filter_map(|(h, r)| r.as_ref().err().map(|_| h.clone()))
        .collect();
    let hosts: HashMap<String, Arc<dyn Transport>> = conns
        .iter()
        .filter_map(|(h, r)| r.as_ref().ok().map(|t| (h.clone(), t.clone())))
        .collect();

    let probes = probe_nodes(&nodes, &services, &hosts);
    let planned = async {
        if !unreachable.is_empty() {
            return Err("not every host is reachable".to_string());
        }
        plan::make_plan(&loaded.playbook, &loaded.run, &hosts)
            .await
            .map_err(|e| e.to_string())
    };
    let in_progress = crate::deploy::runs_in_progress(&hosts, &loaded.topology);
    let (mut probed, planned, in_progress) = tokio::join!(probes, planned, in_progress);
    super::close_all(&conns).await;
    for (host, result) in &conns {
        if let Err(e) = result {
            let facts = HostFacts {
                error: Some(format!("unreachable: {e}")),
                ..Default::default()
            };
            probed.insert(host.clone(), facts);
        }
    }

    let want_sha = loaded
        .run
        .globals
        .pointer("/dist/sha256")
        .and_then(|v| v.as_str());
    let mut states: Vec<NodeState> = nodes
        .iter()
        .map(|n| {
            let facts = probed.get(n.host.as_str());
            node_state(n, services.get(&n.id), facts, want_sha)
        })
        .collect();
    let mut summary = StatusSummary {
        unreachable: unreachable.clone(),
        run_in_progress: in_progress
            .iter()
            .map(|(h, who)| format!("{h}: {who}"))
            .collect(),
        ..Default::default()
    };
    match &planned {
        Ok(plan) => summary.host_drift = attach_drift(plan, &mut states),
        Err(e) => summary.drift_error = Some(e.clone()),
    }
    out.event(&OpEvent::run_start("status"));
    for s in &states {
        out.event(&OpEvent::NodeStatus(Box::new(s.clone())));
    }
    summary.nodes = states.len();
    summary.healthy = states.iter().filter(|s| s.healthy).count();
    summary.unhealthy = names(&states, |s| !s.healthy);
    summary.drifted = names(&states, |s| !s.drift.is_empty());
    summary.restart_pending = names(&states, |s| s.restart_pending);
    let in_limit: BTreeSet<&str> = nodes.iter().map(|n| n.host.as_str()).collect();
    summary
        .host_drift
        .retain(|d| in_limit.contains(d.target.as_str()));
    summary.exit_code = if !summary.unhealthy.is_empty()
        || !summary.unreachable.is_empty()
        || summary.drift_error.is_some()
    {
        1
    } else if !summary.drifted.is_empty()
        || !summary.restart_pending.is_empty()
        || !summary.host_drift.is_empty()
    {
        2
    } else {
        0
    };
    summary.duration_ms = started.elapsed().as_millis() as u64;
    out.event(&OpEvent::StatusSummary(summary.clone()));
    Ok(summary)
}

fn names(states: &[NodeState], pick: impl Fn(&NodeState) -> bool) -> Vec<String> {
    states
        .iter()
        .filter(|s| pick(s))
        .map(|s| s.target.clone())
        .collect()
}

/// What the status probe learnt about a host: per node dir, its key=value
/// lines; and the host's listening TCP ports.
#[derive(Debug, Default)]
struct HostFacts {
    nodes: HashMap<String, BTreeMap<String, String>>,
    listening: BTreeSet<u16>,
    error: Option<String>,
}

/// One round trip per host: every node's snippet plus the listening sockets.
async fn probe_nodes(
    nodes: &[&Node],
    services: &BTreeMap<String, service::Params>,
    hosts: &HashMap<String, Arc<dyn Transport>>,
) -> HashMap<String, HostFacts> {
    let mut by_host: BTreeMap<String, Vec<(String, Fact)>> = BTreeMap::new();
    for n in nodes {
        // A node the playbook does not serve has nothing to probe.
        let Some(p) = services.get(&n.id) else {
            continue;
        };
        by_host
            .entry(n.host.to_string())
            .or_default()
            .push((n.id.clone(), Fact::Shell(node_probe(p))));
    }
    let mut set = tokio::task::JoinSet::new();
    for (host, list) in by_host {
        let Some(t) = hosts.get(&host).cloned() else {
            continue;
        };
        set.spawn(async move {
            let mut questions: Vec<Fact> = list.iter().map(|(_, f)| f.clone()).collect();
            questions.push(Fact::Shell(LISTEN_PROBE.to_string()));
            let mut facts = HostFacts::default();
            match plan::probe_host(t.as_ref(), &questions).await {
                Ok(answers) => {
                    for (id, fact) in &list {
                        let text = match fact {
                            Fact::Shell(s) => answers.shell(s).map(|(_, o)| o.to_vec()),
                            _ => None,
                        };
                        facts
                            .nodes
                            .insert(id.clone(), key_values(&text.unwrap_or_default()));
                    }
                    if let Some((_, out)) = answers.shell(LISTEN_PROBE) {
                        facts.listening = listening_ports(&String::from_utf8_lossy(out));
                    }
                }
                Err(e) => facts.error = Some(format!("probe failed: {e}")),
            }
            (host, facts)
        });
    }
    let mut all = HashMap::new();
    while let Some(Ok((host, facts))) = set.join_next().await {
        all.insert(host, facts);
    }
    all
}

/// The read-only snippet that describes one node as `key=value` lines: the
/// service module's own status probe (the same running rule and environment as
/// a start), plus which distribution the directory was unpacked from.
fn node_probe(p: &service::Params) -> String {
    let marker = unpack::marker(&p.dir);
    format!(
        "[ -f {m} ] && printf 'dist=%s\\n' \"$(head -c 64 {m})\"\n{}",
        service::status_probe(p),
        m = quote(&marker),
    )
}

fn key_values(out: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Ports in state LISTEN (0A) in `/proc/net/tcp` and `tcp6` text.
fn listening_ports(text: &str) -> BTreeSet<u16> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            let port = local.rsplit_once(':')?.1;
            (state == "0A").then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

fn node_state(
    n: &Node,
    svc: Option<&service::Params>,
    facts: Option<&HostFacts>,
    want_sha: Option<&str>,
) -> NodeState {
    let mut s = NodeState {
        target: n.id.clone(),
        host: n.host.to_string(),
        role: n.role.key().to_string(),
        ..Default::default()
    };
    let Some(facts) = facts.filter(|f| f.error.is_none()) else {
        s.health = match facts.and_then(|f| f.error.clone()) {
            Some(e) => e,
            None => "host unreachable".into(),
        };
        return s;
    };
    s.reachable = true;
    let kv = facts.nodes.get(&n.id).cloned().unwrap_or_default();
    s.dist_sha256 = kv.get("dist").cloned();
    s.installed = s.dist_sha256.is_some();
    s.dist_current = s
        .dist_sha256
        .as_deref()
        .zip(want_sha)
        .map(|(a, b)| a.eq_ignore_ascii_case(b));
    s.version = kv.get("version").cloned();
    s.restart_pending = kv.contains_key("pending");
    s.pid = kv.get("pid").and_then(|p| p.parse().ok());
    s.running = s.pid.is_some();
    s.strays = kv
        .get("strays")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    s.uptime_secs = kv.get("uptime").and_then(|u| u.parse().ok());
    let line = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let started_since_start = line("log_ready") > line("log_start");
    let mgt = kv.contains_key("health_port_open");
    let port = svc.map_or(n.ports.https, |p| p.health_port);
    let ready = svc.map_or("the ready line", |p| p.ready.as_str());
    (s.healthy, s.health) = match (s.installed, s.running, started_since_start, mgt) {
        (false, _, _, _) => (false, "not installed".into()),
        (_, false, _, _) => (false, "not running".into()),
        (_, _, false, _) => (false, format!("no `{ready}` line since the last start")),
        (_, _, _, false) => (false, format!("management port {port} refuses connections")),
        _ => (true, format!("started, port {port} accepting")),
    };
    if !s.strays.is_empty() {
        let pids: Vec<String> = s.strays.iter().map(u32::to_string).collect();
        s.healthy = false;
        s.health = format!(
            "a stray server of its directory runs (pid {}, not named by the pid file); {}",
            pids.join(", "),
            s.health
        );
    }
    s.ports = node_ports(n)
        .into_iter()
        .map(|(name, port)| PortState {
            name: name.to_string(),
            port,
            listening: facts.listening.contains(&port),
        })
        .collect();
    s
}

/// The ports worth showing: servlet and pass-through, Thrift and Hazelcast where used.
fn node_ports(n: &Node) -> Vec<(&'static str, u16)> {
    n.ports
        .all()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("jmx"))
        .collect()
}

/// Puts each drifted node step on its node; returns the host-level drift.
fn attach_drift(plan: &Plan, states: &mut [NodeState]) -> Vec<Drift> {
    let installed_hosts: BTreeSet<String> = states
        .iter()
        .filter(|s| s.installed)
        .map(|s| s.host.clone())
        .collect();
    let mut host_drift = Vec::new();
    for step in &plan.steps {
        if !DRIFT_MODULES.contains(&step.module) || !step.verdict.is_change() {
            continue;
        }
        let drift = Drift {
            target: step.target.clone(),
            task: step.task.clone(),
            reason: step.verdict.reason().to_string(),
            diffs: step.diffs.clone(),
        };
        if let Some(node) = states.iter_mut().find(|s| s.target == step.target) {
            if node.installed {
                node.drift.push(drift);
            }
        } else if step.role.is_none() && installed_hosts.contains(&step.host) {
            host_drift.push(drift);
        }
    }
    host_drift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_ports_are_read_from_proc_net_tcp() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue\n\
           0: 00000000:24E3 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n\
           1: 0100007F:2053 0100007F:C350 01 00000000:00000000 00:00000000 00000000 0 0 2\n\
           0: 00000000000000000000000000000000:2058 00000000000000000000000000000000:0000 0A 0\n";
        let ports = listening_ports(text);
        assert!(ports.contains(&9443), "{ports:?}");
        assert!(ports.contains(&8280), "{ports:?}");
        assert!(
            !ports.contains(&8275),
            "an established socket is not listening"
        );
    }

    fn test_params(dir: &str) -> service::Params {
        let mut t = toml::Table::new();
        t.insert("dir".into(), dir.into());
        t.insert("user".into(), "root".into());
        t.insert("start".into(), toml::Value::Array(vec!["true".into()]));
        t.insert("stop".into(), toml::Value::Array(vec!["true".into()]));
        t.insert("version".into(), toml::Value::Array(vec!["false".into()]));
        t.insert("pid_file".into(), format!("{dir}/pid").into());
        t.insert("log".into(), format!("{dir}/log").into());
        t.insert(
            "process_markers".into(),
            toml::Value::Array(vec![dir.into()]),
        );
        t.insert("ready".into(), "ready".into());
        t.insert("health_port".into(), 1.into());
        crate::engine::modules::params(crate::engine::modules::Kind::Service, &t).unwrap()
    }

    #[test]
    fn the_node_probe_reports_a_node_dir_that_does_not_exist_as_empty() {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(node_probe(&test_params("/nonexistent/it's here")))
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(key_values(&out.stdout).is_empty(), "{:?}", out);
    }

    /// Output shaped like the node probe's and `/proc/net/tcp`'s, with odd values.
    fn probe_text() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            prop::sample::select(vec![
                "dist=",
                "version=",
                "pid=",
                "uptime=",
                "mgt=1",
                "pending=1",
                "log_start=",
                "log_started=",
                "=",
                "\n",
                " ",
                ":",
                "0A",
                "00000000:24E3",
                "-1",
                "4294967296",
                "18446744073709551616",
                "é",
                "€",
                "\u{fffd}",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            "[0-9a-fA-F]{0,16}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..6),
            // The marker's digest with an odd character where it is shortened for display.
            ("[0-9a-f]{0,14}", "[é€🦀]?", "[0-9a-f]{0,50}")
                .prop_map(|(a, odd, b)| format!("dist={a}{odd}{b}\n").into_bytes()),
        ];
        prop::collection::vec(piece, 0..32).prop_map(|v| v.concat())
    }

    proptest::proptest! {
        #[test]
        fn any_probe_output_gives_a_node_state_and_a_status_line(
            node in probe_text(),
            tcp in probe_text(),
            want in "[0-9a-f]{0,64}",
        ) {
            // should: whatever a host prints, `status` reports the node, never panics.
            let text = crate::topology::tests::inventory_with(
                "[[hosts]]\nname = \"app1\"\naddress = \"127.0.60.1\"\n\
                 roles = [\"keymanager\", \"gateway\"]\n",
            );
            let (inv, _) = crate::inventory::Inventory::parse_with_problems(
                &text,
                "t.toml",
                crate::inventory::Secrets::Skip,
            )
            .unwrap();
            let topology = crate::topology::Topology::from_inventory(&inv).unwrap();
            let n = &topology.nodes[0];
            let mut facts = HostFacts::default();
            facts.nodes.insert(n.id.clone(), key_values(&node));
            facts.listening = listening_ports(&String::from_utf8_lossy(&tcp));
            let state = node_state(n, None, Some(&facts), Some(&want));
            let (sh, _) = crate::engine::shell::Shell::capture();
            let _ = super::super::events::plain(&sh, &OpEvent::NodeStatus(Box::new(state)));
        }
    }
}
