//! `mysql`: the databases created and seeded exactly once, by the `mysql` client on
//! the database host (the application's login and grants are `mysql_account`'s).
//!
//! * Credentials travel in the script on stdin and reach the client through a
//!   process-substituted option file (a pipe, never a file on disk, never a
//!   command-line argument).
//! * The dbscripts are not re-runnable (facts §5): a database is seeded only when
//!   it holds no table at all, and one that holds tables but not its sentinel is
//!   reported as partially seeded instead of being sourced again.
//! * `sql_mode` is relaxed for the seeding session (zero-date defaults).
//! * Identifiers are validated; string values are escaped for SQL.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{Action, Decision, ModuleError, TaskCtx};
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Where the client connects, as seen from the database host.
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub admin_user: String,
    pub admin_password: String,
    #[serde(default)]
    pub charset: Option<String>,
    pub databases: Vec<Database>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    /// The seeding script, as a path inside the distribution archive.
    pub script: String,
    /// A table whose presence proves the script ran.
    pub sentinel: String,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    3306
}

/// What the probe learned: schema -> tables.
#[derive(Debug, Default)]
struct DbFacts {
    schemas: BTreeMap<String, BTreeSet<String>>,
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    validate(p)?;
    Ok(vec![Fact::Shell(probe(p))])
}

/// The client invocation, with credentials in a process-substituted option file.
fn client(p: &Params) -> String {
    admin_client(&p.host, p.port, &p.admin_user, &p.admin_password)
}

/// The client logged in as `user`: the password reaches it through a pipe that
/// `printf` (a shell builtin: no command line) fills, never a file or an argument.
pub(super) fn admin_client(host: &str, port: u16, user: &str, password: &str) -> String {
    format!(
        "mysql --defaults-extra-file=<(printf '%s\\n' '[client]' {user} {pass}) --protocol=TCP -h {host} -P {port}",
        user = quote(&format!("user={}", option_value(user))),
        pass = quote(&format!("password={}", option_value(password))),
        host = quote(host),
    )
}

fn probe(p: &Params) -> String {
    let names: Vec<String> = p.databases.iter().map(|d| sql_str(&d.name)).collect();
    let list = names.join(",");
    format!(
        "{client} -N -B -e {sql} 2>&1",
        client = client(p),
        sql = quote(&format!(
            "SELECT 'S', SCHEMA_NAME, '' FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({list}) \
             UNION ALL SELECT 'T', TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({list})"
        ))
    )
}

fn parse_probe(out: &str) -> DbFacts {
    let mut f = DbFacts::default();
    for line in out.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        match cols.as_slice() {
            ["S", schema, _] => {
                f.schemas.entry(schema.to_string()).or_default();
            }
            ["T", schema, table] => {
                f.schemas
                    .entry(schema.to_string())
                    .or_default()
                    .insert(table.to_string());
            }
            _ => {}
        }
    }
    f
}

