//! Saved plans (Terraform's `plan -out` / `apply PLANFILE`): what a plan saw and
//! decided, written to a file, so that a later run does exactly that or nothing.
//!
//! A plan's actions hold rendered files, secrets included, so a saved plan does not
//! keep them. It keeps what identifies the plan: its inputs (named values the caller
//! gives: file digests, flags), every fact the plan decided on and every step's
//! actions, each as a *print*: an HMAC-SHA256 keyed by a random salt stored in the
//! file together with every secret value of the run. Checking a guess of a secret
//! against a print therefore needs every secret at once, and the file alone says
//! nothing about any of them. The run that applies the file re-plans with the
//! secrets resolved again and is held to the saved one: same inputs, same facts,
//! same steps with the same actions, else nothing runs. Re-planning does not
//! weaken "exactly that plan": any difference from it is refused.
//!
//! Format: docs/saved-plans.md (schema `apim-deploy.saved-plan/1`).

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::modules::{Action, Verdict};
use super::plan::Plan;
use super::probe::{Answer, Fact};
use super::redact::Redactor;

/// The schema name and version a saved plan carries.
pub const SCHEMA: &str = "apim-deploy.saved-plan/1";

/// How many differences a stale plan names before it summarises the rest.
const SHOWN: usize = 12;

/// A saved plan, as written to and read from its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    pub schema: String,
    /// Hex; with the run's secrets, the key of every print in this file.
    pub salt: String,
    /// What the plan was made from (name -> value or digest), compared by name.
    pub inputs: BTreeMap<String, String>,
    /// The prints of the run's secrets as a whole.
    pub secrets: String,
    /// Per host, every fact the plan decided on.
    pub facts: BTreeMap<String, Vec<SavedFact>>,
    /// Every step, in execution order.
    pub steps: Vec<SavedStep>,
    /// The plan as `plan --json` shows it (docs/plan-json.md), for review: secrets masked.
    pub plan: serde_json::Value,
}

/// One fact as the plan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFact {
    /// What was asked, for messages: a path, or a command's first line (masked).
    pub what: String,
    /// The print of the question.
    pub question: String,
    /// The print of the answer; `absent` for a file that was not there.
    pub answer: String,
}

/// One step as the plan decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedStep {
    pub target: String,
    pub task: String,
    /// `ok`, `change` or `skipped`.
    pub verdict: String,
    /// Per action: its description and the print of what it does.
    pub actions: Vec<String>,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("{0}")]
    Unreadable(String),
    #[error("this saved plan was made for {0}; make a new plan")]
    OtherInputs(String),
    #[error("stale plan: {0}\nnothing was changed; make a new plan")]
    Stale(String),
}

/// The key of a file's prints: its salt and every secret of the run.
struct Printer {
    key: Vec<u8>,
}

impl Printer {
    fn new(salt: &str, redactor: &Redactor) -> Self {
        let mut secrets: Vec<&String> = redactor.secrets().iter().collect();
        secrets.sort();
        let mut h = Sha256::new();
        h.update(b"apim-deploy saved plan key\0");
        h.update(salt.as_bytes());
        for s in secrets {
            // Length-prefixed, so two secret lists never run together the same way.
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        Printer {
            key: h.finalize().to_vec(),
        }
    }

    fn print(&self, parts: &[&[u8]]) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes a key of any length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    fn fact(
        &self,
        host: &str,
        (fact, answer): (&Fact, &Answer),
        asked_by: Option<&String>,
        redactor: &Redactor,
    ) -> SavedFact {
        // Whole values, not chosen fields: whatever a probe answers about a file (its
        // owner and mode too, once asked) is held to the plan without naming it here.
        let answer = match answer {
            Answer::Missing => "absent".to_string(),
            // File contents as they are: a Debug text of their bytes is four times longer.
            Answer::Bytes(b) => self.print(&[b"bytes", b]),
            other => self.print(&[format!("{other:?}").as_bytes()]),
        };
        SavedFact {
            what: describe_fact(fact, asked_by, redactor),
            question: self.print(&[host.as_bytes(), format!("{fact:?}").as_bytes()]),
            answer,
        }
    }

    fn action(&self, action: &Action) -> String {
        let print = match action {
            Action::Write {
                path,
                bytes,
                mode,
                owner,
            } => self.print(&[
                b"write",
                path.as_bytes(),
                bytes,
                format!("{mode:?}").as_bytes(),
                format!("{owner:?}").as_bytes(),
            ]),
            Action::Upload {
                remote,
                sha256,
                owner,
                ..
            } => self.print(&[
                b"upload",
                remote.as_bytes(),
                sha256.as_bytes(),
                format!("{owner:?}").as_bytes(),
            ]),
            Action::Script { script, .. } => self.print(&[b"script", script.as_bytes()]),
            // A start is what its node's settings (inventory and playbook, both compared
            // as inputs) make it; its timeout is `apply`'s own flag, not the plan's.
            Action::Service(s) => self.print(&[b"service", s.describe().as_bytes()]),
        };
        format!("{} {print}", action.describe())
    }

    fn step(&self, step: &super::plan::Step) -> SavedStep {
        SavedStep {
            target: step.target.clone(),
            task: step.task.clone(),
            verdict: verdict_name(&step.verdict).to_string(),
            actions: step.actions.iter().map(|a| self.action(a)).collect(),
        }
    }
}

fn verdict_name(v: &Verdict) -> &'static str {
    match v {
        Verdict::Ok(_) => "ok",
        Verdict::Change(_) => "change",
        Verdict::Skipped(_) => "skipped",
    }
}

