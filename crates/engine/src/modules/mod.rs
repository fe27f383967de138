//! Modules: the verbs a playbook task can use. Each module reads state first
//! and acts only when needed (pyinfra's facts vs operations):
//!
//! * `questions(params)`: the facts it needs, asked in the host's single probe;
//! * `decide(ctx, state)`: a pure function from facts and planned state to a
//!   [`Decision`]: a verdict with its reason, diffs to show, and the
//!   [`Action`]s that would make it so.
//!
//! **Invariant:** modules never run anything; only the executor runs actions.
//! That is what makes `plan` a faithful dry run of `apply`.

use std::path::PathBuf;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::archive::Archive;
use super::probe::Fact;
use super::redact::Redactor;
use super::state::HostState;

pub mod copy;
pub mod file_attrs;
pub mod host_check;
pub mod hosts_file;
pub mod java;
pub mod mysql;
pub mod mysql_account;
pub mod mysql_stored_password;
pub mod service;
pub mod unpack;
pub mod user;
pub mod xml;

/// The module a task uses, read once from the playbook: everything downstream
/// (planner, schedule, executor, reports, `status`, `restart`) asks this value,
/// never compares names, so a misspelt module is an error when the playbook loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Copy,
    HostCheck,
    HostsFile,
    Java,
    Mysql,
    MysqlAccount,
    MysqlStoredPassword,
    Service,
    Unpack,
    User,
    Xml,
}

impl Kind {
    /// Every module, in the order the playbook documentation lists them.
    pub const ALL: [Kind; 11] = [
        Kind::Copy,
        Kind::HostCheck,
        Kind::HostsFile,
        Kind::Java,
        Kind::Mysql,
        Kind::MysqlAccount,
        Kind::MysqlStoredPassword,
        Kind::Service,
        Kind::Unpack,
        Kind::User,
        Kind::Xml,
    ];

    /// The name a playbook uses (`module = "hosts_file"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Copy => "copy",
            Kind::HostCheck => "host_check",
            Kind::HostsFile => "hosts_file",
            Kind::Java => "java",
            Kind::Mysql => "mysql",
            Kind::MysqlAccount => "mysql_account",
            Kind::MysqlStoredPassword => "mysql_stored_password",
            Kind::Service => "service",
            Kind::Unpack => "unpack",
            Kind::User => "user",
            Kind::Xml => "xml",
        }
    }

    /// A node start: ordered by the role graph, gated on health, counted as a restart.
    pub fn is_service(self) -> bool {
        self == Kind::Service
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown module `{name}` (modules: {})", known.join(", "))
            })
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a task decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "snake_case")]
pub enum Verdict {
    /// Already as wanted.
    Ok(String),
    /// Will be (or was) changed.
    Change(String),
    /// Not applicable here.
    Skipped(String),
}

impl Verdict {
    pub fn is_change(&self) -> bool {
        matches!(self, Verdict::Change(_))
    }
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Ok(r) | Verdict::Change(r) | Verdict::Skipped(r) => r,
        }
    }
}

/// A file change to show: the path and its unified diff (secrets masked).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileDiff {
    pub path: String,
    pub diff: String,
}

/// A change the executor makes on a host.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write a file atomically, with `mode` and `owner` set before it takes its
    /// place (where `None`, an existing file keeps its own).
    Write {
        path: String,
        bytes: Vec<u8>,
        mode: Option<u32>,
        owner: Option<apim_transport::Owner>,
    },
    /// Stream a local file to the host, verified by sha256 there, with `mode` and
    /// `owner` set before it takes its place.
    Upload {
        local: PathBuf,
        remote: String,
        sha256: String,
        mode: Option<u32>,
        owner: Option<apim_transport::Owner>,
    },
    /// Run a bash script (sent on stdin: secrets inside never reach a command line).
    Script { describe: String, script: String },
    /// (Re)start a server and wait until it is healthy.
    Service(Box<service::ServiceAction>),
}

impl Action {
    /// A short, secret-free description for progress output.
    pub fn describe(&self) -> String {
        match self {
            Action::Write { path, .. } => format!("write {path}"),
            Action::Upload { remote, .. } => format!("upload {remote}"),
            Action::Script { describe, .. } => describe.clone(),
            Action::Service(s) => s.describe(),
        }
    }
}

/// A module's answer for one task on one target.
#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub diffs: Vec<FileDiff>,
    /// SQL statements that would run (credentials never included).
    pub sql: Vec<String>,
    pub actions: Vec<Action>,
    /// What the operator should know but that stops nothing (a skewed clock).
    pub warnings: Vec<String>,
    /// Values later tasks read as `registered.<task's register>.<key>` (which login
    /// the servers use): decided facts of one host that other hosts' tasks need.
    pub exports: serde_json::Map<String, serde_json::Value>,
}