pub fn decide(p: &Params, ctx: &TaskCtx, state: &mut HostState) -> Result<Decision, ModuleError> {
    validate(p)?;
    let (rc, out) = state
        .probed_shell(&probe(p))
        .ok_or_else(|| ModuleError::new("mysql: the database probe did not run"))?;
    let out = String::from_utf8_lossy(out).into_owned();
    if rc == 127 && state.checks("commands") {
        return Err(crate::preflight::failed(
            "commands",
            "the mysql client is not installed on the database host: install mariadb-client \
             or mysql-client there"
                .to_string(),
        ));
    }
    if rc != 0 {
        return Err(ModuleError::new(format!(
            "mysql: cannot log in to the database server at {}:{} as {}: {}",
            p.host,
            p.port,
            p.admin_user,
            ctx.redactor.mask(out.trim())
        )));
    }
    let facts = parse_probe(&out);
    let mut sql_shown = Vec::new();
    let mut sql_run = String::from("SET SESSION sql_mode='';\n");
    let mut why = Vec::new();
    for db in &p.databases {
        let name = &db.name;
        match facts.schemas.get(name) {
            Some(tables) if tables.contains(&db.sentinel) => continue,
            Some(tables) if !tables.is_empty() => {
                return Err(ModuleError::new(format!(
                    "mysql: database {name} holds {} tables but not {}: it looks partially seeded; \
                     the 1.9 dbscripts cannot be re-run, so fix or drop it by hand",
                    tables.len(),
                    db.sentinel
                )));
            }
            Some(_) => why.push(format!("{name} is empty: will seed it")),
            None => {
                why.push(format!("{name} will be created and seeded"));
                let charset = p
                    .charset
                    .as_deref()
                    .map(|c| format!(" CHARACTER SET {c}"))
                    .unwrap_or_default();
                let create = format!("CREATE DATABASE `{name}`{charset};");
                sql_shown.push(create.clone());
                sql_run.push_str(&create);
                sql_run.push('\n');
            }
        }
        let archive = ctx
            .archive
            .ok_or_else(|| ModuleError::new("mysql: no distribution archive on the controller"))?;
        let script = archive
            .read(&db.script)
            .map_err(|e| ModuleError::new(format!("mysql: {e}")))?;
        let use_db = format!("USE `{name}`;");
        sql_shown.push(use_db.clone());
        sql_shown.push(format!(
            "-- source {} ({} bytes, from the distribution)",
            db.script,
            script.len()
        ));
        sql_run.push_str(&use_db);
        sql_run.push('\n');
        sql_run.push_str(&String::from_utf8_lossy(&script));
        sql_run.push('\n');
    }
    if why.is_empty() {
        let names: Vec<&str> = p.databases.iter().map(|d| d.name.as_str()).collect();
        return Ok(Decision::ok(format!("{} seeded", names.join(", "))));
    }
    let delimiter = heredoc_delimiter(&sql_run);
    let script = format!(
        "set -eu\n{client} --batch <<'{delimiter}'\n{sql_run}\n{delimiter}\n",
        client = client(p)
    );
    let mut d = Decision::change(
        why.join("; "),
        vec![Action::Script {
            describe: "create and seed the databases".into(),
            script,
        }],
    );
    d.sql = sql_shown;
    Ok(d)
}

fn validate(p: &Params) -> Result<(), ModuleError> {
    let ident = |what: &str, v: &str| {
        if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            Err(ModuleError::new(format!(
                "mysql: {what} {v:?} is not allowed (letters, digits and _, at most 64)"
            )))
        } else {
            Ok(())
        }
    };
    for db in &p.databases {
        ident("database name", &db.name)?;
        ident("sentinel table", &db.sentinel)?;
    }
    if let Some(c) = &p.charset {
        ident("charset", c)?;
    }
    for (what, v) in [("admin user", &p.admin_user)] {
        if v.is_empty()
            || v.len() > 80
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(ModuleError::new(format!(
                "mysql: {what} {v:?} is not allowed (letters, digits, _ . -)"
            )));
        }
    }
    for (what, v) in [("admin password", &p.admin_password)] {
        if v.contains('\n') || v.contains('\0') {
            return Err(ModuleError::new(format!(
                "mysql: the {what} contains a newline or NUL"
            )));
        }
    }
    Ok(())
}

/// A value for a MySQL option file, double-quoted with its escapes.
fn option_value(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A SQL string literal.
pub(super) fn sql_str(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

/// A here-document delimiter that does not occur in the body.
pub(super) fn heredoc_delimiter(body: &str) -> String {
    let mut n = 0u32;
    loop {
        let d = format!("APIM_SQL_{n}");
        if !body.lines().any(|l| l == d) {
            return d;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_is_parsed_into_schemas_and_tables() {
        let f = parse_probe("S\tappdb\t\nT\tappdb\tORDERS\nS\tempty\t\nnoise\n");
        assert!(f.schemas["appdb"].contains("ORDERS"));
        assert!(f.schemas["empty"].is_empty());
    }

    #[test]
    fn sql_strings_and_option_values_are_escaped() {
        assert_eq!(sql_str("it's\\"), "'it''s\\\\'");
        assert_eq!(option_value("a\"b"), "\"a\\\"b\"");
    }
}
