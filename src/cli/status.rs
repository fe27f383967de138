//! `apim-deploy status INVENTORY`: every node's process, ports, health,
//! version, pending restart and drift (see `operate::status`). Exit 0: healthy
//! and in sync; 2: drift or a restart pending; 1: unhealthy or unreachable.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::engine::shell::Shell;
use crate::operate::events;
use crate::operate::status::{self, StatusOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    #[command(flatten)]
    pub limit: super::LimitArg,
    /// Print NDJSON (schema apim-deploy.status/1: docs/operations.md): `run_start`, one
    /// `node_status` per node, then `status_summary`.
    #[arg(long)]
    pub json: bool,
    /// Use this playbook instead of the built-in WSO2 API Manager 1.9 one.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
}

pub fn exec(args: Args, shell: &Arc<Shell>) -> anyhow::Result<ExitCode> {
    let opts = StatusOptions {
        inventory: args.inventory,
        playbook: args.playbook,
        limit: args.limit.parse()?,
    };
    let out = events::reporter(shell.clone(), false);
    let rt = tokio::runtime::Runtime::new()?;
    let summary = rt.block_on(status::status(&opts, out.as_ref()))?;
    Ok(ExitCode::from(summary.exit_code))
}
