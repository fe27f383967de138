//! Playbooks: the ordered, data-driven description of a deployment (TOML in
//! `playbooks/`). The engine knows no product: everything product-specific is in
//! the playbook file and in the template variables the product layer supplies.
//!
//! A playbook has roles with dependencies (validated acyclic), and phases run in
//! file order. A phase targets a *scope*: the controller, each host that carries
//! at least one node, the database host, or each node (a role on a host). A task
//! names a module, its parameters (strings are templates), an optional `when`
//! condition, a role filter, and what to `notify` when it changes something.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// role -> the roles that must be healthy before it starts.
    pub depends: BTreeMap<String, Vec<String>>,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Runs once per host that carries at least one node.
    Host,
    /// Runs once, on the database host.
    Database,
    /// Runs once per node; `service` tasks here are ordered by the role graph.
    Node,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub scope: Scope,
    #[serde(rename = "task", default)]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub name: String,
    /// Parsed when the playbook is read: an unknown module name fails the load.
    pub module: super::modules::Kind,
    /// Only nodes of these roles (node scope). Empty: every node.
    #[serde(default)]
    pub roles: Vec<String>,
    /// A template expression; the task is skipped when it is false.
    #[serde(default)]
    pub when: Option<String>,
    /// Run the task once per item of this list expression, with `item` bound.
    #[serde(default, rename = "loop")]
    pub loop_over: Option<String>,
    /// Handlers to trigger for the target node when this task changes something.
    #[serde(default)]
    pub notify: Vec<String>,
    /// The name under which later tasks read what this task's decision exports
    /// (`registered.<name>.<key>`). Only a database-scope task may register: one
    /// target, so one value per run.
    #[serde(default)]
    pub register: Option<String>,
    /// Runs only after every step of earlier phases, on every host, has finished, and
    /// only when none failed (to retire what the servers no longer use).
    #[serde(default)]
    pub after_all: bool,
    /// Module parameters; every string inside is rendered as a template.
    #[serde(default)]
    pub params: toml::Table,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("playbook {path}: {message}")]
    Parse { path: String, message: String },
    #[error("playbook {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Playbook {
    /// Loads and validates a playbook file.
    pub fn load(path: &Path) -> Result<Self, PlaybookError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates playbook text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PlaybookError> {
        let pb: Playbook = toml::from_str(text).map_err(|e| PlaybookError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        pb.validate(origin)?;
        Ok(pb)
    }

    fn validate(&self, origin: &str) -> Result<(), PlaybookError> {
        let invalid = |message: String| PlaybookError::Invalid {
            path: origin.to_string(),
            message,
        };
        for (role, deps) in &self.depends {
            for d in deps {
                if !self.depends.contains_key(d) {
                    return Err(invalid(format!(
                        "role `{role}` depends on `{d}`, which is not a role of this playbook (roles: {})",
                        self.role_names().join(", ")
                    )));
                }
            }
        }
        self.role_order().map_err(invalid)?;
        for phase in &self.phases {
            for task in &phase.tasks {
                if task.register.is_some() && phase.scope != Scope::Database {
                    return Err(invalid(format!(
                        "task `{}` registers its exports, but only a task of a `database` phase may \
                         (one target, so one value per run); phase `{}` has scope `{:?}`",
                        task.name, phase.name, phase.scope
                    )));
                }
                for r in &task.roles {
                    if !self.depends.contains_key(r) {
                        return Err(invalid(format!(
                            "task `{}` in phase `{}` names unknown role `{r}` (roles: {})",
                            task.name,
                            phase.name,
                            self.role_names().join(", ")
                        )));
                    }
                }
            }
        }
        self.file_attrs_agree().map_err(invalid)?;
        Ok(())
    }

    /// Tasks that patch one file must want the same owner, group and mode for it: if
    /// they did not, each run would undo the other's and report a change forever. Files
    /// are compared by their (unrendered) path template.
    fn file_attrs_agree(&self) -> Result<(), String> {
        let attr = |t: &Task, key: &str| t.params.get(key).map(|v| v.to_string());
        let mut first: BTreeMap<String, (&Task, [Option<String>; 3])> = BTreeMap::new();
        let tasks = self.phases.iter().flat_map(|p| &p.tasks);
        for task in tasks.filter(|t| t.module == super::modules::Kind::Xml) {
            let Some(file) = task.params.get("file").and_then(|f| f.as_str()) else {
                continue;
            };
            let wanted = ["owner", "group", "mode"].map(|k| attr(task, k));
            match first.get(file) {
                None => {
                    first.insert(file.to_string(), (task, wanted));
                }
                Some((other, theirs)) if *theirs != wanted => {
                    let show = |w: &[Option<String>; 3]| {
                        let [o, g, m] = w.clone().map(|v| v.unwrap_or_else(|| "(unset)".into()));
                        format!("owner {o}, group {g}, mode {m}")
                    };
                    return Err(format!(
                        "tasks `{}` and `{}` both patch {file} but want different owners or modes ({} against {}): give every task on one file the same `owner`, `group` and `mode`",
                        other.name,
                        task.name,
                        show(theirs),
                        show(&wanted)
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    pub fn role_names(&self) -> Vec<String> {
        self.depends.keys().cloned().collect()
    }

    /// Roles in dependency order (Kahn's algorithm; ties broken by declaration
    /// order of first appearance, which is alphabetical in a BTreeMap, so we
    /// break ties by depth then name for a stable, documented order).
    /// Errors name a cycle.
    pub fn role_order(&self) -> Result<Vec<String>, String> {
        let mut remaining: BTreeMap<&str, BTreeSet<&str>> = self
            .depends
            .iter()
            .map(|(r, d)| (r.as_str(), d.iter().map(String::as_str).collect()))
            .collect();
        let mut order = Vec::new();
        while !remaining.is_empty() {
            let ready: Vec<&str> = remaining
                .iter()
                .filter(|(_, deps)| deps.is_empty())
                .map(|(r, _)| *r)
                .collect();
            if ready.is_empty() {
                let cycle: Vec<&str> = remaining.keys().copied().collect();
                return Err(format!(
                    "the role dependencies form a cycle among: {}",
                    cycle.join(", ")
                ));
            }
            for r in &ready {
                remaining.remove(r);
            }
            for deps in remaining.values_mut() {
                for r in &ready {
                    deps.remove(r);
                }
            }
            order.extend(ready.into_iter().map(String::from));
        }
        Ok(order)
    }

    /// Every role that `role` depends on, directly or not.
    pub fn ancestors(&self, role: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = vec![role];
        while let Some(r) = stack.pop() {
            for d in self.depends.get(r).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d);
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pb(depends: &str) -> Result<Playbook, PlaybookError> {
        Playbook::parse(
            &format!("name = 't'\nphase = []\n[depends]\n{depends}"),
            "t.toml",
        )
    }

    #[test]
    fn roles_are_ordered_by_dependencies() {
        let p = pb(
            "web = ['api']\napi = ['cache']\ncache = ['auth']\nauth = ['database']\ndatabase = []",
        )
        .unwrap();
        assert_eq!(
            p.role_order().unwrap(),
            ["database", "auth", "cache", "api", "web"]
        );
        assert!(p.ancestors("web").contains("database"));
    }

    #[test]
    fn a_cycle_is_rejected_and_named() {
        let err = pb("a = ['b']\nb = ['a']\nc = []").unwrap_err().to_string();
        assert!(err.contains("cycle among: a, b"), "{err}");
    }

    #[test]
    fn an_unknown_module_fails_the_load_with_its_line_and_the_known_modules() {
        let err = Playbook::parse(
            "name = 't'\n[depends]\n[[phase]]\nname = 'p'\nscope = 'node'\n\
             [[phase.task]]\nname = 'x'\nmodule = 'servce'\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown module `servce`"), "{err}");
        assert!(
            err.contains(
                "modules: copy, host_check, hosts_file, java, mysql, mysql_account, mysql_stored_password, service"
            ),
            "{err}"
        );
        assert!(err.contains("line 8"), "{err}");
    }

    #[test]
    fn tasks_on_one_file_that_disagree_on_its_mode_fail_the_load() {
        // should: the error names both tasks, the file and both settings.
        let text = r#"
name = "t"
[depends]
a = []
[[phase]]
name = "p"
scope = "node"
[[phase.task]]
name = "first"
module = "xml"
params = { file = "{{ dir }}/c.xml", ops = [], owner = "svc", group = "svc", mode = "0600" }
[[phase.task]]
name = "other file"
module = "xml"
params = { file = "{{ dir }}/d.xml", ops = [], owner = "svc", group = "svc", mode = "0644" }
[[phase.task]]
name = "second"
module = "xml"
params = { file = "{{ dir }}/c.xml", ops = [], owner = "svc", group = "svc", mode = "0644" }
"#;
        let e = Playbook::parse(text, "t.toml").unwrap_err().to_string();
        assert!(
            e.contains("`first` and `second` both patch {{ dir }}/c.xml"),
            "{e}"
        );
        assert!(e.contains("mode \"0600\" against owner"), "{e}");
        let agreed = text.replace(
            r#"ops = [], owner = "svc", group = "svc", mode = "0644" }
"#,
            r#"ops = [], owner = "svc", group = "svc", mode = "0600" }
"#,
        );
        assert!(Playbook::parse(&agreed, "t.toml").is_ok());
    }

    #[test]
    fn an_unknown_dependency_is_rejected() {
        let err = pb("a = ['nope']").unwrap_err().to_string();
        assert!(err.contains("`nope`, which is not a role"), "{err}");
    }
}
