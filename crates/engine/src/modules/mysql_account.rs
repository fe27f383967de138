//! `mysql_account`: the application's database login, its password and its grants,
//! rotated without a moment in which a running server cannot open a connection.
//!
//! MariaDB has no dual passwords and MySQL 5.7 neither, so a password cannot change
//! under servers that still present the old one. The login therefore has two slots,
//! `USER` and `USER_2`: a new password goes to the slot the servers do not use, the
//! servers switch to it one by one (their files change, so they restart in the usual
//! rolling, health-gated way), and only when every one of them is healthy on it is the
//! old slot dropped. The task runs in two stages:
//!
//! * `switch` (before the servers are configured): the slot whose accounts already
//!   hold the password stays; else the password goes to a free slot. Either way the
//!   slot's accounts and grants are completed. The chosen slot is exported as `user`,
//!   which the servers' configuration reads.
//! * `retire` (after every server started, `after_all`): the other slot is dropped.
//!
//! A run killed anywhere converges: the slot holding the password is found again by
//! its hash, servers still on the old slot switch, and the old slot goes last.
//!
//! Passwords never reach the server in clear text: accounts are made with the
//! `mysql_native_password` hash (`*` + SHA1(SHA1(password)), computed here), which is
//! also what lets the probe recognise a slot's password without logging in, and what
//! old JDBC drivers need (Connector/J 5.1 cannot use `caching_sha2_password`).

use std::collections::BTreeSet;

use serde::Deserialize;
use sha1::{Digest, Sha1};

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
    /// The login's name; its second slot is this name with `_2`.
    pub user: String,
    pub password: String,
    /// Which databases the login may use, from which hosts.
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub stage: Stage,
    /// `retire` only: the slot the servers use now (the `switch` stage's export).
    #[serde(default)]
    pub keep: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub database: String,
    /// Host parts of the accounts: node addresses or a pattern with `%`.
    pub hosts: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    Switch,
    Retire,
}

/// The longest name MySQL 5.7 and 8.0 take (MariaDB allows 80), less the slot suffix.
const MAX_USER: usize = 32 - SLOT_SUFFIX.len();
const SLOT_SUFFIX: &str = "_2";
const NATIVE: &str = "mysql_native_password";

/// The two slots of a login.
pub fn slots(user: &str) -> [String; 2] {
    [user.to_string(), format!("{user}{SLOT_SUFFIX}")]
}

/// The `mysql_native_password` hash of a password.
fn native_hash(password: &str) -> String {
    let once = Sha1::digest(password.as_bytes());
    let twice = Sha1::digest(once);
    format!("*{}", hex::encode_upper(twice))
}

/// One account of a slot as the server has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    user: String,
    host: String,
    /// The account holds the wanted password (native hash equal).
    current: bool,
}

#[derive(Debug, Default)]
struct Found {
    accounts: Vec<Account>,
    /// (user, host, database)
    grants: BTreeSet<(String, String, String)>,
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    validate(p)?;
    Ok(vec![Fact::Shell(probe(p))])
}

/// Lists both slots' accounts, each with whether it holds the wanted password, and
/// their grants. The hash travels in the SQL on stdin, never on a command line, and
/// the answer is a yes or no, never the server's hash.
fn probe(p: &Params) -> String {
    let [a, b] = slots(&p.user);
    let users = format!("{},{}", sql_str(&a), sql_str(&b));
    let sql = format!(
        "SELECT 'A', User, Host, plugin = '{NATIVE}' AND authentication_string = {hash} \
         FROM mysql.user WHERE User IN ({users});\n\
         SELECT 'G', User, Host, Db FROM mysql.db WHERE User IN ({users});",
        hash = sql_str(&native_hash(&p.password)),
    );
    run_sql(p, &sql, "-N -B")
}

fn login(p: &Params) -> ServerLogin<'_> {
    ServerLogin {
        module: "mysql_account",
        host: &p.host,
        port: p.port,
        user: &p.admin_user,
        password: &p.admin_password,
    }
}

fn run_sql(p: &Params, sql: &str, flags: &str) -> String {
    login(p).with_sql(sql, flags)
}

