//! The executor: runs a [`Plan`]'s actions, host by host, in the order
//! [`schedule`](super::schedule) allows.
//!
//! * Every host works through its own steps concurrently with the others (at
//!   most `forks` steps run at once); phases order a host's steps, they are not
//!   barriers across hosts.
//! * A step waits only for what it depends on: the earlier steps of the roles
//!   its role depends on, and for a `service` step, their starts too. So a node
//!   starts the moment the nodes it needs are healthy, while later roles' hosts
//!   are still unpacking. Large uploads are admitted in start order.
//! * A failure stops the failed host's remaining steps and the starts of every
//!   role that depends on a role with a failed node. The run goes on elsewhere,
//!   and the recap and exit code say what happened (ripgrep's messages, not abort).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apim_transport::{Cmd, FileWrite, Transport};

use super::modules::{Action, Verdict};
use super::plan::{Plan, Step};
use super::playbook::Playbook;
use super::redact::Redactor;
use super::report::{Event, HostRecap, Reporter};
use super::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// How many steps run at once (each on its own host).
    pub forks: usize,
    /// How many bulk uploads (distributions) stream at once.
    pub transfers: usize,
    /// Set when the operator interrupts the run: no step starts after it, the
    /// running ones finish.
    pub interrupted: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            forks: 16,
            transfers: 1,
            interrupted: Default::default(),
        }
    }
}

/// How the run went.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hosts: Vec<HostRecap>,
    pub ok: bool,
    pub failures: Vec<String>,
    /// Changes never started because the run was interrupted (`target: task`).
    pub pending: Vec<String>,
}

#[derive(Default)]
struct Shared {
    failed_hosts: HashSet<String>,
    failed_roles: HashSet<String>,
    phases_started: HashSet<usize>,
    recap: BTreeMap<String, HostRecap>,
    failures: Vec<String>,
    pending: Vec<String>,
}

type Hosts = HashMap<String, Arc<dyn Transport>>;

/// What one host's pipeline needs; shared by all of them.
struct Run<'a> {
    pb: &'a Playbook,
    plan: &'a Plan,
    hosts: &'a Hosts,
    reporter: &'a Arc<dyn Reporter>,
    redactor: &'a Redactor,
    schedule: Schedule,
    forks: tokio::sync::Semaphore,
    shared: Arc<Mutex<Shared>>,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
}

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
    let run = Run {
        pb,
        plan,
        hosts,
        reporter: &reporter,
        redactor,
        schedule: Schedule::new(pb, plan, opts.transfers),
        forks: tokio::sync::Semaphore::new(opts.forks.max(1)),
        shared: shared.clone(),
        interrupted: opts.interrupted.clone(),
    };
    let pipelines = run
        .schedule
        .sequences
        .iter()
        .map(|(host, seq)| run_host(&run, host, seq));
    futures_util::future::join_all(pipelines).await;
    let sh = shared.lock().unwrap();
    Outcome {
        hosts: sh.recap.values().cloned().collect(),
        ok: sh.failures.is_empty() && sh.pending.is_empty(),
        failures: sh.failures.clone(),
        pending: sh.pending.clone(),
    }
}

/// One host's steps, in order, each when the schedule allows it. Consecutive steps that
/// only write files (a node's configuration) go to the host as one batch: one round trip.
async fn run_host(run: &Run<'_>, host: &str, sequence: &[usize]) {
    let transport = run.hosts.get(host).map(|t| t.as_ref());
    let mut rest = sequence;
    while let Some(&index) = rest.first() {
        let step = &run.plan.steps[index];
        let batch = write_batch(run.plan, rest);
        if batch.len() > 1 {
            run_write_batch(run, batch, transport).await;
            rest = &rest[batch.len()..];
            continue;
        }
        announce_phase(run, step);
        if step.verdict.is_change() && !host_failed(run, step) {
            run.schedule.wait_for_dependencies(index).await;
        }
        if let Some(why) = blocked(run, step) {
            skip(step, why, run.reporter, &run.shared);
        } else {
            let _bulk = run.schedule.admit(index).await;
            let _fork = run.forks.acquire().await;
            run_step(step, transport, run.reporter, run.redactor, &run.shared).await;
        }
        run.schedule.finished(step, index);
        rest = &rest[1..];
    }
}

