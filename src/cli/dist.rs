//! `apim-deploy lab dist`: write the stand-in WSO2 API Manager 1.9.0 distribution (crate `apim-standin`).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write `wso2am-1.9.0.zip` and the JDBC driver jar into.
    #[arg(long, default_value = "dist")]
    pub out: PathBuf,
}

pub fn exec(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`lab dist` is being built (issue #6)")
}
