//! `mysql`: the databases created and seeded exactly once, by the `mysql` client on
//! the database host (the application's login and grants are `mysql_account`'s).
//!
//! * Credentials travel in the script on stdin and reach the client through a
//!   process-substituted option file (a pipe, never a file on disk, never a
//!   command-line argument).
//! * Seeding scripts are not re-runnable (they create tables without `IF NOT
//!   EXISTS`, named constraints and indexes), so a seed must never run twice into
//!   one database and must never leave one half filled. A database `X` is seeded
//!   in one client session that
//!   1. takes the MySQL named lock `X__seeding` (`GET_LOCK`): two sessions never
//!      seed `X` at once, even two runs that bypassed the run lock, and a session
//!      whose controller died holds it until the server ends that session;
//!   2. drops and recreates the database `X__seeding` (with `X`'s character set)
//!      and sources the script there;
//!   3. checks that the script made the sentinel table and nothing `RENAME TABLE`
//!      cannot move (views, triggers, routines, events);
//!   4. moves every table into `X` with one `RENAME TABLE a TO b, c TO d, ...`,
//!      only if `X` is still empty (a racing session that waited for the lock
//!      finds `X` seeded and moves nothing), then drops `X__seeding`.
//!
//!   A multi-table `RENAME TABLE` is atomic (other sessions see all tables or
//!   none; crash-safe with atomic DDL on MySQL 8.0 and MariaDB 10.6+; InnoDB moves
//!   foreign keys with their tables), so `X` is either empty or whole. A run killed
//!   at any point leaves at most an `X__seeding` that no session locks: the next
//!   plan names it and the seed starts over; one killed after the move leaves an
//!   empty `X__seeding` beside a seeded `X`, which is dropped.
//! * A database that holds tables but not its sentinel was not made by this module
//!   (step 4 moves all or nothing): it is refused rather than seeded over. The one
//!   exception is a server crash in the middle of the move on MySQL 5.7, whose
//!   multi-table rename is not crash-safe.
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

pub(super) fn default_host() -> String {
    "127.0.0.1".into()
}
pub(super) fn default_port() -> u16 {
    3306
}

/// Where and as whom a module reaches the database server: the same four parameters in
/// every module that talks to it, so they are checked, used and named in errors one way.
pub(super) struct ServerLogin<'a> {
    /// The module, for its messages.
    pub module: &'static str,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
}

impl ServerLogin<'_> {
    pub fn validate(&self) -> Result<(), ModuleError> {
        let user_ok = !self.user.is_empty()
            && self.user.len() <= 80
            && self
                .user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !user_ok {
            return Err(ModuleError::new(format!(
                "{}: admin user {:?} is not allowed (letters, digits, _ . -)",
                self.module, self.user
            )));
        }
        if self.password.contains(['\n', '\0']) {
            return Err(ModuleError::new(format!(
                "{}: the admin password contains a newline or NUL",
                self.module
            )));
        }
        Ok(())
    }

    /// The client logged in: the password reaches it through a pipe that `printf` (a
    /// shell builtin: no command line) fills, never a file or an argument.
    pub fn client(&self) -> String {
        format!(
            "mysql --defaults-extra-file=<(printf '%s\\n' '[client]' {user} {pass}) --protocol=TCP -h {host} -P {port}",
            user = quote(&format!("user={}", option_value(self.user))),
            pass = quote(&format!("password={}", option_value(self.password))),
            host = quote(self.host),
            port = self.port,
        )
    }

    /// The client running `sql` from stdin (a here-document of the script, so
    /// statements and the values in them stay off every command line).
    pub fn with_sql(&self, sql: &str, flags: &str) -> String {
        let delimiter = heredoc_delimiter(sql);
        format!(
            "{client} {flags} <<'{delimiter}' 2>&1\n{sql}\n{delimiter}\n",
            client = self.client(),
        )
    }

    /// The error of a probe that could not `what` (the client's own words in `out`).
    pub fn refused(&self, what: &str, out: &str) -> ModuleError {
        ModuleError::new(format!(
            "{}: cannot {what} at {}:{} as {}: {}",
            self.module,
            self.host,
            self.port,
            self.user,
            out.trim()
        ))
    }
}

