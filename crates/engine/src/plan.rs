//! The planner: every task of the playbook, for every target it applies to,
//! decided against the probed and planned state of its host.
//!
//! A [`Plan`] is a value (pyinfra, Terraform): `plan` prints it, `apply` prints
//! progress while it executes the very same value. Planning only reads: one
//! probe per host, run concurrently.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apim_transport::{Cmd, Transport};
use serde::Serialize;

use super::modules::{self, Action, FileDiff, Kind, TaskCtx, Verdict};
use super::playbook::{Playbook, Scope, Task};
use super::probe::{self, Fact};
use super::redact::Redactor;
use super::state::HostState;
use super::template::Renderer;
use super::{Run, Target};

/// One task on one target, decided.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub phase: String,
    pub task: String,
    pub module: Kind,
    pub target: String,
    pub host: String,
    pub role: Option<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diffs: Vec<FileDiff>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sql: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub actions: Vec<Action>,
    #[serde(skip)]
    pub phase_index: usize,
    /// Waits for every earlier step on every host and runs only if none failed.
    #[serde(skip)]
    pub after_all: bool,
}

/// The decided playbook: steps in execution order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub playbook: String,
    pub steps: Vec<Step>,
    /// What each host's probe answered: the facts every step was decided on.
    #[serde(skip)]
    pub facts: BTreeMap<String, probe::Facts>,
}

impl Plan {
    pub fn changes(&self) -> usize {
        self.steps.iter().filter(|s| s.verdict.is_change()).count()
    }

    /// The plan as the documented JSON document (docs/plan-json.md).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema": "apim-deploy.plan/1",
            "playbook": self.playbook,
            "changes": self.changes(),
            "steps": self.steps,
            "restarts": self.restarts().iter().map(|s| &s.target).collect::<Vec<_>>(),
        })
    }

    /// The nodes that would be (re)started, in order.
    pub fn restarts(&self) -> Vec<&Step> {
        self.steps
            .iter()
            .filter(|s| s.module.is_service() && s.verdict.is_change())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{target}: task `{task}`: {message}")]
    Task {
        target: String,
        task: String,
        message: String,
    },
    #[error("{host}: probe failed: {message}")]
    Probe { host: String, message: String },
    #[error("{host}: no connection for this host")]
    NoTransport { host: String },
    /// Every task that could not be decided, so one plan names every host to fix.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<PlanError>),
}

/// A task, rendered for one target, not yet decided.
struct Pending<'a> {
    phase_index: usize,
    phase: &'a str,
    scope: Scope,
    task: &'a Task,
    /// The task's name, with the loop item's for looped tasks.
    name: String,
    target: &'a Target,
    params: toml::Table,
    /// Which of the task's loop items this is.
    item: usize,
    /// Rendered with the provisional `registered` values (rendered again if the
    /// decisions export others).
    read_registered: bool,
}

/// Plans a run: render, probe (one round trip per host), decide.
pub async fn make_plan(
    pb: &Playbook,
    run: &Run,
    hosts: &HashMap<String, Arc<dyn Transport>>,
) -> Result<Plan, PlanError> {
    let pending = render_all(pb, run)?;
    let facts = probe_all(&pending, hosts).await?;
    let mut states: HashMap<String, HostState> = facts
        .into_iter()
        .map(|(h, f)| {
            let mut state = HostState::new(f);
            state.skip_checks = run.skip_checks.clone();
            (h, state)
        })
        .collect();
    let mut plan = decide_all(pb, run, pending, &mut states)?;
    plan.facts = states.into_iter().map(|(h, s)| (h, s.facts)).collect();
    Ok(plan)
}

fn targets(run: &Run, scope: Scope) -> Vec<&Target> {
    match scope {
        Scope::Host => run.hosts.iter().collect(),
        Scope::Database => run.database.iter().collect(),
        Scope::Node => run.nodes.iter().collect(),
    }
}

