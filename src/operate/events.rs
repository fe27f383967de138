//! What `restart` and `status` report, as events: plain lines for people and
//! pipes, or NDJSON with `--json` (schema in docs/operations.md).
//!
//! The events follow the engine's [`crate::engine::report::Event`] conventions
//! (an `event` tag, snake_case names); `restart` and `recap` have exactly the
//! shape of the engine's events of the same name, so one consumer reads both
//! `apply` and `restart` streams. They live here, not in the engine's enum,
//! because they describe operations on a running cluster, not playbook runs.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::engine::modules::FileDiff;
use crate::engine::report::{
    HostRecap, JsonReporter, fmt_ms, recap_text, restart_line, short_digest,
};
use crate::engine::shell::Shell;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum OpEvent {
    /// The first line of `--json`: which stream this is (`apim-deploy.status/1` or
    /// `apim-deploy.restart/1`), as `apply`'s `run_start` names its own.
    RunStart { schema: String, command: String },
    /// `restart` begins: the nodes it will roll, in order.
    RollStart {
        nodes: Vec<String>,
        /// As given: `1`, `2`, `50%`.
        batch: String,
        /// The most nodes of one role down at once.
        max_unavailable: Option<usize>,
    },
    /// A batch of one role's nodes is about to be stopped and started.
    BatchStart { role: String, nodes: Vec<String> },
    /// A node was (re)started; `healthy` says whether it came back.
    Restart {
        target: String,
        healthy: bool,
        duration_ms: u64,
    },
    /// The roll stopped early: the node that failed, why, its log tail, and the
    /// nodes left as they were.
    RollStopped {
        node: String,
        error: String,
        log_tail: Vec<String>,
        untouched: Vec<String>,
    },
    /// One node, as `status` saw it.
    NodeStatus(Box<NodeState>),
    /// The end of `status`.
    StatusSummary(StatusSummary),
    /// Per-host totals at the end of `restart` (the engine's shape).
    Recap {
        hosts: Vec<HostRecap>,
        ok: bool,
        duration_ms: u64,
    },
}

/// A node's state as `status` saw it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeState {
    /// `app2/gateway`.
    pub target: String,
    pub host: String,
    pub role: String,
    pub reachable: bool,
    /// The node directory holds an unpacked distribution (its marker exists).
    pub installed: bool,
    pub running: bool,
    pub pid: Option<u32>,
    /// Servers of the node's directory that its pid file does not name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub strays: Vec<u32>,
    pub uptime_secs: Option<u64>,
    /// Running, the playbook's ready line logged since the last start, and the
    /// management port accepting connections.
    pub healthy: bool,
    /// Why it is (not) healthy, in words.
    pub health: String,
    pub ports: Vec<PortState>,
    /// carbon.xml `/Server/Version`.
    pub version: Option<String>,
    /// The sha256 of the archive the node directory was unpacked from.
    pub dist_sha256: Option<String>,
    /// Whether that is the archive the inventory pins.
    pub dist_current: Option<bool>,
    pub restart_pending: bool,
    /// Managed values that differ from what the inventory wants.
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortState {
    pub name: String,
    pub port: u16,
    pub listening: bool,
}

/// One task whose managed value is not as the inventory wants it.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    pub target: String,
    pub task: String,
    pub reason: String,
    /// Exact diffs, secrets masked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FileDiff>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusSummary {
    pub nodes: usize,
    pub healthy: usize,
    pub unhealthy: Vec<String>,
    pub drifted: Vec<String>,
    pub restart_pending: Vec<String>,
    pub unreachable: Vec<String>,
    /// Drift on hosts (e.g. /etc/hosts), not on a node.
    pub host_drift: Vec<Drift>,
    /// Why drift could not be computed, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_error: Option<String>,
    /// Another run holding the lock, per host (`host: who`), while status looked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub run_in_progress: Vec<String>,
    /// 0 healthy and in sync, 2 drift or restart pending, 1 unhealthy or unreachable.
    pub exit_code: u8,
    pub duration_ms: u64,
}