impl Decision {
    pub fn ok(reason: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Ok(reason.into()),
            diffs: vec![],
            sql: vec![],
            actions: vec![],
            warnings: vec![],
            exports: Default::default(),
        }
    }
    pub fn skipped(reason: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Skipped(reason.into()),
            ..Decision::ok("")
        }
    }
    pub fn change(reason: impl Into<String>, actions: Vec<Action>) -> Self {
        Decision {
            verdict: Verdict::Change(reason.into()),
            diffs: vec![],
            sql: vec![],
            actions,
            warnings: vec![],
            exports: Default::default(),
        }
    }
}

/// Everything a module may look at when it decides.
pub struct TaskCtx<'a> {
    pub params: &'a toml::Table,
    pub archive: Option<&'a Arc<Archive>>,
    pub redactor: &'a Redactor,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModuleError(pub String);

impl ModuleError {
    pub fn new(msg: impl Into<String>) -> Self {
        ModuleError(msg.into())
    }
}

/// Deserializes a module's rendered parameters into its typed form, so a
/// misspelled or missing parameter is named in the error.
pub fn params<T: DeserializeOwned>(module: Kind, table: &toml::Table) -> Result<T, ModuleError> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            ModuleError(format!(
                "module `{module}`: bad parameters: {}",
                e.message()
            ))
        })
}

/// The facts a task needs from its host.
pub fn questions(module: Kind, table: &toml::Table) -> Result<Vec<Fact>, ModuleError> {
    match module {
        Kind::Copy => copy::questions(&params(module, table)?),
        Kind::HostCheck => host_check::questions(&params(module, table)?),
        Kind::HostsFile => hosts_file::questions(&params(module, table)?),
        Kind::Java => java::questions(&params(module, table)?),
        Kind::Mysql => mysql::questions(&params(module, table)?),
        Kind::MysqlAccount => mysql_account::questions(&params(module, table)?),
        Kind::MysqlStoredPassword => mysql_stored_password::questions(&params(module, table)?),
        Kind::Service => service::questions(&params(module, table)?),
        Kind::Unpack => unpack::questions(&params(module, table)?),
        Kind::User => user::questions(&params(module, table)?),
        Kind::Xml => xml::questions(&params(module, table)?),
    }
}

/// What a task exports before its host is probed, so the tasks that read it can be
/// rendered (and their questions asked) in the same round trip; `None` for a module
/// that exports nothing. The planner renders those tasks again when the decision
/// exports something else.
pub fn provisional_exports(
    module: Kind,
    table: &toml::Table,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ModuleError> {
    Ok(match module {
        Kind::MysqlAccount => Some(mysql_account::provisional_exports(&params(module, table)?)),
        _ => None,
    })
}

/// Decides a task against the planned state of its host. A `service` task is
/// not decided here: whether a node restarts depends on what changed on it
/// earlier in the run, which only the planner knows.
pub fn decide(module: Kind, ctx: &TaskCtx, state: &mut HostState) -> Result<Decision, ModuleError> {
    match module {
        Kind::Copy => copy::decide(&params(module, ctx.params)?, state),
        Kind::HostCheck => host_check::decide(&params(module, ctx.params)?, state),
        Kind::HostsFile => hosts_file::decide(&params(module, ctx.params)?, ctx, state),
        Kind::Java => java::decide(&params(module, ctx.params)?, state),
        Kind::Mysql => mysql::decide(&params(module, ctx.params)?, ctx, state),
        Kind::MysqlAccount => mysql_account::decide(&params(module, ctx.params)?, state),
        Kind::MysqlStoredPassword => {
            mysql_stored_password::decide(&params(module, ctx.params)?, state)
        }
        Kind::Service => Err(ModuleError::new(
            "a `service` task is decided by the planner, with the changes made to its node",
        )),
        Kind::Unpack => unpack::decide(&params(module, ctx.params)?, ctx, state),
        Kind::User => user::decide(&params(module, ctx.params)?, state),
        Kind::Xml => xml::decide(&params(module, ctx.params)?, ctx, state),
    }
}

/// A unified diff of two file versions with secret values masked: the one diff
/// renderer (plans, `apply --diff`, `status` drift). The diff is computed on the
/// real texts and masked afterwards, so a changed secret still shows as a
/// changed line, `********` on both sides.
pub fn file_diff(path: &str, old: &[u8], new: &[u8], redactor: &Redactor) -> FileDiff {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    let diff = similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(2)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string();
    FileDiff {
        path: path.to_string(),
        diff: redactor.mask(&diff),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_secret_shows_as_a_changed_line_masked_on_both_sides() {
        let mut r = Redactor::new();
        r.add("new-pw");
        let old = b"<a>\n  <p>old-pw</p>\n</a>\n";
        let new = b"<a>\n  <p>new-pw</p>\n</a>\n";
        let d = file_diff("/x.xml", old, new, &r.with(&["old-pw".to_string()]));
        assert_eq!(
            d.diff,
            "--- a/x.xml\n+++ b/x.xml\n@@ -1,3 +1,3 @@\n <a>\n-  <p>********</p>\n+  <p>********</p>\n </a>\n"
        );
    }

    #[test]
    fn equal_texts_give_an_empty_diff() {
        assert_eq!(file_diff("/x", b"a\n", b"a\n", &Redactor::new()).diff, "");
    }
}