fn parse(out: &str) -> Found {
    let mut f = Found::default();
    for line in out.lines() {
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            ["A", user, host, current] => f.accounts.push(Account {
                user: user.to_string(),
                host: host.to_string(),
                current: *current == "1",
            }),
            ["G", user, host, db] => {
                f.grants
                    .insert((user.to_string(), host.to_string(), db.to_string()));
            }
            _ => {}
        }
    }
    f
}

fn probed(p: &Params, state: &HostState) -> Result<Found, ModuleError> {
    let (rc, out) = state
        .probed_shell(&probe(p))
        .ok_or_else(|| ModuleError::new("mysql_account: the account probe did not run"))?;
    let out = String::from_utf8_lossy(out);
    if rc != 0 {
        return Err(login(p).refused("read the accounts", &out));
    }
    Ok(parse(&out))
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    validate(p)?;
    let found = probed(p, state)?;
    match p.stage {
        Stage::Switch => Ok(switch(p, &found)),
        Stage::Retire => retire(p, &found),
    }
}

/// The values a later task may read (`user`), known before the probe: the name a
/// first install uses. The planner renders again when the decision exports another.
pub fn provisional_exports(p: &Params) -> serde_json::Map<String, serde_json::Value> {
    exports(&p.user)
}

fn exports(user: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("user".into(), user.into());
    m
}

/// Which slot the servers should use: the one whose accounts hold the password, else
/// a free one; `rotating` when the password moves to a new slot.
fn choose(p: &Params, found: &Found) -> (String, bool) {
    let holds = |slot: &str| {
        let mine: Vec<&Account> = found.accounts.iter().filter(|a| a.user == slot).collect();
        !mine.is_empty() && mine.iter().all(|a| a.current)
    };
    let exists = |slot: &str| found.accounts.iter().any(|a| a.user == slot);
    let both = slots(&p.user);
    if let Some(slot) = both.iter().find(|s| holds(s)) {
        return (slot.clone(), false);
    }
    // A slot with some accounts on the password (a switch that was cut short).
    if let Some(slot) = both
        .iter()
        .find(|s| found.accounts.iter().any(|a| a.user == **s && a.current))
    {
        return (slot.clone(), false);
    }
    match both.iter().find(|s| !exists(s)) {
        Some(free) => (free.clone(), exists(&both[0]) || exists(&both[1])),
        // Both slots hold other passwords: an earlier rotation never finished and the
        // password changed again. The first slot takes it; its servers switch back.
        None => (both[0].clone(), true),
    }
}

fn switch(p: &Params, found: &Found) -> Decision {
    let (slot, rotating) = choose(p, found);
    let hash = native_hash(&p.password);
    let mut shown = Vec::new();
    let mut run = String::new();
    let mut why = Vec::new();
    for host in account_hosts(p) {
        let account = format!("{}@{}", sql_str(&slot), sql_str(host));
        let had = found
            .accounts
            .iter()
            .find(|a| a.user == slot && a.host == host);
        let verb = match had {
            None => "CREATE USER",
            Some(a) if !a.current => "ALTER USER",
            Some(_) => "",
        };
        if !verb.is_empty() {
            let statement = |h: &str| format!("{verb} {account} IDENTIFIED WITH {NATIVE} AS {h};");
            shown.push(statement("'********'"));
            run.push_str(&statement(&sql_str(&hash)));
            run.push('\n');
        }
        for db in databases_for(p, host) {
            if !found
                .grants
                .contains(&(slot.clone(), host.to_string(), db.to_string()))
            {
                let grant = format!("GRANT ALL ON `{db}`.* TO {account};");
                shown.push(grant.clone());
                run.push_str(&grant);
                run.push('\n');
            }
        }
        match had {
            None => why.push(format!("{slot}@{host} will be created")),
            Some(a) if !a.current => why.push(format!("{slot}@{host} will take the new password")),
            _ => {}
        }
    }
    let missing_grants = run.contains("GRANT") && why.is_empty();
    if missing_grants {
        why.push(format!("{slot} will be granted what it lacks"));
    }
    let mut d = if run.is_empty() {
        Decision::ok(format!("the servers log in as {slot}"))
    } else {
        let reason = if rotating {
            format!(
                "the password changed: it goes to the login {slot} (the servers switch to it, then the old login is dropped); {}",
                why.join("; ")
            )
        } else {
            why.join("; ")
        };
        let script = format!("set -eu\n{}", run_sql(p, &run, "--batch"));
        let mut d = Decision::change(
            reason,
            vec![Action::Script {
                describe: format!("set the login {slot}'s password and grants"),
                script,
            }],
        );
        d.sql = shown;
        d
    };
    d.exports = exports(&slot);
    d
}

