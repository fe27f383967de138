//! `mysql_stored_password`: a password that an application keeps in one of its own
//! tables as a salted digest, kept equal to the inventory's.
//!
//! Servers that create their administrator on first start from a configuration file
//! never read that file's password again: afterwards the stored digest is the
//! credential, and changing the file alone leaves every node presenting a password the
//! store rejects. This module compares the stored digest with the wanted password and,
//! when they differ, writes a fresh salt and the new digest.
//!
//! The digest is `base64(sha256(password + salt))` where the salt is the base64 text of
//! 16 bytes, the scheme of a JDBC user store with a SHA-256 digest and salted
//! passwords. It is computed here: the password never travels to the database host, and
//! the probe returns the stored salt and digest, which stay in memory (never printed).
//! A missing row is left alone: the application creates it on its first start.

use base64ct::{Base64, Encoding};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::mysql::{ServerLogin, default_host, default_port, sql_str};
use super::{Action, Decision, ModuleError};
use crate::probe::Fact;
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub admin_user: String,
    pub admin_password: String,
    pub database: String,
    pub table: String,
    /// The column that names the user, and the user.
    pub user_column: String,
    pub user: String,
    pub password_column: String,
    pub salt_column: String,
    /// Further columns the row must match (a tenant), as `column = value`.
    #[serde(default)]
    pub filters: toml::Table,
    /// The password the store must accept.
    pub password: String,
}

const SALT_BYTES: usize = 16;

/// The stored digest of `password` with `salt` (the salt's text, as stored).
pub fn digest(password: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(password.as_bytes());
    h.update(salt.as_bytes());
    Base64::encode_string(&h.finalize())
}

/// The salt a new digest gets: derived from the salt it replaces and the password, so
/// the plan is a value (`apply --plan` finds the same action) while each rotation still
/// gets a fresh salt. It tells no more than the digest stored beside it.
fn next_salt(old_salt: &str, password: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"next salt\0");
    h.update(old_salt.as_bytes());
    h.update(b"\0");
    h.update(password.as_bytes());
    Base64::encode_string(&h.finalize()[..SALT_BYTES])
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    validate(p)?;
    Ok(vec![Fact::Shell(probe(p))])
}

fn row_condition(p: &Params) -> String {
    let mut cond = format!("`{}` = {}", p.user_column, sql_str(&p.user));
    for (column, value) in &p.filters {
        let value = match value {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        cond.push_str(&format!(" AND `{column}` = {}", sql_str(&value)));
    }
    cond
}

fn probe(p: &Params) -> String {
    run_sql(
        p,
        &format!(
            "SELECT 'R', `{salt}`, `{pw}` FROM `{db}`.`{table}` WHERE {cond};",
            salt = p.salt_column,
            pw = p.password_column,
            db = p.database,
            table = p.table,
            cond = row_condition(p),
        ),
        "-N -B",
    )
}

fn login(p: &Params) -> ServerLogin<'_> {
    ServerLogin {
        module: "mysql_stored_password",
        host: &p.host,
        port: p.port,
        user: &p.admin_user,
        password: &p.admin_password,
    }
}

fn run_sql(p: &Params, sql: &str, flags: &str) -> String {
    login(p).with_sql(sql, flags)
}

