//! When each step of a [`Plan`] may run: the executor's ordering rules, apart
//! from the running of steps itself (`execute`).
//!
//! * **Per-host pipelines.** Each host works through its own steps in plan
//!   order (phase, then task), without waiting for other hosts to finish a
//!   phase; within a phase a host's `service` steps come last, in role order.
//! * **Dependency gates.** A step of role R in phase p waits until every step
//!   of R's ancestor roles (the playbook's `[depends]`) in earlier phases is
//!   finished; a `service` step also waits for those in its own phase, so a
//!   role starts only once the roles it depends on have started and are
//!   healthy. Steps of no role (host scope) never wait for other hosts.
//! * **Ordered bulk transfers.** Uploads of large files share the controller's
//!   CPU and link. They are admitted a few at a time, in the order the hosts'
//!   nodes start, so the first node to start gets its archive first instead of
//!   a quarter of the bandwidth.
//!
//! Waiting is deadlock-free: a step waits only for steps of earlier phases, or
//! of ancestor roles' service steps in its own phase, and each host's sequence
//! puts those before it (the role graph is acyclic).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use tokio::sync::watch;

use super::modules::Action;
use super::plan::{Plan, Step};
use super::playbook::Playbook;

/// An upload at least this large is a bulk transfer (a distribution, not a jar).
pub const BULK_BYTES: u64 = 4 << 20;

/// The static part of the schedule, computed once from the plan.
pub struct Schedule {
    /// Host -> indices into `plan.steps`, in the order the host runs them.
    pub sequences: Vec<(String, Vec<usize>)>,
    /// Step index -> the (role, phase) groups it waits for.
    waits: HashMap<usize, Vec<(String, usize)>>,
    /// Step index -> its bulk-transfer admission key.
    bulk: HashMap<usize, BulkKey>,
    /// Step index -> the restart of the same role it follows.
    after_step: HashMap<usize, usize>,
    finished_steps: Mutex<std::collections::HashSet<usize>>,
    /// Steps not yet finished, per (role, phase).
    remaining: Mutex<HashMap<(String, usize), usize>>,
    progress: watch::Sender<u64>,
    admission: Admission,
}

/// Bulk transfers go in this order: phase, then the host's start rank.
type BulkKey = (usize, usize, String, usize);

impl Schedule {
    pub fn new(pb: &Playbook, plan: &Plan, transfers: usize) -> Schedule {
        let order = pb.role_order().unwrap_or_default();
        let rank_of = |role: &Option<String>| {
            role.as_ref()
                .and_then(|r| order.iter().position(|o| o == r))
                .unwrap_or(usize::MAX)
        };
        let mut host_rank: HashMap<&str, usize> = HashMap::new();
        let mut sequences: Vec<(String, Vec<usize>)> = Vec::new();
        let mut remaining = HashMap::new();
        for (i, step) in plan.steps.iter().enumerate() {
            // A host's rank: when its first node starts (a database role does not count).
            let rank = host_rank.entry(&step.host).or_insert(usize::MAX);
            if step.module.is_service() {
                *rank = (*rank).min(rank_of(&step.role));
            }
            match sequences.iter_mut().find(|(h, _)| *h == step.host) {
                Some((_, seq)) => seq.push(i),
                None => sequences.push((step.host.clone(), vec![i])),
            }
            // Steps of no role count under "", for the steps that wait for all.
            *remaining
                .entry((step.role.clone().unwrap_or_default(), step.phase_index))
                .or_insert(0) += 1;
        }
        for (_, seq) in &mut sequences {
            seq.sort_by_key(|&i| {
                let s = &plan.steps[i];
                let service = s.module.is_service();
                (
                    s.phase_index,
                    service,
                    if service { rank_of(&s.role) } else { 0 },
                )
            });
        }
        let mut waits = HashMap::new();
        let mut bulk = HashMap::new();
        let mut after_step = HashMap::new();
        let mut last_restart: HashMap<&str, usize> = HashMap::new();
        for (i, step) in plan.steps.iter().enumerate() {
            if step.after_all {
                let groups: Vec<(String, usize)> = remaining
                    .keys()
                    .filter(|(_, phase)| *phase < step.phase_index)
                    .cloned()
                    .collect();
                waits.insert(i, groups);
            } else if let Some(role) = &step.role {
                let groups: Vec<(String, usize)> = pb
                    .ancestors(role)
                    .into_iter()
                    .flat_map(|a| {
                        let last = step.phase_index + usize::from(step.module.is_service());
                        (0..last).map(move |p| (a.clone(), p))
                    })
                    .filter(|g| remaining.contains_key(g))
                    .collect();
                if !groups.is_empty() {
                    waits.insert(i, groups);
                }
            }
            // A rolling restart: servers of one role go down one at a time, each
            // after the one before it is healthy again (a first start needs no turn).
            if let Some(role) = &step.role
                && restarts_a_server(step)
                && let Some(before) = last_restart.insert(role, i)
            {
                after_step.insert(i, before);
            }
            if step.verdict.is_change() && has_bulk_upload(step) {
                let key = (
                    step.phase_index,
                    host_rank[step.host.as_str()],
                    step.host.clone(),
                    i,
                );
                bulk.insert(i, key);
            }
        }
        let admission = Admission::new(transfers, bulk.values().cloned());
        Schedule {
            sequences,
            waits,
            bulk,
            after_step,
            finished_steps: Mutex::new(Default::default()),
            remaining: Mutex::new(remaining),
            progress: watch::channel(0).0,
            admission,
        }
    }

