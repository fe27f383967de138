//! `mysql`: the three databases created, seeded exactly once, and the
//! application user granted on them, by the `mysql` client on the database host.
//!
//! * Credentials travel in the script on stdin and reach the client through a
//!   process-substituted option file (a pipe, never a file on disk, never a
//!   command-line argument).
//! * The dbscripts are not re-runnable (facts §5): a database is seeded only when
//!   it holds no table at all, and one that holds tables but not its sentinel is
//!   reported as partially seeded instead of being sourced again.
//! * `sql_mode` is relaxed for the seeding session (zero-date defaults), and users
//!   are made with `CREATE USER IF NOT EXISTS` + `GRANT` (MySQL 8 removed
//!   `GRANT ... IDENTIFIED BY`).
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
    pub app_user: String,
    pub app_password: String,
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
    /// Host parts of the application user's accounts on this database: the addresses of
    /// the nodes that use it, or a configured pattern (least privilege: a node gets no
    /// account on a database it never opens).
    pub grant_hosts: Vec<String>,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    3306
}

/// What the probe learned: schema -> tables, and (user, host, db) grants.
#[derive(Debug, Default)]
struct DbFacts {
    schemas: BTreeMap<String, BTreeSet<String>>,
    grants: BTreeSet<(String, String, String)>,
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    validate(p)?;
    Ok(vec![Fact::Shell(probe(p))])
}

/// The client invocation, with credentials in a process-substituted option file.
fn client(p: &Params) -> String {
    format!(
        "mysql --defaults-extra-file=<(printf '%s\\n' '[client]' {user} {pass}) --protocol=TCP -h {host} -P {port}",
        user = quote(&format!("user={}", option_value(&p.admin_user))),
        pass = quote(&format!("password={}", option_value(&p.admin_password))),
        host = quote(&p.host),
        port = p.port,
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
             UNION ALL SELECT 'T', TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({list}) \
             UNION ALL SELECT 'G', CONCAT(User, '@', Host), Db FROM mysql.db WHERE Db IN ({list})"
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
            ["G", user_host, db] => {
                if let Some((u, h)) = user_host.rsplit_once('@') {
                    f.grants
                        .insert((u.to_string(), h.to_string(), db.to_string()));
                }
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
    for (host, dbs) in grants_by_host(p) {
        let missing: Vec<&str> = dbs
            .into_iter()
            .filter(|db| {
                !facts
                    .grants
                    .contains(&(p.app_user.clone(), host.to_string(), db.to_string()))
            })
            .collect();
        if missing.is_empty() {
            continue;
        }
        let account = format!("{}@{}", sql_str(&p.app_user), sql_str(host));
        why.push(format!("user {}@{host} will be granted access", p.app_user));
        sql_shown.push(format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '********';"
        ));
        sql_run.push_str(&format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {};\n",
            sql_str(&p.app_password)
        ));
        for db in missing {
            let grant = format!("GRANT ALL ON `{db}`.* TO {account};");
            sql_shown.push(grant.clone());
            sql_run.push_str(&grant);
            sql_run.push('\n');
        }
    }
    if why.is_empty() {
        let names: Vec<&str> = p.databases.iter().map(|d| d.name.as_str()).collect();
        return Ok(Decision::ok(format!(
            "{} seeded; {} granted to the nodes that use them",
            names.join(", "),
            p.app_user
        )));
    }
    let delimiter = heredoc_delimiter(&sql_run);
    let script = format!(
        "set -eu\n{client} --batch <<'{delimiter}'\n{sql_run}\n{delimiter}\n",
        client = client(p)
    );
    let mut d = Decision::change(
        why.join("; "),
        vec![Action::Script {
            describe: "create, seed and grant the databases".into(),
            script,
        }],
    );
    d.sql = sql_shown;
    Ok(d)
}

/// Each account host with the databases it must be granted, in first-seen order.
fn grants_by_host(p: &Params) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for db in &p.databases {
        for host in &db.grant_hosts {
            match out.iter_mut().find(|(h, _)| h == host) {
                Some((_, dbs)) => dbs.push(&db.name),
                None => out.push((host, vec![&db.name])),
            }
        }
    }
    out
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
    for (what, v) in [
        ("admin user", &p.admin_user),
        ("application user", &p.app_user),
    ] {
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
    for h in p.databases.iter().flat_map(|d| &d.grant_hosts) {
        if h.is_empty()
            || !h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-%:".contains(c))
        {
            return Err(ModuleError::new(format!(
                "mysql: grant host {h:?} is not allowed (an address, a name, or a pattern with %)"
            )));
        }
    }
    for (what, v) in [
        ("admin password", &p.admin_password),
        ("application password", &p.app_password),
    ] {
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
fn sql_str(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
}

/// A here-document delimiter that does not occur in the body.
fn heredoc_delimiter(body: &str) -> String {
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
    fn probe_output_is_parsed_into_schemas_tables_and_grants() {
        let f = parse_probe("S\tappdb\t\nT\tappdb\tORDERS\nG\tapp@10.0.0.%\tappdb\n");
        assert!(f.schemas["appdb"].contains("ORDERS"));
        assert!(
            f.grants
                .contains(&("app".into(), "10.0.0.%".into(), "appdb".into()))
        );
    }

    #[test]
    fn each_host_is_granted_only_the_databases_its_nodes_use() {
        let db = |name: &str, hosts: &[&str]| Database {
            name: name.into(),
            script: "s.sql".into(),
            sentinel: "T".into(),
            grant_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        let p = Params {
            host: default_host(),
            port: 3306,
            admin_user: "a".into(),
            admin_password: "p".into(),
            app_user: "app".into(),
            app_password: "q".into(),
            charset: None,
            databases: vec![
                db("appdb", &["10.0.0.1", "10.0.0.2"]),
                db("userdb", &["10.0.0.1"]),
            ],
        };
        assert_eq!(
            grants_by_host(&p),
            vec![
                ("10.0.0.1", vec!["appdb", "userdb"]),
                ("10.0.0.2", vec!["appdb"])
            ]
        );
    }

    #[test]
    fn sql_strings_and_option_values_are_escaped() {
        assert_eq!(sql_str("it's\\"), "'it''s\\\\'");
        assert_eq!(option_value("a\"b"), "\"a\\\"b\"");
    }
}
