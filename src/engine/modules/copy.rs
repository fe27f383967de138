//! `copy`: a controller file on the host, by checksum (the distribution
//! archive, the JDBC driver jar). Skipped when the host already has a file with
//! the pinned sha256; otherwise streamed and verified on the far side.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Action, Decision, ModuleError};
use crate::engine::probe::Fact;
use crate::engine::state::HostState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The file on the controller (already verified against `sha256`).
    pub src: PathBuf,
    pub sha256: String,
    /// Absolute destination path on the host.
    pub dest: String,
    #[serde(default)]
    pub owner: Option<String>,
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    Ok(vec![Fact::Sha256(p.dest.clone())])
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    match state.probed_sha256(&p.dest) {
        Some(d) if d.eq_ignore_ascii_case(&p.sha256) => Ok(Decision::ok(format!(
            "{} has sha256 {}",
            p.dest,
            short(&p.sha256)
        ))),
        found => {
            let why = match found {
                Some(d) => format!(
                    "{} has sha256 {}, want {}",
                    p.dest,
                    short(d),
                    short(&p.sha256)
                ),
                None => format!("{} is missing", p.dest),
            };
            Ok(Decision::change(
                why,
                vec![Action::Upload {
                    local: p.src.clone(),
                    remote: p.dest.clone(),
                    sha256: p.sha256.to_lowercase(),
                    owner: p.owner.clone(),
                }],
            ))
        }
    }
}

fn short(d: &str) -> &str {
    &d[..d.len().min(12)]
}