fn login(p: &Params) -> ServerLogin<'_> {
    ServerLogin {
        module: "mysql",
        host: &p.host,
        port: p.port,
        user: &p.admin_user,
        password: &p.admin_password,
    }
}

/// What the probe learned: schema -> tables, and which seeding locks a session holds
/// (lock name -> its connection id).
#[derive(Debug, Default)]
struct DbFacts {
    schemas: BTreeMap<String, BTreeSet<String>>,
    locks: BTreeMap<String, String>,
}

/// The name of the database a seed of `db` fills first, and of the named lock that
/// lets one session at a time seed `db`.
fn seeding_name(db: &str) -> String {
    format!("{db}{SEEDING_SUFFIX}")
}

const SEEDING_SUFFIX: &str = "__seeding";
/// MySQL's longest database name (and named-lock name).
const NAME_MAX: usize = 64;
/// How long a seed waits for another session's seed of the same database.
const SEED_LOCK_WAIT_SECS: u32 = 300;

/// Where one database stands, as far as seeding it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seed {
    /// The sentinel is in place.
    Done,
    /// Seeded, beside a seeding copy a run left when it was killed after moving the
    /// tables (an empty copy, or one a racing session filled for nothing).
    DropLeftover { tables: usize },
    /// No such database: create and seed it.
    Create,
    /// Empty: seed it.
    Fill,
    /// Empty (or absent), beside a seeding copy no session holds: a seed was
    /// interrupted. Drop the copy and seed again.
    Redo { tables: usize, exists: bool },
    /// Another session holds the seeding lock now: wait for it, then seed only if
    /// the database is still empty.
    AfterOther { session: String, exists: bool },
}

/// Decides where `db` stands; a database holding tables but not its sentinel is
/// refused (the reason is the error): this module never leaves one.
fn seed_state(db: &Database, facts: &DbFacts) -> Result<Seed, String> {
    let copy_name = seeding_name(&db.name);
    let copy = facts.schemas.get(&copy_name);
    let holder = facts.locks.get(&copy_name);
    match facts.schemas.get(&db.name) {
        Some(tables) if tables.contains(&db.sentinel) => Ok(match (copy, holder) {
            (Some(copy), None) => Seed::DropLeftover { tables: copy.len() },
            _ => Seed::Done,
        }),
        Some(tables) if !tables.is_empty() => Err(format!(
            "mysql: database {} holds {} tables but not {}: this was not made by a seed \
             (a seed moves all its tables into place at once), so nothing is seeded over it; \
             drop it, or point the inventory at another database",
            db.name,
            tables.len(),
            db.sentinel
        )),
        target => {
            let exists = target.is_some();
            Ok(match (holder, copy) {
                (Some(session), _) => Seed::AfterOther {
                    session: session.clone(),
                    exists,
                },
                (None, Some(copy)) => Seed::Redo {
                    tables: copy.len(),
                    exists,
                },
                (None, None) if exists => Seed::Fill,
                (None, None) => Seed::Create,
            })
        }
    }
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    validate(p)?;
    Ok(vec![Fact::Shell(probe(p))])
}