    /// Waits until every step this one depends on has finished.
    pub async fn wait_for_dependencies(&self, index: usize) {
        let groups = self.waits.get(&index);
        let before = self.after_step.get(&index);
        if groups.is_none() && before.is_none() {
            return;
        }
        let mut rx = self.progress.subscribe();
        loop {
            rx.borrow_and_update();
            let done = {
                let remaining = self.remaining.lock().unwrap();
                groups
                    .into_iter()
                    .flatten()
                    .all(|g| remaining.get(g).is_none_or(|n| *n == 0))
                    && before.is_none_or(|b| self.finished_steps.lock().unwrap().contains(b))
            };
            if done || rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Records that a step finished (whatever its outcome) and wakes the waiters.
    pub fn finished(&self, step: &Step, index: usize) {
        let group = (step.role.clone().unwrap_or_default(), step.phase_index);
        if let Some(n) = self.remaining.lock().unwrap().get_mut(&group) {
            *n = n.saturating_sub(1);
        }
        self.finished_steps.lock().unwrap().insert(index);
        if let Some(key) = self.bulk.get(&index) {
            self.admission.withdraw(key);
        }
        self.progress.send_modify(|v| *v += 1);
    }

    /// Waits for this step's turn to transfer, when it has a bulk upload.
    pub async fn admit(&self, index: usize) -> Option<BulkPermit<'_>> {
        let key = self.bulk.get(&index)?;
        let admitted = self.admission.acquire(key).await;
        admitted.then(|| BulkPermit {
            admission: &self.admission,
        })
    }
}

pub fn restarts_a_server(step: &Step) -> bool {
    step.verdict.is_change()
        && step
            .actions
            .iter()
            .any(|a| matches!(a, Action::Service(s) if s.restart))
}

fn has_bulk_upload(step: &Step) -> bool {
    step.actions.iter().any(|a| match a {
        Action::Upload { local, .. } => file_len(local) >= BULK_BYTES,
        _ => false,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Admits bulk transfers `limit` at a time, strictly in key order: a transfer
/// waits while an earlier one has not started, even if that one's host is still
/// busy with the steps before it.
struct Admission {
    state: Mutex<AdmissionState>,
    changed: watch::Sender<u64>,
}

struct AdmissionState {
    waiting: BTreeSet<BulkKey>,
    running: usize,
    limit: usize,
}

pub struct BulkPermit<'a> {
    admission: &'a Admission,
}

impl Drop for BulkPermit<'_> {
    fn drop(&mut self) {
        self.admission.state.lock().unwrap().running -= 1;
        self.admission.changed.send_modify(|v| *v += 1);
    }
}

impl Admission {
    fn new(limit: usize, keys: impl Iterator<Item = BulkKey>) -> Admission {
        Admission {
            state: Mutex::new(AdmissionState {
                waiting: keys.collect(),
                running: 0,
                limit: limit.max(1),
            }),
            changed: watch::channel(0).0,
        }
    }

    /// Waits for the key's turn; false when the key is not (or no longer) waiting.
    async fn acquire(&self, key: &BulkKey) -> bool {
        let mut rx = self.changed.subscribe();
        loop {
            rx.borrow_and_update();
            {
                let mut st = self.state.lock().unwrap();
                if st.running < st.limit && st.waiting.first() == Some(key) {
                    st.waiting.remove(key);
                    st.running += 1;
                    drop(st);
                    // The next key may now be first, with room left: wake it.
                    self.changed.send_modify(|v| *v += 1);
                    return true;
                }
                if !st.waiting.contains(key) {
                    return false;
                }
            }
            if rx.changed().await.is_err() {
                return false;
            }
        }
    }

    /// A transfer that will not happen (its step was skipped) stops holding the line.
    fn withdraw(&self, key: &BulkKey) {
        if self.state.lock().unwrap().waiting.remove(key) {
            self.changed.send_modify(|v| *v += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::Verdict;
    use futures_util::FutureExt;

    fn playbook() -> Playbook {
        Playbook::parse(
            "name = 't'\nphase = []\n[depends]\ndatabase = []\nauth = ['database']\napi = ['auth']",
            "t.toml",
        )
        .unwrap()
    }

    fn step(host: &str, role: Option<&str>, phase: usize, module: &str) -> Step {
        Step {
            phase: format!("phase {phase}"),
            task: format!("{module} in phase {phase}"),
            module: module.parse().unwrap(),
            target: role.map_or(host.to_string(), |r| format!("{host}/{r}")),
            host: host.into(),
            role: role.map(str::to_string),
            verdict: Verdict::Change("will change".into()),
            diffs: vec![],
            sql: vec![],
            warnings: vec![],
            actions: vec![],
            phase_index: phase,
            after_all: false,
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            playbook: "t".into(),
            steps,
            facts: Default::default(),
        }
    }

    /// True when the step may run now (its dependency wait completes at once).
    fn may_run(s: &Schedule, index: usize) -> bool {
        s.wait_for_dependencies(index).now_or_never().is_some()
    }

    #[test]
    fn a_start_waits_for_the_roles_it_depends_on_and_nothing_else_does() {
        let p = plan(vec![
            step("app1", None, 0, "copy"),            // 0
            step("app2", None, 0, "copy"),            // 1
            step("db", Some("database"), 1, "mysql"), // 2
            step("app1", Some("auth"), 2, "unpack"),  // 3
            step("app2", Some("api"), 2, "unpack"),   // 4
            step("app1", Some("auth"), 3, "service"), // 5
            step("app2", Some("api"), 3, "service"),  // 6
        ]);
        let s = Schedule::new(&playbook(), &p, 1);
        // Host steps and the database never wait for other hosts.
        assert!(may_run(&s, 0) && may_run(&s, 1) && may_run(&s, 2));
        // Node steps wait for the database phase before them, not for each other.
        assert!(!may_run(&s, 3) && !may_run(&s, 4));
        s.finished(&p.steps[2], 2);
        assert!(
            may_run(&s, 3),
            "the auth node's unpack waits only for the database"
        );
        assert!(
            may_run(&s, 4),
            "the api node's unpack does not wait for the auth node"
        );
        // The auth node's start needs only the database from other hosts (its own
        // unpack comes first in its host's sequence).
        assert!(may_run(&s, 5));
        // The api node starts only after the auth node is done, its start included.
        assert!(!may_run(&s, 6));
        s.finished(&p.steps[3], 3);
        assert!(
            !may_run(&s, 6),
            "the api node waits for the auth node's start"
        );
        s.finished(&p.steps[5], 5);
        assert!(may_run(&s, 6));
    }

    #[test]
    fn an_after_all_step_waits_for_every_earlier_step_of_every_host() {
        let mut last = step("db", Some("database"), 3, "mysql_account");
        last.after_all = true;
        let p = plan(vec![
            step("app1", None, 0, "copy"),            // 0: no role
            step("db", Some("database"), 1, "mysql"), // 1
            step("app1", Some("auth"), 2, "service"), // 2
            last,                                     // 3
        ]);
        let s = Schedule::new(&playbook(), &p, 1);
        for done in 0..3 {
            assert!(!may_run(&s, 3), "runs before step {done} finished");
            s.finished(&p.steps[done], done);
        }
        assert!(may_run(&s, 3));
    }

    #[test]
    fn a_host_runs_its_starts_last_in_each_phase_and_in_role_order() {
        let p = plan(vec![
            step("app1", Some("api"), 0, "unpack"),   // 0
            step("app1", Some("auth"), 0, "unpack"),  // 1
            step("app1", Some("api"), 1, "service"),  // 2
            step("app1", Some("auth"), 1, "service"), // 3
            step("app1", Some("api"), 1, "xml"),      // 4
            step("app1", Some("auth"), 1, "xml"),     // 5
        ]);
        let s = Schedule::new(&playbook(), &p, 1);
        assert_eq!(
            s.sequences,
            vec![("app1".to_string(), vec![0, 1, 4, 5, 3, 2])]
        );
    }

    fn bulk_step(host: &str, role: &str, file: &Path) -> Step {
        let mut s = step(host, Some(role), 0, "copy");
        s.actions = vec![Action::Upload {
            local: file.to_path_buf(),
            remote: "/opt/dist.zip".into(),
            sha256: "0".repeat(64),
            mode: None,
            owner: None,
        }];
        s
    }

    #[test]
    fn bulk_uploads_are_admitted_in_start_order_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("dist.zip");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(BULK_BYTES)
            .unwrap();
        let small = dir.path().join("driver.jar");
        std::fs::write(&small, b"jar").unwrap();
        // Host names sort against the start order: the rank comes from the starts.
        let p = plan(vec![
            bulk_step("app2", "api", &big),   // 0
            bulk_step("app9", "auth", &big),  // 1
            bulk_step("app3", "api", &big),   // 2
            bulk_step("app4", "api", &small), // 3: small, never waits
            step("app2", Some("api"), 1, "service"),
            step("app9", Some("auth"), 1, "service"),
            step("app3", Some("api"), 1, "service"),
        ]);
        let s = Schedule::new(&playbook(), &p, 1);
        assert!(
            s.admit(3).now_or_never().unwrap().is_none(),
            "a small upload is not bulk"
        );
        assert!(
            s.admit(0).now_or_never().is_none(),
            "the auth node's host goes first, though named last"
        );
        let first = s.admit(1).now_or_never().unwrap();
        assert!(first.is_some());
        assert!(
            s.admit(0).now_or_never().is_none(),
            "one transfer at a time"
        );
        drop(first);
        s.finished(&p.steps[1], 1);
        // app2 is next; its step is skipped (say its host failed): app3 must not wait for it.
        assert!(s.admit(2).now_or_never().is_none(), "app2 goes before app3");
        s.finished(&p.steps[0], 0);
        assert!(s.admit(2).now_or_never().unwrap().is_some());
        assert!(
            s.admit(0).now_or_never().unwrap().is_none(),
            "a withdrawn transfer is not admitted"
        );
    }

    #[tokio::test]
    async fn with_room_for_two_the_second_transfer_starts_while_the_first_runs() {
        // should: a transfer that asked first but is second in line starts as soon as
        // the first is admitted (room for two), not when the first finishes.
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("dist.zip");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(BULK_BYTES)
            .unwrap();
        let p = plan(vec![
            bulk_step("app2", "api", &big),  // 0: second in line
            bulk_step("app1", "auth", &big), // 1: first in line
        ]);
        let s = std::sync::Arc::new(Schedule::new(&playbook(), &p, 2));
        let waiting = {
            let s = s.clone();
            tokio::spawn(async move { s.admit(0).await.is_some() })
        };
        tokio::task::yield_now().await;
        let first = s.admit(1).await;
        assert!(first.is_some());
        let second = tokio::time::timeout(std::time::Duration::from_secs(10), waiting).await;
        assert!(
            matches!(second, Ok(Ok(true))),
            "the second transfer was not woken"
        );
        drop(first);
    }
}
