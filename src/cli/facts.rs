//! `apim-deploy facts INVENTORY`: one probe round trip per host, printed per host.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn exec(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`facts` is being built (issue #4)")
}