fn retire(p: &Params, found: &Found) -> Result<Decision, ModuleError> {
    let keep = p
        .keep
        .as_deref()
        .ok_or_else(|| ModuleError::new("mysql_account: stage `retire` needs `keep`"))?;
    if !slots(&p.user).iter().any(|s| s == keep) {
        return Err(ModuleError::new(format!(
            "mysql_account: `keep` {keep:?} is not a slot of {}",
            p.user
        )));
    }
    let old: Vec<&Account> = found.accounts.iter().filter(|a| a.user != keep).collect();
    if old.is_empty() {
        return Ok(Decision::ok(format!("only the login {keep} exists")));
    }
    let statement = |a: &Account| {
        format!(
            "DROP USER IF EXISTS {}@{};",
            sql_str(&a.user),
            sql_str(&a.host)
        )
    };
    let sql: Vec<String> = old.iter().map(|a| statement(a)).collect();
    let script = format!("set -eu\n{}", run_sql(p, &sql.join("\n"), "--batch"));
    let mut d = Decision::change(
        format!(
            "the old login {} will be dropped once every server uses {keep}",
            old[0].user
        ),
        vec![Action::Script {
            describe: format!("drop the old login {}", old[0].user),
            script,
        }],
    );
    d.sql = sql;
    Ok(d)
}

/// Every host part the login needs, in first-seen order.
fn account_hosts(p: &Params) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for host in p.grants.iter().flat_map(|g| &g.hosts) {
        if !out.contains(&host.as_str()) {
            out.push(host);
        }
    }
    out
}

fn databases_for<'p>(p: &'p Params, host: &str) -> Vec<&'p str> {
    p.grants
        .iter()
        .filter(|g| g.hosts.iter().any(|h| h == host))
        .map(|g| g.database.as_str())
        .collect()
}