fn render_all<'a>(pb: &'a Playbook, run: &'a Run) -> Result<Vec<Pending<'a>>, PlanError> {
    let renderer = Renderer::new();
    let mut out = Vec::new();
    // What registering tasks export before their host is probed: later tasks are
    // rendered with it, so their questions join the same probe.
    let mut registered = serde_json::Map::new();
    // Registering tasks whose host `--limit` leaves out: what they would export is unknown.
    let mut left_out: Vec<&Task> = Vec::new();
    for (phase_index, phase) in pb.phases.iter().enumerate() {
        for task in &phase.tasks {
            if task.register.is_some() && targets(run, phase.scope).is_empty() {
                left_out.push(task);
            }
            for target in targets(run, phase.scope) {
                let extra = registered_vars(&registered);
                let rendered = render_task_with(&renderer, task, target, &run.redactor, &extra)
                    .map_err(|e| explain_left_out(e, &left_out))?;
                for (item, Rendered { name, params }) in rendered.into_iter().enumerate() {
                    if let Some(key) = &task.register {
                        let exports = modules::provisional_exports(task.module, &params)
                            .map_err(|e| task_error(target, &name, &run.redactor, e.0))?
                            .ok_or_else(|| {
                                task_error(
                                    target,
                                    &name,
                                    &run.redactor,
                                    format!("module `{}` exports nothing to register", task.module),
                                )
                            })?;
                        registered.insert(key.clone(), exports.into());
                    }
                    out.push(Pending {
                        phase_index,
                        phase: &phase.name,
                        scope: phase.scope,
                        task,
                        name,
                        target,
                        params,
                        item,
                        read_registered: extra.is_some(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A task that reads what a task left out by `--limit` would register fails with the way
/// out, not with an undefined template value.
fn explain_left_out(e: PlanError, left_out: &[&Task]) -> PlanError {
    match e {
        PlanError::Task {
            target,
            task,
            message,
        } if message.contains("registered") && !left_out.is_empty() => {
            let names: Vec<String> = left_out.iter().map(|t| format!("`{}`", t.name)).collect();
            PlanError::Task {
                target,
                task,
                message: format!(
                    "it reads what {} decides on a host that --limit leaves out: add that host \
                     (the database host) to --limit ({message})",
                    names.join(", ")
                ),
            }
        }
        other => other,
    }
}

/// The `registered` template variable, once a task has registered something.
fn registered_vars(
    registered: &serde_json::Map<String, serde_json::Value>,
) -> Option<serde_json::Value> {
    (!registered.is_empty()).then(|| serde_json::Value::Object(registered.clone()))
}

fn task_error(target: &Target, task: &str, redactor: &Redactor, message: String) -> PlanError {
    PlanError::Task {
        target: target.label.clone(),
        task: task.to_string(),
        message: redactor.mask(&message),
    }
}

/// A task rendered for one target (once per loop item).
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The task's name, with the loop item's for looped tasks.
    pub name: String,
    pub params: toml::Table,
}

/// Renders one task for one target: nothing when the task's role filter or `when`
/// leaves the target out, else one [`Rendered`] per loop item (one without a loop).
/// The planner's only way from a task to parameters; `status` and `restart` read a
/// node's `service` task through it too, so they see what `apply` would use.
pub fn render_task(
    renderer: &Renderer,
    task: &Task,
    target: &Target,
    redactor: &Redactor,
) -> Result<Vec<Rendered>, PlanError> {
    render_task_with(renderer, task, target, redactor, &None)
}

/// [`render_task`] with the `registered` variable of the tasks decided before.
fn render_task_with(
    renderer: &Renderer,
    task: &Task,
    target: &Target,
    redactor: &Redactor,
    registered: &Option<serde_json::Value>,
) -> Result<Vec<Rendered>, PlanError> {
    let with_registered;
    let vars = match registered {
        Some(r) => {
            let mut vars = target.vars.clone();
            if let serde_json::Value::Object(m) = &mut vars {
                m.insert("registered".into(), r.clone());
            }
            with_registered = vars;
            &with_registered
        }
        None => &target.vars,
    };
    if !task.roles.is_empty() && !target.role.as_ref().is_some_and(|r| task.roles.contains(r)) {
        return Ok(vec![]);
    }
    let fail = |message: String| PlanError::Task {
        target: target.label.clone(),
        task: task.name.clone(),
        message: redactor.mask(&message),
    };
    if let Some(when) = &task.when
        && !renderer
            .truthy(when, vars)
            .map_err(|e| fail(e.to_string()))?
    {
        return Ok(vec![]);
    }
    let items = match &task.loop_over {
        None => vec![None],
        Some(expr) => renderer
            .list(expr, vars)
            .map_err(|e| fail(e.to_string()))?
            .into_iter()
            .map(Some)
            .collect(),
    };
    let mut out = Vec::new();
    for item in items {
        let (vars, name) = match item {
            None => (vars.clone(), task.name.clone()),
            Some(item) => {
                let label = item
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| item.to_string());
                let mut vars = vars.clone();
                if let serde_json::Value::Object(m) = &mut vars {
                    m.insert("item".into(), item);
                }
                (vars, format!("{} [{label}]", task.name))
            }
        };
        let params = renderer
            .render_table(&task.params, &vars)
            .map_err(|e| fail(e.to_string()))?;
        out.push(Rendered { name, params });
    }
    Ok(out)
}

async fn probe_all(
    pending: &[Pending<'_>],
    hosts: &HashMap<String, Arc<dyn Transport>>,
) -> Result<HashMap<String, probe::Facts>, PlanError> {
    let mut questions: BTreeMap<String, Vec<Fact>> = BTreeMap::new();
    let mut askers: BTreeMap<String, BTreeMap<Fact, String>> = BTreeMap::new();
    for p in pending {
        let qs = modules::questions(p.task.module, &p.params).map_err(|e| PlanError::Task {
            target: p.target.label.clone(),
            task: p.name.clone(),
            message: e.to_string(),
        })?;
        let list = questions.entry(p.target.host.clone()).or_default();
        let asked_by = askers.entry(p.target.host.clone()).or_default();
        for q in qs {
            asked_by
                .entry(q.clone())
                .or_insert_with(|| format!("{}: {}", p.target.label, p.name));
            if !list.contains(&q) {
                list.push(q);
            }
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for (host, qs) in questions {
        let transport = hosts
            .get(&host)
            .cloned()
            .ok_or_else(|| PlanError::NoTransport { host: host.clone() })?;
        set.spawn(async move {
            let result = probe_host(transport.as_ref(), &qs).await;
            (host, result)
        });
    }
    let mut all = HashMap::new();
    while let Some(joined) = set.join_next().await {
        let (host, result) = joined.expect("probe task panicked");
        let mut facts = result.map_err(|message| PlanError::Probe {
            host: host.clone(),
            message,
        })?;
        facts.asked_by = askers.remove(&host).unwrap_or_default();
        all.insert(host, facts);
    }
    Ok(all)
}

/// One round trip: the probe script goes on stdin (it may hold credentials).
pub async fn probe_host(t: &dyn Transport, questions: &[Fact]) -> Result<probe::Facts, String> {
    let cmd = Cmd::new("bash")
        .arg("-s")
        .stdin_bytes(probe::script(questions));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let sent = now();
    let out = t.exec(&cmd).await.map_err(|e| e.to_string())?;
    let answered = now();
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, out.stderr_text().trim()));
    }
    let mut facts = probe::parse(questions, &out.stdout)?;
    facts.asked_at = Some((sent + answered) / 2.0);
    Ok(facts)
}

/// The exports of the registering tasks decided so far, and whether any differs from
/// what the tasks were rendered with.
#[derive(Default)]
struct Registered {
    values: serde_json::Map<String, serde_json::Value>,
    differ: bool,
}

impl Registered {
    fn record(
        &mut self,
        key: &str,
        p: &Pending<'_>,
        exports: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), PlanError> {
        let provisional = modules::provisional_exports(p.task.module, &p.params)
            .map_err(|e| PlanError::Task {
                target: p.target.label.clone(),
                task: p.name.clone(),
                message: e.0,
            })?
            .unwrap_or_default();
        self.differ |= exports != provisional;
        self.values.insert(key.to_string(), exports.into());
        Ok(())
    }

    /// Renders a task again with the decided exports when they differ from the
    /// provisional ones. Its questions must not change: they were asked already.
    fn render_again(&self, run: &Run, p: &mut Pending<'_>) -> Result<(), PlanError> {
        if !self.differ || !p.read_registered {
            return Ok(());
        }
        let vars = Some(serde_json::Value::Object(self.values.clone()));
        let rendered = render_task_with(&Renderer::new(), p.task, p.target, &run.redactor, &vars)?;
        let fail = |message: String| task_error(p.target, &p.name, &run.redactor, message);
        let again = rendered
            .into_iter()
            .nth(p.item)
            .ok_or_else(|| fail("its loop changed with the registered values".into()))?;
        let asked = modules::questions(p.task.module, &p.params).map_err(|e| fail(e.0))?;
        let now = modules::questions(p.task.module, &again.params).map_err(|e| fail(e.0))?;
        if asked != now {
            return Err(fail(
                "what it asks its host depends on a registered value; only its parameters may"
                    .into(),
            ));
        }
        p.params = again.params;
        Ok(())
    }
}

fn decide_all(
    pb: &Playbook,
    run: &Run,
    pending: Vec<Pending<'_>>,
    states: &mut HashMap<String, HostState>,
) -> Result<Plan, PlanError> {
    // node label -> what changed on it (for `notify = ["restart"]`)
    let mut notified: HashMap<String, Vec<String>> = HashMap::new();
    let mut marked: std::collections::HashSet<String> = Default::default();
    let mut steps = Vec::new();
    let mut errors: Vec<(String, String, PlanError)> = Vec::new();
    let mut registered = Registered::default();
    for mut p in pending {
        if let Err(e) = registered.render_again(run, &mut p) {
            errors.push((p.target.host.clone(), e.to_string(), e));
            continue;
        }
        let state = states.entry(p.target.host.clone()).or_default();
        let fail = |message: String| PlanError::Task {
            target: p.target.label.clone(),
            task: p.name.clone(),
            message: run.redactor.mask(&message),
        };
        let decided = if p.task.module.is_service() {
            let why = notified.get(&p.target.label).cloned().unwrap_or_default();
            modules::params(p.task.module, &p.params)
                .and_then(|params| modules::service::decide_with(&params, state, &why))
        } else {
            let ctx = TaskCtx {
                params: &p.params,
                archive: run.archive.as_ref(),
                redactor: &run.redactor,
            };
            modules::decide(p.task.module, &ctx, state)
        };
        let decision = match decided {
            Ok(d) => d,
            Err(e) => {
                // Go on deciding: the plan then names every target that needs a fix.
                // A node repeating its host's error adds nothing.
                let message = run.redactor.mask(&e.0);
                if !errors
                    .iter()
                    .any(|(h, m, _)| *h == p.target.host && *m == message)
                {
                    errors.push((p.target.host.clone(), message, fail(e.0)));
                }
                continue;
            }
        };
        if let Some(key) = &p.task.register
            && let Err(e) = registered.record(key, &p, decision.exports.clone())
        {
            errors.push((p.target.host.clone(), e.to_string(), e));
        }
        let mut actions = decision.actions;
        if decision.verdict.is_change() && p.scope == Scope::Node && !p.task.notify.is_empty() {
            notified
                .entry(p.target.label.clone())
                .or_default()
                .push(p.name.clone());
            // Record "restart pending" on the node before its first change, so a
            // run that dies before the restart is finished by the next run.
            if let Some(dir) = p.target.vars.pointer("/node/dir").and_then(|d| d.as_str())
                && marked.insert(p.target.label.clone())
            {
                let mark = Action::Write {
                    path: modules::service::pending_marker(dir),
                    bytes: format!("{}\n", p.name).into_bytes(),
                    mode: Some(0o644),
                    owner: None,
                };
                // A node this very task unpacks has no directory yet (and no
                // server to restart): mark it right after the unpack.
                if state.will_unpack(dir) {
                    actions.push(mark);
                } else {
                    actions.insert(0, mark);
                }
            }
        }
        steps.push(Step {
            phase: p.phase.to_string(),
            task: p.name.clone(),
            module: p.task.module,
            target: p.target.label.clone(),
            host: p.target.host.clone(),
            role: p.target.role.clone(),
            verdict: decision.verdict,
            diffs: decision.diffs,
            sql: decision.sql,
            warnings: decision.warnings,
            actions,
            phase_index: p.phase_index,
            after_all: p.task.after_all,
        });
    }
    match errors.len() {
        0 => Ok(Plan {
            playbook: pb.name.clone(),
            steps,
            facts: BTreeMap::new(),
        }),
        1 => Err(errors.pop().expect("one error").2),
        _ => Err(PlanError::Many(
            errors.into_iter().map(|(_, _, e)| e).collect(),
        )),
    }
}
