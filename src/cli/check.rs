//! `apim-deploy check INVENTORY`: validate and print the topology.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
}

pub fn exec(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`check` is being built (issue #2)")
}
