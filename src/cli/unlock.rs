//! `apim-deploy unlock INVENTORY`: break a run lock left by a run that is gone.
//! A lock normally dies with its run (see `engine::lock`); this is for a holder
//! that outlived its controller on a host, and it shows whose lock it was.
//! Exit 0: no live lock remains; 1: a live run holds one, or a host did not answer.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::deploy::{self, Unlocked};
use crate::engine::shell::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    let found = rt.block_on(deploy::unlock(&args.inventory))?;
    let mut ok = true;
    let mut text = String::new();
    for (host, f) in &found {
        let line = match f {
            Unlocked::Free => format!("{host}: not locked"),
            Unlocked::Broken(h) => format!("{host}: broke the stale lock of {h}"),
            Unlocked::Live(why) => {
                ok = false;
                format!("{host}: {why}")
            }
            Unlocked::Unreachable(e) => {
                ok = false;
                format!("{host}: unreachable: {e}")
            }
        };
        text.push_str(&line);
        text.push('\n');
    }
    shell.print(&text)?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