/// A question as messages name it: the path, or the task that asked (else a command's
/// first word, masked).
fn describe_fact(fact: &Fact, asked_by: Option<&String>, redactor: &Redactor) -> String {
    match (fact, asked_by) {
        (Fact::File(p), _) => p.clone(),
        (Fact::Sha256(p), _) => format!("{p} (digest)"),
        (Fact::Attrs(p), _) => format!("{p} (owner and mode)"),
        (Fact::Shell(_), Some(task)) => format!("what `{}` asked", redactor.mask(task)),
        // Only the command's first word: the rest may hold a credential in a form
        // the masking does not know (an option file's `password=...` line, cut short).
        (Fact::Shell(s), None) => {
            let word = s
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .and_then(|l| l.split([' ', '=', ';']).next())
                .unwrap_or_default();
            format!("the answer of `{} ...`", redactor.mask(word))
        }
    }
}

fn new_salt() -> Result<String, SavedPlanError> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| SavedPlanError::Unreadable(format!("no random salt (/dev/urandom): {e}")))?;
    Ok(hex::encode(b))
}

impl SavedPlan {
    /// Saves `plan`, made from `inputs`, with the run's secrets in `redactor`.
    pub fn new(
        plan: &Plan,
        inputs: BTreeMap<String, String>,
        redactor: &Redactor,
    ) -> Result<Self, SavedPlanError> {
        let salt = new_salt()?;
        let printer = Printer::new(&salt, redactor);
        Ok(SavedPlan {
            schema: SCHEMA.to_string(),
            secrets: printer.print(&[b"secrets"]),
            facts: saved_facts(&printer, plan, redactor),
            steps: plan.steps.iter().map(|s| printer.step(s)).collect(),
            plan: plan.to_json(),
            salt,
            inputs,
        })
    }

    /// Reads a saved plan, refusing another schema or version and a damaged file.
    pub fn parse(bytes: &[u8]) -> Result<Self, SavedPlanError> {
        let bad =
            |why: String| SavedPlanError::Unreadable(format!("not a usable saved plan: {why}"));
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("{e} (a truncated or damaged file?)")))?;
        match value.get("schema").and_then(|s| s.as_str()) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(bad(format!(
                    "its schema is `{other}`; this apim-deploy reads `{SCHEMA}`"
                )));
            }
            None => return Err(bad("it names no schema".into())),
        }
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))
    }

    /// The file's bytes: pretty JSON, one trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a saved plan serializes");
        out.push(b'\n');
        out
    }

    /// Refuses a plan made from other inputs or other secrets, naming each difference.
    pub fn check_inputs(
        &self,
        inputs: &BTreeMap<String, String>,
        redactor: &Redactor,
    ) -> Result<(), SavedPlanError> {
        let mut differ = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.inputs.keys().chain(inputs.keys()).collect();
        for name in names {
            let (was, now) = (self.inputs.get(name), inputs.get(name));
            if was != now {
                let show = |v: Option<&String>| v.map_or("(none)".to_string(), |v| short(v));
                differ.push(format!(
                    "another {name} ({} in the plan, {} now)",
                    show(was),
                    show(now)
                ));
            }
        }
        if Printer::new(&self.salt, redactor).print(&[b"secrets"]) != self.secrets {
            differ.push("other secret values".into());
        }
        match differ.is_empty() {
            true => Ok(()),
            false => Err(SavedPlanError::OtherInputs(differ.join(", "))),
        }
    }

    /// Holds a fresh plan of the same inputs to this one: every fact the saved plan
    /// saw must be unchanged and every step the same, else [`SavedPlanError::Stale`]
    /// names what changed since.
    pub fn check_plan(&self, plan: &Plan, redactor: &Redactor) -> Result<(), SavedPlanError> {
        let printer = Printer::new(&self.salt, redactor);
        let mut changed = fact_changes(&self.facts, &saved_facts(&printer, plan, redactor));
        let now: Vec<SavedStep> = plan.steps.iter().map(|s| printer.step(s)).collect();
        changed.extend(step_changes(&self.steps, &now));
        if changed.is_empty() {
            return Ok(());
        }
        let more = changed.len().saturating_sub(SHOWN);
        changed.truncate(SHOWN);
        if more > 0 {
            changed.push(format!("and {more} more"));
        }
        Err(SavedPlanError::Stale(changed.join("\n  ")))
    }
}

