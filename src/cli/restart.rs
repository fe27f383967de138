//! `apim-deploy restart INVENTORY`: a rolling, health-gated restart (see
//! `operate::restart` and docs/operations.md). Exit 0: every selected node came
//! back healthy; 1: the roll stopped or a node failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::engine::shell::Shell;
use crate::operate::events;
use crate::operate::restart::{self, Batch, RestartOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    /// Roll role by role, batch by batch (the default; kept for explicitness).
    #[arg(long)]
    pub rolling: bool,
    /// Nodes of one role restarted together: a count (1) or a share of the role (50%).
    #[arg(long, default_value = "1")]
    pub batch: Batch,
    /// Only these roles (comma-separated), still in dependency order.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    #[command(flatten)]
    pub limit: super::LimitArg,
    /// The most selected nodes down at any instant over the whole run, counting
    /// failed and already-stopped ones; a failure stops the roll only when no
    /// room is left. Unset: the first failure stops the roll.
    #[arg(long)]
    pub max_unavailable: Option<usize>,
    /// Seconds a node may take to become healthy again.
    #[arg(long, default_value_t = 180)]
    pub start_timeout: u64,
    /// Print an NDJSON event stream (schema apim-deploy.restart/1: docs/operations.md).
    #[arg(long)]
    pub json: bool,
    /// Use this playbook instead of the built-in WSO2 API Manager 1.9 one.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    /// Seconds to wait for another run's lock before giving up (0: stop at once).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub lock_timeout: u64,
}

pub fn exec(args: Args, shell: &Arc<Shell>) -> anyhow::Result<ExitCode> {
    if args.max_unavailable == Some(0) {
        anyhow::bail!("--max-unavailable 0 allows no node to go down; give 1 or more");
    }
    let mut opts = RestartOptions {
        inventory: args.inventory,
        playbook: args.playbook,
        batch: args.batch,
        roles: args.roles,
        limit: args.limit.parse()?,
        max_unavailable: args.max_unavailable,
        lock: crate::deploy::LockRequest {
            command: crate::deploy::this_command(),
            wait: std::time::Duration::from_secs(args.lock_timeout),
        },
        ..Default::default()
    };
    opts.settings.start_timeout_secs = args.start_timeout;
    let out = events::reporter(shell.clone(), true);
    let rt = tokio::runtime::Runtime::new()?;
    let outcome = rt.block_on(restart::restart(&opts, out.as_ref()))?;
    if outcome.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        for f in &outcome.failed {
            shell.error(format_args!("{f} did not come back healthy"));
        }
        Ok(ExitCode::from(1))
    }
}