/// The longest run of steps at the head of `sequence`, in one phase, that only write
/// files or have nothing to do; empty unless it holds at least two writing steps.
fn write_batch<'s>(plan: &Plan, sequence: &'s [usize]) -> &'s [usize] {
    let Some(first) = sequence.first() else {
        return &[];
    };
    let phase = plan.steps[*first].phase_index;
    let len = sequence
        .iter()
        .take_while(|i| {
            let s = &plan.steps[**i];
            s.phase_index == phase && (!s.verdict.is_change() || writes_only(s))
        })
        .count();
    let batch = &sequence[..len];
    let writing = batch
        .iter()
        .filter(|i| writes_only(&plan.steps[**i]))
        .count();
    if writing >= 2 { batch } else { &[] }
}

fn writes_only(step: &Step) -> bool {
    step.verdict.is_change()
        && !step.actions.is_empty()
        && step
            .actions
            .iter()
            .all(|a| matches!(a, Action::Write { .. }))
}

/// Writes the files of several steps in one round trip; each step is then reported as
/// if it had run alone (the one whose file failed fails, later ones are skipped).
async fn run_write_batch(run: &Run<'_>, batch: &[usize], transport: Option<&dyn Transport>) {
    announce_phase(run, &run.plan.steps[batch[0]]);
    let (writing, idle): (Vec<usize>, Vec<usize>) = batch
        .iter()
        .partition(|&&i| run.plan.steps[i].verdict.is_change());
    for &index in &idle {
        let step = &run.plan.steps[index];
        match blocked(run, step) {
            Some(why) => skip(step, why, run.reporter, &run.shared),
            None => run_step(step, transport, run.reporter, run.redactor, &run.shared).await,
        }
        run.schedule.finished(step, index);
    }
    let batch = &writing[..];
    let steps: Vec<&Step> = batch.iter().map(|&i| &run.plan.steps[i]).collect();
    if !host_failed(run, steps[0]) {
        for &index in batch {
            run.schedule.wait_for_dependencies(index).await;
        }
    }
    let result = match blocked(run, steps[0]) {
        Some(why) => Err((0, why.to_string())),
        None => {
            let _fork = run.forks.acquire().await;
            for s in &steps {
                run.reporter.event(&Event::TaskStart {
                    target: s.target.clone(),
                    task: s.task.clone(),
                });
            }
            let started = Instant::now();
            let result = write_files(transport, &steps).await;
            let ms = started.elapsed().as_millis() as u64 / steps.len() as u64;
            let done = result.as_ref().err().map_or(steps.len(), |(n, _)| *n);
            for s in &steps[..done] {
                record(s, Ok(()), ms, run.reporter, run.redactor, &run.shared);
            }
            if let Err((n, error)) = &result {
                record(
                    steps[*n],
                    Err(StepError::cause(error.clone())),
                    ms,
                    run.reporter,
                    run.redactor,
                    &run.shared,
                );
            }
            result.map_err(|(n, _)| (n + 1, "an earlier task failed on this host".into()))
        }
    };
    if let Err((from, why)) = result {
        for s in &steps[from..] {
            skip(s, &why, run.reporter, &run.shared);
        }
    }
    for (&index, s) in batch.iter().zip(&steps) {
        run.schedule.finished(s, index);
    }
}