impl OpEvent {
    /// The first event of `command`'s stream, naming its schema (docs/json.md).
    pub fn run_start(command: &str) -> OpEvent {
        OpEvent::RunStart {
            schema: format!("apim-deploy.{command}/1"),
            command: command.to_string(),
        }
    }
}

/// Where operation events go.
pub trait OpReporter: Send + Sync {
    fn event(&self, e: &OpEvent);
}

/// The reporter the shell calls for: NDJSON with `--json`, the live display where
/// the command has one (`restart`) and the shell may draw it, plain lines otherwise.
pub fn reporter(shell: Arc<Shell>, live: bool) -> Box<dyn OpReporter> {
    if shell.is_json() {
        Box::new(JsonReporter::new(shell))
    } else if live && shell.is_live() {
        Box::new(ProgressOut::new(shell))
    } else {
        Box::new(PlainOut(shell))
    }
}

/// NDJSON: one object per event, as `apply`'s.
impl OpReporter for JsonReporter {
    fn event(&self, e: &OpEvent) {
        self.line(e);
    }
}

/// Plain lines, no control codes.
pub struct PlainOut(pub Arc<Shell>);

impl OpReporter for PlainOut {
    fn event(&self, e: &OpEvent) {
        let text = plain(&self.0, e);
        if text.is_empty() {
            return;
        }
        let failure = match e {
            OpEvent::Restart { healthy, .. } => !healthy,
            OpEvent::RollStopped { .. } => true,
            OpEvent::Recap { ok, .. } => !ok,
            OpEvent::StatusSummary(s) => s.exit_code != 0,
            _ => false,
        };
        let _ = if failure {
            self.0.print_always(&text)
        } else {
            self.0.print(&text)
        };
    }
}

/// The terminal display of `restart`: a spinner with the elapsed time for each node of
/// the batch being rolled (a real Carbon takes a minute to come back), every event's
/// plain text printed above the spinners.
pub struct ProgressOut {
    shell: Arc<Shell>,
    multi: indicatif::MultiProgress,
    bars: Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
}

impl ProgressOut {
    pub fn new(shell: Arc<Shell>) -> Self {
        ProgressOut {
            multi: shell.live_display(),
            shell,
            bars: Mutex::new(Default::default()),
        }
    }

    fn say(&self, text: &str) {
        for line in text.trim_end().lines() {
            let _ = self.multi.println(line);
        }
    }

    fn spin(&self, node: &str) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} restarting {msg} {elapsed}")
                .expect("valid template"),
        );
        bar.set_message(node.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.bars
            .lock()
            .expect("progress lock")
            .insert(node.to_string(), bar);
    }

    fn stop(&self, node: Option<&str>) {
        let mut bars = self.bars.lock().expect("progress lock");
        let done: Vec<String> = match node {
            Some(n) => vec![n.to_string()],
            None => bars.keys().cloned().collect(),
        };
        for n in done {
            if let Some(bar) = bars.remove(&n) {
                bar.finish_and_clear();
            }
        }
    }
}

impl OpReporter for ProgressOut {
    fn event(&self, e: &OpEvent) {
        let text = plain(&self.shell, e);
        match e {
            OpEvent::BatchStart { nodes, .. } => {
                self.say(&text);
                for n in nodes {
                    self.spin(n);
                }
            }
            OpEvent::Restart { target, .. } => {
                self.stop(Some(target));
                self.say(&text);
            }
            OpEvent::RollStopped { .. } | OpEvent::Recap { .. } => {
                self.stop(None);
                self.say(&text);
            }
            _ => self.say(&text),
        }
    }
}