/// The facts a plan decided on, per host, without those that change by themselves.
fn saved_facts(
    printer: &Printer,
    plan: &Plan,
    redactor: &Redactor,
) -> BTreeMap<String, Vec<SavedFact>> {
    plan.facts
        .iter()
        .map(|(host, facts)| {
            let saved = facts
                .answers()
                .filter(|(q, _)| !q.is_volatile())
                .map(|(q, a)| printer.fact(host, (q, a), facts.asked_by.get(q), redactor))
                .collect();
            (host.clone(), saved)
        })
        .collect()
}

fn short(print: &str) -> String {
    print.chars().take(12).collect()
}

/// Every saved fact whose answer differs now (or that was not asked again).
fn fact_changes(
    saved: &BTreeMap<String, Vec<SavedFact>>,
    now: &BTreeMap<String, Vec<SavedFact>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (host, facts) in saved {
        let current = now.get(host).map(Vec::as_slice).unwrap_or_default();
        for f in facts {
            let Some(c) = current.iter().find(|c| c.question == f.question) else {
                out.push(format!("{host}: {} was not asked again", f.what));
                continue;
            };
            if c.answer != f.answer {
                let show = |a: &str| match a {
                    "absent" => "absent".to_string(),
                    print => format!("print {}", short(print)),
                };
                out.push(format!(
                    "{host}: {} changed since the plan ({} -> {})",
                    f.what,
                    show(&f.answer),
                    show(&c.answer)
                ));
            }
        }
    }
    out
}

