//! The executor: runs a [`Plan`]'s actions, phase by phase.
//!
//! * Within a phase, hosts run concurrently (at most `forks` at once); a
//!   host's own steps run in order.
//! * `service` steps run role by role in the playbook's dependency order; all
//!   nodes of a role start together and must be healthy before the next role.
//! * A failure stops the failed host's remaining steps and every role that
//!   depends on a role with a failed node. The run goes on elsewhere, and the
//!   recap and exit code say what happened (ripgrep's messages, not abort).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apim_transport::{Cmd, Owner, Transport};

use super::modules::{Action, Verdict};
use super::plan::{Plan, Step};
use super::playbook::Playbook;
use super::redact::Redactor;
use super::report::{Event, HostRecap, Reporter};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// How many hosts work at once within a phase.
    pub forks: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions { forks: 16 }
    }
}

/// How the run went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hosts: Vec<HostRecap>,
    pub ok: bool,
    pub failures: Vec<String>,
}

#[derive(Default)]
struct Shared {
    failed_hosts: HashSet<String>,
    failed_roles: HashSet<String>,
    recap: BTreeMap<String, HostRecap>,
    failures: Vec<String>,
}

type Hosts = HashMap<String, Arc<dyn Transport>>;

pub async fn execute(
    pb: &Playbook,
    plan: &Plan,
    hosts: &Hosts,
    reporter: Arc<dyn Reporter>,
    redactor: &Redactor,
    opts: &ExecOptions,
) -> Outcome {
    let shared = Arc::new(Mutex::new(Shared::default()));
    for step in &plan.steps {
        shared
            .lock()
            .unwrap()
            .recap
            .entry(step.host.clone())
            .or_insert_with(|| HostRecap {
                host: step.host.clone(),
                ..Default::default()
            });
    }
    let role_order = pb.role_order().unwrap_or_default();
    let mut phase_start = 0;
    while phase_start < plan.steps.len() {
        let index = plan.steps[phase_start].phase_index;
        let end = plan.steps[phase_start..]
            .iter()
            .position(|s| s.phase_index != index)
            .map_or(plan.steps.len(), |n| phase_start + n);
        let steps = &plan.steps[phase_start..end];
        reporter.event(&Event::PhaseStart {
            phase: steps[0].phase.clone(),
        });
        let (services, others): (Vec<&Step>, Vec<&Step>) =
            steps.iter().partition(|s| s.module == "service");
        run_per_host(&others, hosts, &reporter, redactor, opts, &shared).await;
        for role in &role_order {
            let batch: Vec<&Step> = services
                .iter()
                .copied()
                .filter(|s| s.role.as_deref() == Some(role.as_str()))
                .collect();
            if batch.is_empty() {
                continue;
            }
            let blocked = {
                let sh = shared.lock().unwrap();
                pb.ancestors(role)
                    .iter()
                    .any(|a| sh.failed_roles.contains(a))
            };
            if blocked {
                for s in &batch {
                    skip(s, "a role it depends on failed", &reporter, &shared);
                }
                shared.lock().unwrap().failed_roles.insert(role.clone());
                continue;
            }
            let refs: Vec<&Step> = batch;
            run_per_host(&refs, hosts, &reporter, redactor, opts, &shared).await;
        }
        phase_start = end;
    }
    let sh = shared.lock().unwrap();
    Outcome {
        hosts: sh.recap.values().cloned().collect(),
        ok: sh.failures.is_empty(),
        failures: sh.failures.clone(),
    }
}

/// Runs steps grouped by host: hosts concurrently, each host's steps in order.
async fn run_per_host(
    steps: &[&Step],
    hosts: &Hosts,
    reporter: &Arc<dyn Reporter>,
    redactor: &Redactor,
    opts: &ExecOptions,
    shared: &Arc<Mutex<Shared>>,
) {
    let mut by_host: BTreeMap<String, Vec<Step>> = BTreeMap::new();
    for s in steps {
        by_host
            .entry(s.host.clone())
            .or_default()
            .push((*s).clone());
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(opts.forks.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (host, steps) in by_host {
        let transport = hosts.get(&host).cloned();
        let reporter = reporter.clone();
        let redactor = redactor.clone();
        let shared = shared.clone();
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            for step in &steps {
                run_step(step, transport.as_deref(), &reporter, &redactor, &shared).await;
            }
        });
    }
    while set.join_next().await.is_some() {}
}

fn skip(step: &Step, why: &str, reporter: &Arc<dyn Reporter>, shared: &Arc<Mutex<Shared>>) {
    let mut sh = shared.lock().unwrap();
    if let Some(r) = sh.recap.get_mut(&step.host) {
        r.skipped += 1;
    }
    reporter.event(&Event::TaskEnd {
        target: step.target.clone(),
        task: step.task.clone(),
        verdict: Verdict::Skipped(why.to_string()),
        duration_ms: 0,
        diffs: vec![],
    });
}