/// The plain text of one event (empty for none); restart and recap lines are the
/// engine's own, so `apply` and `restart` print them alike.
pub fn plain(sh: &Shell, e: &OpEvent) -> String {
    match e {
        OpEvent::RunStart { .. } => String::new(),
        OpEvent::RollStart {
            nodes,
            batch,
            max_unavailable,
        } => format!(
            "restart: {} node(s), batch {batch}, max unavailable {}\n",
            nodes.len(),
            max_unavailable.map_or("= batch".to_string(), |m| m.to_string())
        ),
        OpEvent::BatchStart { role, nodes } => format!("== {role}: {}\n", nodes.join(", ")),
        OpEvent::Restart {
            target,
            healthy,
            duration_ms,
        } => restart_line(sh, target, *healthy, *duration_ms) + "\n",
        OpEvent::RollStopped {
            node,
            error,
            log_tail,
            untouched,
        } => {
            let mut s = format!("roll stopped at {node}: {error}\n");
            if !log_tail.is_empty() {
                s.push_str(&format!("last lines of {node}'s log:\n"));
                for l in log_tail {
                    s.push_str(&format!("  | {l}\n"));
                }
            }
            s.push_str(&format!(
                "left running as they were: {}\n",
                if untouched.is_empty() {
                    "(none)".to_string()
                } else {
                    untouched.join(", ")
                }
            ));
            s
        }
        OpEvent::NodeStatus(n) => node_lines(n),
        OpEvent::StatusSummary(s) => summary_lines(s),
        OpEvent::Recap {
            hosts,
            ok,
            duration_ms,
        } => recap_text(sh, hosts, *ok, *duration_ms),
    }
}

fn fmt_uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn node_lines(n: &NodeState) -> String {
    let state = if !n.reachable {
        "UNREACHABLE".to_string()
    } else if n.running {
        format!(
            "running pid {} up {}",
            n.pid.map_or("?".into(), |p| p.to_string()),
            n.uptime_secs.map_or("?".into(), fmt_uptime)
        )
    } else if n.installed {
        "STOPPED".to_string()
    } else {
        "NOT INSTALLED".to_string()
    };
    let health = if n.healthy { "healthy" } else { "UNHEALTHY" };
    let version = match (&n.version, &n.dist_sha256) {
        (Some(v), Some(d)) => format!(
            "{v} ({}{})",
            short_digest(d),
            if n.dist_current == Some(false) {
                ", not the inventory's"
            } else {
                ""
            }
        ),
        (Some(v), None) => v.clone(),
        (None, Some(d)) => short_digest(d).to_string(),
        (None, None) => "-".to_string(),
    };
    let mut s = format!(
        "{:<18} {:<11} {:<8} {state}; {health} ({}); version {version}{}{}\n",
        n.target,
        n.role,
        n.host,
        n.health,
        if n.restart_pending {
            "; RESTART PENDING"
        } else {
            ""
        },
        if n.drift.is_empty() { "" } else { "; DRIFT" }
    );
    if n.reachable && n.installed {
        let ports: Vec<String> = n
            .ports
            .iter()
            .map(|p| {
                format!(
                    "{} {}{}",
                    p.name,
                    p.port,
                    if p.listening { "" } else { " (closed)" }
                )
            })
            .collect();
        s.push_str(&format!("    ports: {}\n", ports.join(", ")));
    }
    for d in &n.drift {
        s.push_str(&drift_lines(d));
    }
    s
}

fn drift_lines(d: &Drift) -> String {
    let mut s = format!("    drift: {}: {} ({})\n", d.target, d.task, d.reason);
    for diff in &d.diffs {
        for line in diff.diff.lines() {
            s.push_str(&format!("      {line}\n"));
        }
    }
    s
}

fn summary_lines(s: &StatusSummary) -> String {
    let mut out = String::new();
    for d in &s.host_drift {
        out.push_str(&drift_lines(d));
    }
    if let Some(e) = &s.drift_error {
        out.push_str(&format!("drift not computed: {e}\n"));
    }
    for r in &s.run_in_progress {
        out.push_str(&format!("a run is in progress: {r}\n"));
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    out.push_str(&format!(
        "\n{} node(s): {} healthy; unhealthy: {}; unreachable: {}; drift: {}; restart pending: {} [{}]\n",
        s.nodes,
        s.healthy,
        list(&s.unhealthy),
        list(&s.unreachable),
        list(&s.drifted),
        list(&s.restart_pending),
        fmt_ms(s.duration_ms)
    ));
    out
}
