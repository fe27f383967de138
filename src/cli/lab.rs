//! `apim-deploy lab ...`: the local lab of real hosts (crate `apim-lab`).

use std::process::ExitCode;

use super::dist;

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Build the lab (root on Linux).
    Up,
    /// Write the stand-in WSO2 API Manager 1.9.0 distribution and JDBC jar.
    Dist(dist::Args),
}

pub fn exec(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::Dist(args) => dist::exec(args),
        LabCommand::Up => anyhow::bail!("`lab up` is being built (issue #3)"),
    }
}
