//! `user`: the system account a service runs as (never root unless asked).

use serde::Deserialize;

use super::{Action, Decision, ModuleError};
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub name: String,
    pub home: String,
}

fn probe(p: &Params) -> String {
    format!("id -u {}", quote(&p.name))
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    valid_name(&p.name)?;
    Ok(vec![Fact::Shell(probe(p))])
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    valid_name(&p.name)?;
    if p.name == "root" {
        return Ok(Decision::ok("the service user is root (as configured)"));
    }
    match state.probed_shell(&probe(p)) {
        Some((0, _)) => Ok(Decision::ok(format!("user {} exists", p.name))),
        _ => Ok(Decision::change(
            format!("user {} will be created", p.name),
            vec![Action::Script {
                describe: format!("create user {}", p.name),
                script: format!(
                    "id -u {n} >/dev/null 2>&1 || useradd --system --create-home --home-dir {h} --shell /bin/bash {n}\n",
                    n = quote(&p.name),
                    h = quote(&p.home)
                ),
            }],
        )),
    }
}

fn valid_name(name: &str) -> Result<(), ModuleError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ModuleError::new(format!(
            "user: {name:?} is not a valid user name (lowercase letters, digits, _ and -, starting with a letter or _)"
        )))
    }
}
