//! `apim-deploy lab dist`: write the stand-in WSO2 API Manager 1.9.0 distribution
//! (crate `apim-standin`) and print each file's sha256 for the inventory.

use std::path::PathBuf;
use std::process::ExitCode;

use apim_standin::{DEFAULT_START_DELAY_SECS, DistOptions};

use crate::engine::shell::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `wso2am-1.9.0.zip` and the JDBC driver jar into.
    #[arg(long, default_value = "dist")]
    pub out: PathBuf,
    /// Pad the archive with incompressible filler to about N MiB (0: no padding;
    /// ~150 gives the real distribution's size, for benchmarks).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub size_mb: u64,
    /// The stand-in server's start-up time: seconds from its process's start (checks
    /// included) to "WSO2 Carbon started" (the env var STANDIN_START_DELAY overrides it per run).
    #[arg(long, value_name = "S", default_value_t = DEFAULT_START_DELAY_SECS)]
    pub start_delay_secs: f64,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<ExitCode> {
    let opts = DistOptions {
        size_mb: args.size_mb,
        start_delay_secs: args.start_delay_secs,
    };
    let dist = apim_standin::write_dist(&args.out, &opts)?;
    // sha256sum's format, so the output can be checked with `sha256sum -c`.
    for artifact in [&dist.zip, &dist.jdbc_jar] {
        shell.print(&format!(
            "{}  {}\n",
            artifact.sha256,
            artifact.path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