/// Sends every file the steps write; on failure, the index of the step whose file
/// failed (steps before it are complete) and the error.
async fn write_files(
    transport: Option<&dyn Transport>,
    steps: &[&Step],
) -> Result<(), (usize, String)> {
    let Some(t) = transport else {
        return Err((0, format!("no connection to {}", steps[0].host)));
    };
    let mut owners = Vec::new();
    let files: Vec<FileWrite<'_>> = steps
        .iter()
        .enumerate()
        .flat_map(|(n, s)| s.actions.iter().map(move |a| (n, a)))
        .filter_map(|(n, a)| {
            let file = file_write(a)?;
            owners.push(n);
            Some(file)
        })
        .collect();
    t.write_files_atomic(&files).await.map_err(|e| {
        let failed = &files[e.written.min(files.len() - 1)];
        (
            owners[e.written.min(owners.len() - 1)],
            format!("write {}: {}", failed.path, e.error),
        )
    })
}

fn announce_phase(run: &Run<'_>, step: &Step) {
    if run
        .shared
        .lock()
        .unwrap()
        .phases_started
        .insert(step.phase_index)
    {
        run.reporter.event(&Event::PhaseStart {
            phase: step.phase.clone(),
        });
    }
}

/// Whether an earlier step failed on this step's host (its later steps are skipped at
/// once, without waiting for other hosts).
fn host_failed(run: &Run<'_>, step: &Step) -> bool {
    run.shared.lock().unwrap().failed_hosts.contains(&step.host)
}

/// Why a step must not run: the run was interrupted, its host failed, or (for a
/// start) a role it depends on.
fn blocked(run: &Run<'_>, step: &Step) -> Option<&'static str> {
    let mut sh = run.shared.lock().unwrap();
    if step.verdict.is_change() && run.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        sh.pending.push(format!("{}: {}", step.target, step.task));
        return Some("interrupted before it started");
    }
    if step.after_all
        && step.verdict.is_change()
        && !(sh.failures.is_empty() && sh.failed_hosts.is_empty())
    {
        return Some("a step before it failed (it runs only when all of them succeeded)");
    }
    if sh.failed_hosts.contains(&step.host) {
        // A node left unfinished stops the roles that depend on it, as a failed one does.
        if let Some(role) = &step.role
            && step.verdict.is_change()
        {
            sh.failed_roles.insert(role.clone());
        }
        return Some("an earlier task failed on this host");
    }
    let role = step.role.as_ref()?;
    if crate::schedule::restarts_a_server(step) && sh.failed_roles.contains(role) {
        return Some("a server of its role failed (a rolling restart stops there)");
    }
    let dependency_failed = step.module.is_service()
        && step.verdict.is_change()
        && run
            .pb
            .ancestors(role)
            .iter()
            .any(|a| sh.failed_roles.contains(a));
    if dependency_failed {
        sh.failed_roles.insert(role.clone());
        return Some("a role it depends on failed");
    }
    None
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
        Some(t) => run_actions(t, &step.actions).await,
        None => Err(StepError::NoConnection {
            host: step.host.clone(),
        }),
    };
    let ms = started.elapsed().as_millis() as u64;
    record(step, result, ms, reporter, redactor, shared);
}