fn validate(p: &Params) -> Result<(), ModuleError> {
    let name_ok = |v: &str, max: usize| {
        !v.is_empty()
            && v.len() <= max
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    if !name_ok(&p.user, MAX_USER) {
        return Err(ModuleError::new(format!(
            "mysql_account: user {:?} is not allowed (letters, digits, _ . -, at most {MAX_USER}: \
             its second slot adds {SLOT_SUFFIX:?} and MySQL allows 32)",
            p.user
        )));
    }
    for g in &p.grants {
        if g.database.is_empty()
            || !g
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ModuleError::new(format!(
                "mysql_account: database {:?} is not allowed (letters, digits and _)",
                g.database
            )));
        }
        for h in &g.hosts {
            if h.is_empty()
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-%:".contains(c))
            {
                return Err(ModuleError::new(format!(
                    "mysql_account: grant host {h:?} is not allowed (an address, a name, or a pattern with %)"
                )));
            }
        }
    }
    login(p).validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(stage: Stage) -> Params {
        Params {
            host: default_host(),
            port: 3306,
            admin_user: "root".into(),
            admin_password: "r".into(),
            user: "app".into(),
            password: "new secret".into(),
            grants: vec![
                Grant {
                    database: "one".into(),
                    hosts: vec!["10.0.0.1".into(), "10.0.0.2".into()],
                },
                Grant {
                    database: "two".into(),
                    hosts: vec!["10.0.0.1".into()],
                },
            ],
            stage,
            keep: None,
        }
    }

    fn account(user: &str, host: &str, current: bool) -> Account {
        Account {
            user: user.into(),
            host: host.into(),
            current,
        }
    }

    fn granted(found: &mut Found, user: &str) {
        for (h, d) in [
            ("10.0.0.1", "one"),
            ("10.0.0.2", "one"),
            ("10.0.0.1", "two"),
        ] {
            found.grants.insert((user.into(), h.into(), d.into()));
        }
    }

    #[test]
    fn the_native_hash_is_mysqls() {
        // PASSWORD('password') on MySQL 5.7 / MariaDB.
        assert_eq!(
            native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
    }

    #[test]
    fn a_first_install_creates_the_first_slot_with_its_grants() {
        let d = switch(&params(Stage::Switch), &Found::default());
        assert!(d.verdict.is_change());
        assert_eq!(d.exports["user"], "app");
        assert_eq!(
            d.sql
                .iter()
                .filter(|s| s.starts_with("CREATE USER"))
                .count(),
            2
        );
        assert_eq!(d.sql.iter().filter(|s| s.starts_with("GRANT")).count(), 3);
        assert!(
            d.sql
                .iter()
                .all(|s| !s.contains("*") || s.contains("'********'") || s.contains(".*"))
        );
    }

    #[test]
    fn a_converged_login_changes_nothing() {
        let mut found = Found {
            accounts: vec![
                account("app", "10.0.0.1", true),
                account("app", "10.0.0.2", true),
            ],
            ..Default::default()
        };
        granted(&mut found, "app");
        let d = switch(&params(Stage::Switch), &found);
        assert!(!d.verdict.is_change(), "{:?}", d.verdict);
        assert_eq!(d.exports["user"], "app");
    }

    #[test]
    fn a_new_password_goes_to_the_free_slot_and_the_old_one_is_retired_last() {
        let mut found = Found {
            accounts: vec![
                account("app", "10.0.0.1", false),
                account("app", "10.0.0.2", false),
            ],
            ..Default::default()
        };
        granted(&mut found, "app");
        let d = switch(&params(Stage::Switch), &found);
        assert_eq!(d.exports["user"], "app_2");
        assert!(d.verdict.reason().contains("password changed"));
        // The old slot is untouched by the switch.
        assert!(d.sql.iter().all(|s| !s.contains("'app'@")), "{:?}", d.sql);

        let mut retire_p = params(Stage::Retire);
        retire_p.keep = Some("app_2".into());
        found.accounts.push(account("app_2", "10.0.0.1", true));
        let r = retire(&retire_p, &found).unwrap();
        assert_eq!(r.sql.len(), 2);
        assert!(
            r.sql
                .iter()
                .all(|s| s.starts_with("DROP USER IF EXISTS 'app'@"))
        );
    }

    #[test]
    fn a_switch_cut_short_keeps_the_slot_that_already_has_the_password() {
        // The second slot got one account before the run died; the first is the old one.
        let found = Found {
            accounts: vec![
                account("app", "10.0.0.1", false),
                account("app", "10.0.0.2", false),
                account("app_2", "10.0.0.1", true),
            ],
            ..Default::default()
        };
        let d = switch(&params(Stage::Switch), &found);
        assert_eq!(d.exports["user"], "app_2");
        assert!(
            d.sql
                .iter()
                .any(|s| s.starts_with("CREATE USER 'app_2'@'10.0.0.2'"))
        );
    }

    #[test]
    fn a_rotation_back_reuses_the_first_slot_once_it_was_dropped() {
        let found = Found {
            accounts: vec![
                account("app_2", "10.0.0.1", false),
                account("app_2", "10.0.0.2", false),
            ],
            ..Default::default()
        };
        assert_eq!(
            switch(&params(Stage::Switch), &found).exports["user"],
            "app"
        );
    }

    #[test]
    fn retire_with_only_the_kept_slot_is_a_no_op() {
        let found = Found {
            accounts: vec![account("app", "10.0.0.1", true)],
            ..Default::default()
        };
        let mut p = params(Stage::Retire);
        p.keep = Some("app".into());
        assert!(!retire(&p, &found).unwrap().verdict.is_change());
        p.keep = Some("someone".into());
        assert!(retire(&p, &found).is_err());
    }

    #[test]
    fn probe_answers_are_parsed() {
        let f = parse("A\tapp\t10.0.0.1\t1\nA\tapp_2\t%\t0\nG\tapp\t10.0.0.1\tone\nnoise\n");
        assert_eq!(f.accounts.len(), 2);
        assert!(f.accounts[0].current && !f.accounts[1].current);
        assert!(
            f.grants
                .contains(&("app".into(), "10.0.0.1".into(), "one".into()))
        );
    }

    #[test]
    fn the_probe_and_the_scripts_hold_no_password_on_a_command_line() {
        let p = params(Stage::Switch);
        let probe = probe(&p);
        let first_line = probe.lines().next().unwrap();
        assert!(!first_line.contains(&native_hash(&p.password)));
        assert!(
            probe.contains(&native_hash(&p.password)),
            "the hash goes on stdin"
        );
        assert!(!probe.contains(&p.password));
    }
}