async fn run_step(
    step: &Step,
    transport: Option<&dyn Transport>,
    reporter: &Arc<dyn Reporter>,
    redactor: &Redactor,
    shared: &Arc<Mutex<Shared>>,
) {
    if shared.lock().unwrap().failed_hosts.contains(&step.host) {
        skip(
            step,
            "an earlier task failed on this host",
            reporter,
            shared,
        );
        return;
    }
    let started = Instant::now();
    if !step.verdict.is_change() {
        let mut sh = shared.lock().unwrap();
        if let Some(r) = sh.recap.get_mut(&step.host) {
            match step.verdict {
                Verdict::Skipped(_) => r.skipped += 1,
                _ => r.ok += 1,
            }
        }
        reporter.event(&Event::TaskEnd {
            target: step.target.clone(),
            task: step.task.clone(),
            verdict: step.verdict.clone(),
            duration_ms: 0,
            diffs: vec![],
        });
        return;
    }
    reporter.event(&Event::TaskStart {
        target: step.target.clone(),
        task: step.task.clone(),
    });
    let result = match transport {
        Some(t) => run_actions(t, &step.actions, redactor).await,
        None => Err(format!("no connection to {}", step.host)),
    };
    let ms = started.elapsed().as_millis() as u64;
    let mut sh = shared.lock().unwrap();
    let is_service = step.module == "service";
    match result {
        Ok(()) => {
            if let Some(r) = sh.recap.get_mut(&step.host) {
                r.changed += 1;
                r.duration_ms += ms;
                if is_service {
                    r.restarted += 1;
                }
            }
            if is_service {
                reporter.event(&Event::Restart {
                    target: step.target.clone(),
                    healthy: true,
                    duration_ms: ms,
                });
            }
            reporter.event(&Event::TaskEnd {
                target: step.target.clone(),
                task: step.task.clone(),
                verdict: step.verdict.clone(),
                duration_ms: ms,
                diffs: step.diffs.clone(),
            });
        }
        Err(error) => {
            let error = redactor.mask(&error);
            if let Some(r) = sh.recap.get_mut(&step.host) {
                r.failed += 1;
                r.duration_ms += ms;
            }
            if is_service {
                reporter.event(&Event::Restart {
                    target: step.target.clone(),
                    healthy: false,
                    duration_ms: ms,
                });
            }
            reporter.event(&Event::TaskFailed {
                target: step.target.clone(),
                task: step.task.clone(),
                error: error.clone(),
            });
            sh.failures
                .push(format!("{}: {}: {error}", step.target, step.task));
            sh.failed_hosts.insert(step.host.clone());
            if let Some(role) = &step.role {
                sh.failed_roles.insert(role.clone());
            }
        }
    }
}

async fn run_actions(
    t: &dyn Transport,
    actions: &[Action],
    redactor: &Redactor,
) -> Result<(), String> {
    for a in actions {
        run_action(t, a)
            .await
            .map_err(|e| format!("{}: {}", a.describe(), redactor.mask(&e)))?;
    }
    Ok(())
}

async fn run_action(t: &dyn Transport, action: &Action) -> Result<(), String> {
    match action {
        Action::Write {
            path,
            bytes,
            mode,
            owner,
        } => {
            let owner = owner.as_ref().map(Owner::user);
            t.write_file_atomic(path, bytes, *mode, owner.as_ref())
                .await
                .map_err(|e| e.to_string())
        }
        Action::Upload {
            local,
            remote,
            sha256,
            owner,
        } => {
            let parent = remote.rsplit_once('/').map_or("/", |(p, _)| p);
            let parent = if parent.is_empty() { "/" } else { parent };
            t.exec_ok(&Cmd::new("mkdir").arg("-p").arg(parent))
                .await
                .map_err(|e| e.to_string())?;
            t.upload(local, remote, sha256)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(o) = owner {
                t.exec_ok(&Cmd::new("chown").arg(format!("{o}:")).arg(remote))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        Action::Script { script, .. } => run_script(t, script, None).await,
        Action::Service(s) => {
            let limit = Duration::from_secs(s.params.timeout_secs + 60);
            run_script(t, &s.script(), Some(limit)).await
        }
    }
}

/// Runs a bash script sent on stdin (so nothing in it reaches a command line).
async fn run_script(
    t: &dyn Transport,
    script: &str,
    limit: Option<Duration>,
) -> Result<(), String> {
    let mut cmd = Cmd::new("bash")
        .arg("-s")
        .stdin_bytes(script.as_bytes().to_vec());
    if let Some(l) = limit {
        cmd = cmd.timeout(l);
    }
    let out = t.exec(&cmd).await.map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = out.stderr_text();
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!("{}: {}", out.status, tail.join("\n")))
}