/// Every step that is no longer decided the way the saved plan decided it.
fn step_changes(saved: &[SavedStep], now: &[SavedStep]) -> Vec<String> {
    let key = |s: &SavedStep| (s.target.clone(), s.task.clone());
    let mut out = Vec::new();
    for s in saved {
        match now.iter().find(|n| key(n) == key(s)) {
            None => out.push(format!("{}: {}: no longer planned", s.target, s.task)),
            Some(n) if n.verdict != s.verdict => out.push(format!(
                "{}: {}: planned as {}, now {}",
                s.target, s.task, s.verdict, n.verdict
            )),
            Some(n) if n.actions != s.actions => {
                let what = s
                    .actions
                    .iter()
                    .zip(&n.actions)
                    .find(|(a, b)| a != b)
                    .map(|(a, _)| a.rsplit_once(' ').map_or(a.as_str(), |(d, _)| d))
                    .unwrap_or("its actions");
                out.push(format!(
                    "{}: {}: would now do something else ({what})",
                    s.target, s.task
                ));
            }
            Some(_) => {}
        }
    }
    for n in now {
        if !saved.iter().any(|s| key(s) == key(n)) {
            out.push(format!("{}: {}: not in the plan", n.target, n.task));
        }
    }
    if out.is_empty() && saved.iter().map(key).ne(now.iter().map(key)) {
        out.push("the steps come in another order".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Facts;

    fn plan_with(file: &[u8], write: &[u8]) -> Plan {
        let mut facts = Facts::default();
        facts.insert(
            Fact::File("/etc/app.conf".into()),
            Answer::Bytes(file.to_vec()),
        );
        facts.insert(
            Fact::Shell(format!("{}date +%s", crate::probe::VOLATILE)),
            Answer::Output {
                rc: 0,
                stdout: b"1".to_vec(),
            },
        );
        Plan {
            playbook: "test".into(),
            steps: vec![crate::plan::Step {
                phase: "config".into(),
                task: "conf".into(),
                module: crate::modules::Kind::Copy,
                target: "h1".into(),
                host: "h1".into(),
                role: None,
                verdict: Verdict::Change("differs".into()),
                diffs: vec![],
                sql: vec![],
                warnings: vec![],
                actions: vec![Action::Write {
                    path: "/etc/app.conf".into(),
                    bytes: write.to_vec(),
                    mode: None,
                    owner: None,
                }],
                phase_index: 0,
                after_all: false,
            }],
            facts: BTreeMap::from([("h1".to_string(), facts)]),
        }
    }

    fn redactor(secret: &str) -> Redactor {
        let mut r = Redactor::new();
        r.add(secret);
        r
    }

    fn inputs(inventory: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("inventory".to_string(), inventory.to_string())])
    }

    #[test]
    fn the_file_holds_no_secret_and_reads_back_the_same() {
        let secret = "pw-Sekr3t-value";
        let plan = plan_with(b"password=old\n", format!("password={secret}\n").as_bytes());
        let saved = SavedPlan::new(&plan, inputs("aa"), &redactor(secret)).unwrap();
        let bytes = saved.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains(secret), "{text}");
        let back = SavedPlan::parse(&bytes).unwrap();
        assert_eq!(back.steps, saved.steps);
        assert!(back.check_inputs(&inputs("aa"), &redactor(secret)).is_ok());
        assert!(back.check_plan(&plan, &redactor(secret)).is_ok());
    }

    #[test]
    fn a_changed_fact_or_step_is_stale_and_named() {
        let r = redactor("pw-Sekr3t-value");
        let saved = SavedPlan::new(&plan_with(b"a\n", b"b\n"), inputs("aa"), &r).unwrap();
        let edited = saved.check_plan(&plan_with(b"hand edit\n", b"b\n"), &r);
        let message = edited.unwrap_err().to_string();
        assert!(
            message.starts_with("stale plan: h1: /etc/app.conf changed since the plan"),
            "{message}"
        );
        let other = saved
            .check_plan(&plan_with(b"a\n", b"c\n"), &r)
            .unwrap_err()
            .to_string();
        assert!(
            other.contains("h1: conf: would now do something else (write /etc/app.conf)"),
            "{other}"
        );
    }

    #[test]
    fn a_changed_process_is_named_by_the_task_that_asked() {
        let r = redactor("pw-Sekr3t-value");
        let with_pid = |pid: &str| {
            let mut plan = plan_with(b"a\n", b"b\n");
            let facts = plan.facts.get_mut("h1").unwrap();
            let q = Fact::Shell("pid_file=/run/web.pid; cat \"$pid_file\"".into());
            facts.insert(
                q.clone(),
                Answer::Output {
                    rc: 0,
                    stdout: pid.as_bytes().to_vec(),
                },
            );
            facts.asked_by.insert(q, "h1/web: server running".into());
            plan
        };
        let saved = SavedPlan::new(&with_pid("41"), inputs("aa"), &r).unwrap();
        assert!(saved.check_plan(&with_pid("41"), &r).is_ok());
        let e = saved
            .check_plan(&with_pid("42"), &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h1: what `h1/web: server running` asked changed since the plan"),
            "{e}"
        );
    }

    #[test]
    fn a_fact_that_changes_by_itself_is_not_compared() {
        let r = redactor("pw-Sekr3t-value");
        let plan = plan_with(b"a\n", b"b\n");
        let saved = SavedPlan::new(&plan, inputs("aa"), &r).unwrap();
        let mut later = plan.clone();
        let facts = later.facts.get_mut("h1").unwrap();
        facts.insert(
            Fact::Shell(format!("{}date +%s", crate::probe::VOLATILE)),
            Answer::Output {
                rc: 0,
                stdout: b"2".to_vec(),
            },
        );
        assert!(saved.check_plan(&later, &r).is_ok());
    }

    #[test]
    fn other_inputs_or_secrets_are_refused_by_name() {
        let r = redactor("pw-Sekr3t-value");
        let saved = SavedPlan::new(&plan_with(b"a\n", b"b\n"), inputs("aa"), &r).unwrap();
        let e = saved
            .check_inputs(&inputs("bb"), &r)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("another inventory (aa in the plan, bb now)"),
            "{e}"
        );
        let e = saved
            .check_inputs(&inputs("aa"), &redactor("another-secret"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("other secret values"), "{e}");
    }

    #[test]
    fn a_damaged_or_foreign_file_is_a_clear_error() {
        let r = redactor("pw-Sekr3t-value");
        let bytes = SavedPlan::new(&plan_with(b"a\n", b"b\n"), inputs("aa"), &r)
            .unwrap()
            .to_bytes();
        let cut = SavedPlan::parse(&bytes[..bytes.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(cut.contains("truncated or damaged"), "{cut}");
        let text = String::from_utf8(bytes).unwrap();
        let v2 = text.replace(SCHEMA, "apim-deploy.saved-plan/2");
        let e = SavedPlan::parse(v2.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("its schema is `apim-deploy.saved-plan/2`"),
            "{e}"
        );
        let e = SavedPlan::parse(b"{}").unwrap_err().to_string();
        assert!(e.contains("names no schema"), "{e}");
    }
}