/// Reports a step that ran, and counts it in the recap; a failure also stops its host
/// and marks its role failed.
fn record(
    step: &Step,
    result: Result<(), StepError>,
    ms: u64,
    reporter: &Arc<dyn Reporter>,
    redactor: &Redactor,
    shared: &Arc<Mutex<Shared>>,
) {
    let mut sh = shared.lock().unwrap();
    let is_service = step.module.is_service();
    if is_service {
        reporter.event(&Event::Restart {
            target: step.target.clone(),
            healthy: result.is_ok(),
            duration_ms: ms,
        });
    }
    match result {
        Ok(()) => {
            if let Some(r) = sh.recap.get_mut(&step.host) {
                r.changed += 1;
                r.duration_ms += ms;
                r.restarted += usize::from(is_service);
            }
            reporter.event(&Event::TaskEnd {
                target: step.target.clone(),
                task: step.task.clone(),
                verdict: step.verdict.clone(),
                duration_ms: ms,
                diffs: step.diffs.clone(),
            });
        }
        Err(failure) => {
            // The one place a step's failure is masked, for every output it reaches.
            if let StepError::Host { raw, .. } = &failure {
                tracing::debug!(target: "apim::host", "{}: {}: output:\n{}", step.target, step.task, redactor.mask(raw));
            }
            let error = redactor.mask(&failure.to_string());
            if let Some(r) = sh.recap.get_mut(&step.host) {
                r.failed += 1;
                r.duration_ms += ms;
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

async fn run_actions(t: &dyn Transport, actions: &[Action]) -> Result<(), StepError> {
    for a in actions {
        run_action(t, a).await.map_err(|f| f.during(a.describe()))?;
    }
    Ok(())
}

/// Why a step failed, before it is masked and shown (by `record`, the one place).
#[derive(Debug)]
pub enum StepError {
    /// The step's host has no connection.
    NoConnection { host: String },
    /// An action failed: its cause first (one line), the action it was in, the
    /// evidence worth showing (a command's output, a log's error lines), and the raw
    /// output for the debug log.
    Action {
        cause: String,
        action: String,
        evidence: Vec<String>,
        raw: String,
    },
    /// The same, while it is still inside its action.
    Host {
        cause: String,
        evidence: Vec<String>,
        raw: String,
    },
}

impl StepError {
    fn cause(cause: impl Into<String>) -> Self {
        StepError::Host {
            cause: cause.into(),
            evidence: vec![],
            raw: String::new(),
        }
    }

    /// Names the action the failure happened in.
    fn during(self, action: String) -> Self {
        match self {
            StepError::Host {
                cause,
                evidence,
                raw,
            } => StepError::Action {
                cause,
                action,
                evidence,
                raw,
            },
            other => other,
        }
    }
}

impl std::fmt::Display for StepError {
    /// `cause (action)`, then the evidence indented, one line each.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (cause, action, evidence) = match self {
            StepError::NoConnection { host } => return write!(f, "no connection to {host}"),
            StepError::Action {
                cause,
                action,
                evidence,
                ..
            } => (cause, Some(action), evidence),
            StepError::Host {
                cause, evidence, ..
            } => (cause, None, evidence),
        };
        write!(f, "{cause}")?;
        if let Some(a) = action {
            write!(f, " ({a})")?;
        }
        for line in evidence {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

/// The transport's view of a `Write` action (`None` for any other action).
fn file_write(action: &Action) -> Option<FileWrite<'_>> {
    match action {
        Action::Write {
            path,
            bytes,
            mode,
            owner,
        } => Some(FileWrite {
            path,
            bytes,
            mode: *mode,
            owner: owner.clone(),
            was: None,
        }),
        _ => None,
    }
}

async fn run_action(t: &dyn Transport, action: &Action) -> Result<(), StepError> {
    let lost = |e: apim_transport::TransportError| StepError::cause(e.to_string());
    match action {
        Action::Write { .. } => {
            let file = file_write(action).expect("a write");
            t.write_files_atomic(&[file])
                .await
                .map_err(|e| lost(e.error))
        }
        Action::Upload {
            local,
            remote,
            sha256,
            mode,
            owner,
        } => {
            let parent = remote.rsplit_once('/').map_or("/", |(p, _)| p);
            let parent = if parent.is_empty() { "/" } else { parent };
            t.exec_ok(&Cmd::new("mkdir").arg("-p").arg(parent))
                .await
                .map_err(lost)?;
            t.upload(local, remote, sha256, *mode, owner.as_ref())
                .await
                .map_err(lost)
        }
        Action::Script { script, .. } => run_script(t, script, None).await,
        Action::Service(s) => {
            let limit = s.params.timeout_secs + s.params.stop_timeout_secs + 60;
            let cmd = Cmd::new("bash")
                .arg("-s")
                .stdin_bytes(s.script().into_bytes())
                .timeout(Duration::from_secs(limit));
            let out = t.exec(&cmd).await.map_err(lost)?;
            if out.status.success() {
                return Ok(());
            }
            // Cause first, then its evidence (the command's output or the log's
            // error lines), each on its own line.
            let raw = out.stderr_text();
            let (cause, evidence) = super::modules::service::failure(&raw);
            Err(StepError::Host {
                cause,
                evidence,
                raw,
            })
        }
    }
}

/// Runs a bash script sent on stdin (so nothing in it reaches a command line).
async fn run_script(
    t: &dyn Transport,
    script: &str,
    limit: Option<Duration>,
) -> Result<(), StepError> {
    let mut cmd = Cmd::new("bash")
        .arg("-s")
        .stdin_bytes(script.as_bytes().to_vec());
    if let Some(l) = limit {
        cmd = cmd.timeout(l);
    }
    let out = t
        .exec(&cmd)
        .await
        .map_err(|e| StepError::cause(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    let raw = out.stderr_text();
    Err(StepError::Host {
        cause: host_failure(&out.status.to_string(), &raw),
        evidence: vec![],
        raw,
    })
}

/// Causes a host reports in its own words, as operators search for them; the
/// first one found in a failed script's output leads the error.
const KNOWN_CAUSES: &[&str] = &[
    "No space left on device",
    "Disk quota exceeded",
    "Read-only file system",
    "Permission denied",
    "Operation not permitted",
    "command not found",
    "Cannot allocate memory",
    "Too many open files",
];

/// One line, cause first: a known cause from the output, else its last line.
/// The raw output goes to the debug log (`-v`, masked), never into the line.
fn host_failure(status: &str, stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let known = KNOWN_CAUSES.iter().find_map(|cause| {
        lines
            .iter()
            .find(|l| l.contains(cause))
            .map(|_| cause.to_lowercase())
    });
    match (known, lines.last()) {
        (Some(cause), _) => cause,
        (None, Some(last)) => format!("{last} ({status})"),
        (None, None) => format!("failed with {status} and no output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Kind;

    #[test]
    fn a_host_failure_is_one_line_with_the_cause_first() {
        let traceback = "Traceback (most recent call last):\n  File \"<stdin>\", line 7\n\
                         OSError: [Errno 28] No space left on device: '/opt/x'\n";
        assert_eq!(
            host_failure("exit status: 1", traceback),
            "no space left on device"
        );
        assert_eq!(
            host_failure(
                "exit status: 2",
                "warming up\nmv: cannot move: Directory not empty\n"
            ),
            "mv: cannot move: Directory not empty (exit status: 2)"
        );
        assert_eq!(
            host_failure("exit status: 9", "  \n"),
            "failed with exit status: 9 and no output"
        );
        let failed =
            StepError::cause("no space left on device").during("unpack a.zip into /opt/x".into());
        assert_eq!(
            failed.to_string(),
            "no space left on device (unpack a.zip into /opt/x)"
        );
        let died = StepError::Host {
            cause: "the server died".into(),
            evidence: vec!["x ERROR y".into()],
            raw: "raw".into(),
        }
        .during("start /opt/x".into());
        assert_eq!(
            died.to_string(),
            "the server died (start /opt/x)\n  x ERROR y"
        );
        assert_eq!(
            StepError::NoConnection { host: "h".into() }.to_string(),
            "no connection to h"
        );
    }
    use apim_transport::LocalTransport;
    use std::path::Path;

    /// Keeps `target verdict` per finished step.
    #[derive(Default)]
    struct Verdicts(Mutex<Vec<String>>);

    impl Reporter for Verdicts {
        fn event(&self, e: &Event) {
            let line = match e {
                Event::TaskEnd {
                    target,
                    verdict: Verdict::Skipped(why),
                    ..
                } => format!("{target} skipped: {why}"),
                Event::TaskEnd { target, .. } => format!("{target} done"),
                Event::TaskFailed { target, error, .. } => format!("{target} failed: {error}"),
                _ => return,
            };
            self.0.lock().unwrap().push(line);
        }
    }

    fn write_step(target: &str, phase: usize, path: &Path) -> Step {
        Step {
            phase: format!("phase {phase}"),
            task: format!("write {target}"),
            module: Kind::Xml,
            target: target.into(),
            host: "local".into(),
            role: None,
            verdict: Verdict::Change("will write".into()),
            diffs: vec![],
            sql: vec![],
            warnings: vec![],
            actions: vec![Action::Write {
                path: path.to_str().unwrap().into(),
                bytes: target.as_bytes().to_vec(),
                mode: None,
                owner: None,
            }],
            phase_index: phase,
            after_all: false,
        }
    }

    /// Executes `steps` with `depends` as the playbook's role graph; each host name in
    /// `hosts` is this machine. Returns what each step came to, in event order.
    async fn run(depends: &str, steps: Vec<Step>, hosts: &[&str]) -> (Vec<String>, Outcome) {
        let pb = Playbook::parse(
            &format!("name = 't'\nphase = []\n[depends]\n{depends}"),
            "t.toml",
        )
        .unwrap();
        let plan = Plan {
            playbook: "t".into(),
            steps,
            facts: Default::default(),
        };
        let local = Arc::new(LocalTransport::new().named("local")) as Arc<dyn Transport>;
        let hosts: Hosts = hosts
            .iter()
            .map(|h| (h.to_string(), local.clone()))
            .collect();
        let verdicts = Arc::new(Verdicts::default());
        let outcome = execute(
            &pb,
            &plan,
            &hosts,
            verdicts.clone(),
            &Redactor::default(),
            &ExecOptions::default(),
        )
        .await;
        let lines = verdicts.0.lock().unwrap().clone();
        (lines, outcome)
    }

    #[tokio::test]
    async fn a_failed_write_in_a_batch_fails_its_step_and_stops_the_host() {
        // should: the batch's steps are reported one by one: written before the failing
        // file, failed at it, skipped after it and in later phases; the run fails.
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let steps = vec![
            write_step("a", 0, &path("a")),
            write_step("b", 0, &path("missing/b")),
            write_step("c", 0, &path("c")),
            write_step("d", 1, &path("d")),
        ];
        let (lines, outcome) = run("", steps, &["local"]).await;
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0], "a done");
        assert!(
            lines[1].starts_with("b failed: write ") && lines[1].contains("missing/b"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "c skipped: an earlier task failed on this host");
        assert_eq!(lines[3], "d skipped: an earlier task failed on this host");
        assert_eq!(std::fs::read(path("a")).unwrap(), b"a");
        assert!(!path("c").exists() && !path("d").exists());
        assert!(!outcome.ok);
        let recap = &outcome.hosts[0];
        assert_eq!((recap.changed, recap.failed, recap.skipped), (1, 1, 2));
    }

    #[tokio::test]
    async fn a_node_left_unfinished_by_its_host_stops_the_roles_that_depend_on_it() {
        // should: the auth node's host fails a host step, so the auth node is never
        // configured; the api node (another host) must not start without it.
        let dir = tempfile::tempdir().unwrap();
        let mut host_step = write_step("auth-host", 0, &dir.path().join("missing/x"));
        host_step.host = "auth-host".into();
        let mut auth = write_step("auth-host/auth", 1, &dir.path().join("auth"));
        auth.host = "auth-host".into();
        auth.role = Some("auth".into());
        let mut api = write_step("api-host/api", 2, &dir.path().join("api"));
        api.host = "api-host".into();
        api.role = Some("api".into());
        api.module = Kind::Service;
        let (lines, outcome) = run(
            "auth = []\napi = ['auth']",
            vec![host_step, auth, api],
            &["auth-host", "api-host"],
        )
        .await;
        assert!(
            lines.contains(&"api-host/api skipped: a role it depends on failed".to_string()),
            "{lines:#?}"
        );
        assert!(!dir.path().join("api").exists(), "the api step ran");
        assert!(!outcome.ok);
    }
}