fn probe(p: &Params) -> String {
    let targets: Vec<String> = p.databases.iter().map(|d| sql_str(&d.name)).collect();
    let copies: Vec<String> = p
        .databases
        .iter()
        .map(|d| sql_str(&seeding_name(&d.name)))
        .collect();
    let all = [targets, copies.clone()].concat().join(",");
    // Whose seeding lock is held: a connection id, or NULL.
    let locks: String = copies
        .iter()
        .map(|c| format!(" UNION ALL SELECT 'L', {c}, IS_USED_LOCK({c})"))
        .collect();
    format!(
        "{client} -N -B -e {sql} 2>&1",
        client = login(p).client(),
        sql = quote(&format!(
            "SELECT 'S', SCHEMA_NAME, '' FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({all}) \
             UNION ALL SELECT 'T', TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({all}) \
             {locks}"
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
            ["L", name, session] if !matches!(*session, "" | "NULL") => {
                f.locks.insert(name.to_string(), session.to_string());
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
        return Err(login(p).refused("log in to the database server", &ctx.redactor.mask(&out)));
    }
    let facts = parse_probe(&out);
    let mut sql = Sql::default();
    sql.run("SET SESSION sql_mode='';\nSET SESSION group_concat_max_len = 1048576;");
    let mut why = Vec::new();
    for db in &p.databases {
        let state = seed_state(db, &facts).map_err(ModuleError::new)?;
        match state {
            Seed::Done => continue,
            Seed::DropLeftover { .. } => drop_leftover_sql(db, &mut sql),
            _ => {
                let archive = ctx.archive.ok_or_else(|| {
                    ModuleError::new("mysql: no distribution archive on the controller")
                })?;
                let script = archive
                    .read(&db.script)
                    .map_err(|e| ModuleError::new(format!("mysql: {e}")))?;
                seed_sql(db, p.charset.as_deref(), &state, &script, &mut sql);
            }
        }
        why.push(seed_reason(db, &state));
    }
    if why.is_empty() {
        let names: Vec<&str> = p.databases.iter().map(|d| d.name.as_str()).collect();
        return Ok(Decision::ok(format!("{} seeded", names.join(", "))));
    }
    let script = session_script(p, &sql.run);
    let mut d = Decision::change(
        why.join("; "),
        vec![Action::Script {
            describe: "create and seed the databases".into(),
            script,
        }],
    );
    d.sql = sql.shown;
    Ok(d)
}

/// The SQL of a decision: what the plan shows, and what the session runs (the
/// same statements, plus the checks and dynamic statements the plan summarises).
#[derive(Default)]
struct Sql {
    shown: Vec<String>,
    run: String,
}

impl Sql {
    fn run(&mut self, statements: &str) {
        self.run.push_str(statements);
        self.run.push('\n');
    }

    fn both(&mut self, statement: String) {
        self.run(&statement);
        self.shown.push(statement);
    }
}

/// Why the plan touches `db`, for each state that changes something.
fn seed_reason(db: &Database, state: &Seed) -> String {
    let name = &db.name;
    let copy = seeding_name(name);
    let seeded = |exists: bool| {
        if exists {
            format!("{name} will be seeded")
        } else {
            format!("{name} will be created and seeded")
        }
    };
    match state {
        Seed::Done => format!("{name} is seeded"),
        Seed::Create => seeded(false),
        Seed::Fill => format!("{name} is empty: will seed it"),
        Seed::Redo { tables, exists } => format!(
            "{}: {copy} ({tables} tables) is left from an interrupted seed and will be dropped first",
            seeded(*exists)
        ),
        Seed::AfterOther { session, exists } => format!(
            "{name} is being seeded by another session (MySQL connection {session}): \
             will wait for it, then {} only if it is still empty",
            if *exists {
                "seed it"
            } else {
                "create and seed it"
            }
        ),
        Seed::DropLeftover { tables } => format!(
            "{copy} ({tables} tables) is left from a seed of {name} that was interrupted \
             after it moved its tables: will drop it"
        ),
    }
}

/// One seed of `db` (see the module doc): under the seeding lock, source the
/// script into the seeding copy, check it, move every table at once, drop the copy.
fn seed_sql(db: &Database, charset: Option<&str>, state: &Seed, script: &[u8], sql: &mut Sql) {
    let name = &db.name;
    let copy = seeding_name(name);
    take_seeding_lock(db, sql);
    let charset = charset
        .map(|c| format!(" CHARACTER SET {c}"))
        .unwrap_or_default();
    // Also when the plan saw it: a racing session may have seeded it, never dropped it.
    let create = format!("CREATE DATABASE IF NOT EXISTS `{name}`{charset};");
    if matches!(
        state,
        Seed::Create | Seed::Redo { exists: false, .. } | Seed::AfterOther { exists: false, .. }
    ) {
        sql.shown.push(create.clone());
    }
    sql.run(&create);
    sql.both(format!("DROP DATABASE IF EXISTS `{copy}`;"));
    sql.shown.push(format!(
        "CREATE DATABASE `{copy}`; -- with the character set and collation of {name}"
    ));
    sql.run(&format!(
        "SET @seed_stmt = (SELECT CONCAT('CREATE DATABASE `{copy}` CHARACTER SET ', \
         DEFAULT_CHARACTER_SET_NAME, ' COLLATE ', DEFAULT_COLLATION_NAME) \
         FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {lit});\n{EXEC_STMT}",
        lit = sql_str(name)
    ));
    sql.both(format!("USE `{copy}`;"));
    sql.shown.push(format!(
        "-- source {} ({} bytes, from the distribution)",
        db.script,
        script.len()
    ));
    sql.run(&String::from_utf8_lossy(script));
    sql.shown.push(format!(
        "-- check: {copy} holds {} and nothing RENAME TABLE cannot move",
        db.sentinel
    ));
    sql.run(&check_seeding_copy(db));
    sql.shown.push(format!(
        "RENAME TABLE `{copy}`.`T1` TO `{name}`.`T1`, ...; -- every table in one statement, \
         only while {name} is empty"
    ));
    sql.run(&move_tables(db));
    sql.both(format!("DROP DATABASE `{copy}`;"));
    sql.both(format!("DO RELEASE_LOCK({});", sql_str(&copy)));
}

/// Drops the seeding copy a run left beside a seeded database, under the lock
/// (a session that holds it is still using its copy).
fn drop_leftover_sql(db: &Database, sql: &mut Sql) {
    let copy = seeding_name(&db.name);
    take_seeding_lock(db, sql);
    sql.both(format!("DROP DATABASE IF EXISTS `{copy}`;"));
    sql.both(format!("DO RELEASE_LOCK({});", sql_str(&copy)));
}

/// Waits for the seeding lock of `db`, or stops the session with why.
fn take_seeding_lock(db: &Database, sql: &mut Sql) {
    let copy = sql_str(&seeding_name(&db.name));
    sql.shown.push(format!(
        "DO GET_LOCK({copy}, {SEED_LOCK_WAIT_SECS}); -- one seed of {} at a time",
        db.name
    ));
    sql.run(&format!(
        "SET @seed_lock = GET_LOCK({copy}, {SEED_LOCK_WAIT_SECS});"
    ));
    sql.run(&fail_unless(
        "@seed_lock = 1",
        None,
        &format!(
            "another session has been seeding {} for {SEED_LOCK_WAIT_SECS} s (it holds the lock {copy}): nothing of it was changed",
            db.name
        ),
    ));
}

/// The seeding copy must hold the sentinel, and only base tables: `RENAME TABLE`
/// cannot move a view, trigger, routine or event into another database. A copy
/// that fails is dropped, so the next plan seeds again from scratch.
fn check_seeding_copy(db: &Database) -> String {
    let copy = seeding_name(&db.name);
    let lit = sql_str(&copy);
    let drop = format!("DROP DATABASE IF EXISTS `{copy}`");
    let sentinel = format!(
        "EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = {lit} AND TABLE_NAME = {})",
        sql_str(&db.sentinel)
    );
    let movable = format!(
        "(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {lit} AND TABLE_TYPE <> 'BASE TABLE') \
         + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {lit}) \
         + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {lit}) \
         + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {lit}) = 0"
    );
    [
        fail_unless(
            &sentinel,
            Some(&drop),
            &format!(
                "the script {} did not create {} in {copy}; {} is unchanged",
                db.script, db.sentinel, db.name
            ),
        ),
        fail_unless(
            &movable,
            Some(&drop),
            &format!(
                "the script {} made views, triggers, routines or events, which RENAME TABLE cannot \
                 move into {}; {} is unchanged",
                db.script, db.name, db.name
            ),
        ),
    ]
    .join("\n")
}

/// Moves every table of the seeding copy into `db` in one `RENAME TABLE`, only
/// while `db` is empty (a session that waited for the lock finds it seeded).
fn move_tables(db: &Database) -> String {
    let name = &db.name;
    let copy = seeding_name(name);
    format!(
        "SET @seed_pairs = (SELECT GROUP_CONCAT(CONCAT('`{copy}`.`', REPLACE(TABLE_NAME, '`', '``'), \
         '` TO `{name}`.`', REPLACE(TABLE_NAME, '`', '``'), '`') SEPARATOR ', ') \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = {copy_lit});\n\
         SET @seed_stmt = IF((SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {name_lit}) = 0, \
         CONCAT('RENAME TABLE ', @seed_pairs), 'DO 0');\n{EXEC_STMT}",
        copy_lit = sql_str(&copy),
        name_lit = sql_str(name),
    )
}

/// Runs the statement in `@seed_stmt`: plain SQL has no `IF` outside stored
/// programs, so a conditional statement is prepared from a string.
const EXEC_STMT: &str =
    "PREPARE seed_stmt FROM @seed_stmt;\nEXECUTE seed_stmt;\nDEALLOCATE PREPARE seed_stmt;";

/// Statements that, when `cond` is not true, run `cleanup` and then stop the
/// session, printing `message` as a row marked [`STOPPED`] (the script repeats it
/// last on stderr). `SIGNAL` cannot be prepared on MySQL, so what stops the
/// session is a reference to an unknown column.
fn fail_unless(cond: &str, cleanup: Option<&str>, message: &str) -> String {
    let mut out = format!("SET @seed_ok = ({cond});\n");
    let mut when_false = |stmt: &str| {
        out.push_str(&format!(
            "SET @seed_stmt = IF(@seed_ok, 'DO 0', {});\n{EXEC_STMT}\n",
            sql_str(stmt)
        ))
    };
    if let Some(cleanup) = cleanup {
        when_false(cleanup);
    }
    when_false(&format!(
        "SELECT {}",
        sql_str(&format!("{STOPPED}{message}"))
    ));
    when_false("SELECT `stopped`");
    out
}

/// Marks the row that says why a session stopped.
const STOPPED: &str = "stopped: ";

/// The whole session. The client's output goes to stderr, with the reason a
/// session stopped itself (if any) moved to the last line, where the failure
/// report looks.
fn session_script(p: &Params, sql: &str) -> String {
    let delimiter = heredoc_delimiter(sql);
    format!(
        "set -eu -o pipefail\n\
         {client} --batch -N 2>&1 <<'{delimiter}' | awk '/^{STOPPED}/ {{ why = why \"mysql: \" substr($0, {from}) \"\\n\"; next }} \
         {{ print > \"/dev/stderr\" }} END {{ printf \"%s\", why > \"/dev/stderr\" }}'\n\
         {sql}\n{delimiter}\n",
        client = login(p).client(),
        from = STOPPED.len() + 1,
    )
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
        seeding_name_fits(&db.name)?;
    }
    if let Some(c) = &p.charset {
        ident("charset", c)?;
    }
    login(p).validate()
}

/// A database's seeding copy must be a name of its own that MySQL accepts.
fn seeding_name_fits(name: &str) -> Result<(), ModuleError> {
    let copy = seeding_name(name);
    if copy.len() > NAME_MAX {
        return Err(ModuleError::new(format!(
            "mysql: database name {name:?} is too long: at most {} characters, so that its \
             seeding copy {copy} fits MySQL's {NAME_MAX}",
            NAME_MAX - SEEDING_SUFFIX.len()
        )));
    }
    if name.ends_with(SEEDING_SUFFIX) {
        return Err(ModuleError::new(format!(
            "mysql: database name {name:?} is not allowed: names ending in {SEEDING_SUFFIX} \
             are the seeding copies of other databases"
        )));
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
    fn probe_output_is_parsed_into_schemas_tables_and_locks() {
        let f = parse_probe(
            "S\tappdb\t\nT\tappdb\tORDERS\nG\tapp@10.0.0.%\tappdb\n\
             L\tappdb__seeding\t12\nL\tuserdb__seeding\tNULL\n",
        );
        assert_eq!(
            f.locks.get("appdb__seeding").map(String::as_str),
            Some("12")
        );
        assert!(!f.locks.contains_key("userdb__seeding"));
        assert!(f.schemas["appdb"].contains("ORDERS"));
    }

    fn appdb() -> Database {
        Database {
            name: "appdb".into(),
            script: "s.sql".into(),
            sentinel: "ORDERS".into(),
        }
    }

    /// Facts with `appdb` holding `target` tables (absent: `None`), its seeding copy
    /// holding `copy` tables, and the copy's lock held by connection `lock`.
    fn facts(target: Option<&[&str]>, copy: Option<&[&str]>, lock: Option<&str>) -> DbFacts {
        let mut f = DbFacts::default();
        let set = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        if let Some(t) = target {
            f.schemas.insert("appdb".into(), set(t));
        }
        if let Some(t) = copy {
            f.schemas.insert("appdb__seeding".into(), set(t));
        }
        if let Some(id) = lock {
            f.locks.insert("appdb__seeding".into(), id.into());
        }
        f
    }

    #[test]
    fn each_database_state_has_one_decision() {
        // should: absent → create; empty → fill; a copy nobody holds beside an empty or
        // absent database → redo; a held copy → wait for the other session; seeded → done,
        // or drop the copy a finished seed left; tables without the sentinel → refused.
        let db = appdb();
        let seeded: &[&str] = &["ORDERS", "ITEMS"];
        let half: &[&str] = &["ITEMS"];
        let redo = |tables, exists| Ok(Seed::Redo { tables, exists });
        let after = |session: &str, exists| {
            Ok(Seed::AfterOther {
                session: session.into(),
                exists,
            })
        };
        let cases: Vec<(DbFacts, Result<Seed, ()>)> = vec![
            (facts(None, None, None), Ok(Seed::Create)),
            (facts(Some(&[]), None, None), Ok(Seed::Fill)),
            (facts(Some(&[]), Some(half), None), redo(1, true)),
            (facts(None, Some(&[]), None), redo(0, false)),
            (facts(Some(&[]), Some(half), Some("42")), after("42", true)),
            (facts(None, None, Some("7")), after("7", false)),
            (facts(Some(seeded), None, None), Ok(Seed::Done)),
            (
                facts(Some(seeded), Some(&[]), None),
                Ok(Seed::DropLeftover { tables: 0 }),
            ),
            (facts(Some(seeded), Some(seeded), Some("9")), Ok(Seed::Done)),
            (facts(Some(half), None, None), Err(())),
            (facts(Some(half), Some(seeded), None), Err(())),
        ];
        for (f, expected) in cases {
            let got = seed_state(&db, &f);
            match (&got, &expected) {
                (Err(e), Err(())) => {
                    assert!(e.contains("holds 1 tables but not ORDERS"), "{e}");
                    assert!(e.contains("not made by a seed"), "{e}");
                }
                (Ok(g), Ok(x)) => assert_eq!(g, x, "{f:?}"),
                _ => panic!("{f:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn a_seed_never_touches_a_database_with_tables_nor_a_copy_a_session_holds(
            target in proptest::option::of(proptest::collection::btree_set(
                proptest::sample::select(vec!["ORDERS", "ITEMS", "USERS"]), 0..3)),
            copy in proptest::option::of(0usize..3),
            lock in proptest::option::of("[0-9]{1,3}"),
        ) {
            // should: seeding (create, fill, redo, after another) only where the database
            // is absent or empty; a database with tables is done or refused, by its
            // sentinel; a copy is dropped only when no session holds its lock.
            use proptest::{prop_assert, prop_assert_eq};
            let db = appdb();
            let mut f = DbFacts::default();
            if let Some(t) = &target {
                f.schemas.insert("appdb".into(), t.iter().map(|s| s.to_string()).collect());
            }
            if let Some(n) = copy {
                let tables = (0..n).map(|i| format!("T{i}")).collect();
                f.schemas.insert("appdb__seeding".into(), tables);
            }
            if let Some(id) = &lock {
                f.locks.insert("appdb__seeding".into(), id.clone());
            }
            let tables = target.as_ref().map_or(0, |t| t.len());
            let sentinel = target.as_ref().is_some_and(|t| t.contains("ORDERS"));
            let free = lock.is_none();
            match seed_state(&db, &f) {
                Ok(Seed::Done) => prop_assert!(sentinel),
                Ok(Seed::DropLeftover { .. }) => prop_assert!(sentinel && copy.is_some() && free),
                Ok(Seed::Create) => prop_assert!(target.is_none() && copy.is_none() && free),
                Ok(Seed::Fill) => {
                    prop_assert!(target.is_some() && tables == 0 && copy.is_none() && free)
                }
                Ok(Seed::Redo { exists, .. }) => {
                    prop_assert!(tables == 0 && copy.is_some() && free);
                    prop_assert_eq!(exists, target.is_some());
                }
                Ok(Seed::AfterOther { .. }) => prop_assert!(tables == 0 && !free),
                Err(_) => prop_assert!(tables > 0 && !sentinel),
            }
        }
    }

    #[test]
    fn the_seed_moves_tables_under_the_lock_and_stops_with_its_reason() {
        // should: the session takes the copy's lock before anything else, sources into
        // the copy, moves with one RENAME only while the database is empty, then drops
        // the copy and unlocks; a failed check prints a marked reason.
        let mut sql = Sql::default();
        let script = b"CREATE TABLE ORDERS (ID INT);";
        seed_sql(&appdb(), Some("latin1"), &Seed::Create, script, &mut sql);
        let run = &sql.run;
        let at = |needle: &str| {
            run.find(needle)
                .unwrap_or_else(|| panic!("{needle} not in\n{run}"))
        };
        let order = [
            "GET_LOCK('appdb__seeding', 300)",
            "CREATE DATABASE IF NOT EXISTS `appdb` CHARACTER SET latin1;",
            "DROP DATABASE IF EXISTS `appdb__seeding`;",
            "USE `appdb__seeding`;",
            "CREATE TABLE ORDERS",
            "CONCAT('RENAME TABLE ', @seed_pairs)",
            "DROP DATABASE `appdb__seeding`;",
            "DO RELEASE_LOCK('appdb__seeding');",
        ];
        for pair in order.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{} before {}", pair[0], pair[1]);
        }
        assert!(
            run.contains("did not create ORDERS in appdb__seeding; appdb is unchanged"),
            "{run}"
        );
        assert_eq!(
            sql.shown[0],
            "DO GET_LOCK('appdb__seeding', 300); -- one seed of appdb at a time"
        );
        assert!(
            sql.shown
                .contains(&"CREATE DATABASE IF NOT EXISTS `appdb` CHARACTER SET latin1;".into())
        );
    }

    #[test]
    fn a_name_whose_seeding_copy_would_not_fit_is_refused() {
        assert!(seeding_name_fits(&"a".repeat(55)).is_ok());
        let e = seeding_name_fits(&"a".repeat(56)).unwrap_err().to_string();
        assert!(e.contains("at most 55 characters"), "{e}");
        let e = seeding_name_fits("appdb__seeding").unwrap_err().to_string();
        assert!(e.contains("seeding copies"), "{e}");
    }

    #[test]
    fn sql_strings_and_option_values_are_escaped() {
        assert_eq!(sql_str("it's\\"), "'it''s\\\\'");
        assert_eq!(option_value("a\"b"), "\"a\\\"b\"");
    }
}