/// The stored (salt, digest), `None` when the row does not exist (yet).
fn stored(p: &Params, state: &HostState) -> Result<Option<(String, String)>, ModuleError> {
    let (rc, out) = state
        .probed_shell(&probe(p))
        .ok_or_else(|| ModuleError::new("mysql_stored_password: the probe did not run"))?;
    let out = String::from_utf8_lossy(out);
    if rc != 0 {
        // A table that does not exist yet is a database still to be seeded.
        if out.contains("ERROR 1146") || out.contains("ERROR 1049") {
            return Ok(None);
        }
        return Err(login(p).refused(&format!("read {}.{}", p.database, p.table), &out));
    }
    Ok(out.lines().find_map(|line| {
        let mut cols = line.split('\t');
        (cols.next() == Some("R")).then(|| {
            let salt = cols.next().unwrap_or_default().to_string();
            let digest = cols.next().unwrap_or_default().to_string();
            (salt, digest)
        })
    }))
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    validate(p)?;
    let who = format!("{} in {}.{}", p.user, p.database, p.table);
    let Some((salt, stored_digest)) = stored(p, state)? else {
        return Ok(Decision::ok(format!(
            "{who}: no such row yet (the first server to start creates it from its configuration)"
        )));
    };
    if digest(&p.password, &salt) == stored_digest {
        return Ok(Decision::ok(format!(
            "{who}: the stored password is the wanted one"
        )));
    }
    let salt = next_salt(&salt, &p.password);
    let set = |digest: &str, salt: &str| {
        format!(
            "UPDATE `{db}`.`{table}` SET `{pw}` = {digest}, `{sc}` = {salt} WHERE {cond};",
            db = p.database,
            table = p.table,
            pw = p.password_column,
            sc = p.salt_column,
            cond = row_condition(p),
        )
    };
    let sql = set(&sql_str(&digest(&p.password, &salt)), &sql_str(&salt));
    let script = format!("set -eu\n{}", run_sql(p, &sql, "--batch"));
    let mut d = Decision::change(
        format!("{who}: the password changed (secret changed): a new salt and digest"),
        vec![Action::Script {
            describe: format!("write the new password digest of {}", p.user),
            script,
        }],
    );
    d.sql = vec![set("'********'", "'********'")];
    Ok(d)
}

fn validate(p: &Params) -> Result<(), ModuleError> {
    let ident = |what: &str, v: &str| {
        if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            Err(ModuleError::new(format!(
                "mysql_stored_password: {what} {v:?} is not allowed (letters, digits and _, at most 64)"
            )))
        } else {
            Ok(())
        }
    };
    ident("database", &p.database)?;
    ident("table", &p.table)?;
    ident("user column", &p.user_column)?;
    ident("password column", &p.password_column)?;
    ident("salt column", &p.salt_column)?;
    for column in p.filters.keys() {
        ident("filter column", column)?;
    }
    login(p).validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_hashes_the_password_then_the_salt_text() {
        // sha256("admin" + "c2FsdA==") in base64, as a JDBC user store keeps it.
        let want = {
            let d = Sha256::digest(b"adminc2FsdA==");
            Base64::encode_string(&d)
        };
        assert_eq!(digest("admin", "c2FsdA=="), want);
        assert_eq!(want.len(), 44);
        let salt = next_salt("c2FsdA==", "admin");
        assert_eq!(salt.len(), 24);
        assert_ne!(
            salt,
            next_salt(&salt, "admin"),
            "each rotation a fresh salt"
        );
    }

    fn params() -> Params {
        let mut filters = toml::Table::new();
        filters.insert("TENANT".into(), toml::Value::Integer(-1234));
        Params {
            host: default_host(),
            port: 3306,
            admin_user: "root".into(),
            admin_password: "r".into(),
            database: "userdb".into(),
            table: "USERS".into(),
            user_column: "NAME".into(),
            user: "admin".into(),
            password_column: "PW".into(),
            salt_column: "SALT".into(),
            filters,
            password: "n3w 'pw'".into(),
        }
    }

    #[test]
    fn a_stored_digest_of_another_password_is_replaced_and_no_value_is_shown() {
        let p = params();
        let mut facts = crate::probe::Facts::default();
        let salt = "c2FsdHNhbHRzYWx0c2FsdA==";
        facts.insert(
            Fact::Shell(probe(&p)),
            crate::probe::Answer::Output {
                rc: 0,
                stdout: format!("R\t{salt}\t{}\n", digest("old", salt)).into_bytes(),
            },
        );
        let mut state = HostState::new(facts.clone());
        let d = decide(&p, &mut state).unwrap();
        assert!(d.verdict.is_change());
        assert_eq!(
            d.sql,
            [
                "UPDATE `userdb`.`USERS` SET `PW` = '********', `SALT` = '********' \
              WHERE `NAME` = 'admin' AND `TENANT` = '-1234';"
            ]
        );
        let Action::Script { script, .. } = &d.actions[0] else {
            panic!("a script")
        };
        assert!(!script.contains("n3w"), "the password itself never leaves");

        facts.insert(
            Fact::Shell(probe(&p)),
            crate::probe::Answer::Output {
                rc: 0,
                stdout: format!("R\t{salt}\t{}\n", digest(&p.password, salt)).into_bytes(),
            },
        );
        let d = decide(&p, &mut HostState::new(facts)).unwrap();
        assert!(!d.verdict.is_change());
    }
}
