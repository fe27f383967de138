//! Command-line parsing and dispatch. Each subcommand has its own file with an
//! `Args` struct and an `exec` function; `exec` validates input, calls the
//! library, and returns the process exit code. No command opens a connection itself,
//! and none prints but through the [`Shell`] built here from the global flags.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::engine::limit::Limit;
use crate::engine::shell::{Shell, Verbosity};

pub mod apply;
pub mod check;
pub mod dist;
pub mod facts;
pub mod lab;
pub mod plan;
pub mod restart;
pub mod status;
pub mod table;
pub mod unlock;

/// `--limit`, parsed the same way by every command that takes it.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArg {
    /// Only these hosts, roles or nodes, comma-separated (`app2,gateway,app1/store`);
    /// `*` and `?` glob (`app*`), `!` excludes (`!app4`), `@FILE` reads patterns from FILE.
    #[arg(long = "limit", value_delimiter = ',', value_name = "PATTERN")]
    pub patterns: Vec<String>,
}

impl LimitArg {
    pub fn parse(&self) -> anyhow::Result<Limit> {
        Limit::parse(&self.patterns).map_err(anyhow::Error::msg)
    }
}

/// Deploy and operate a distributed WSO2 API Manager 1.9 cluster over SSH.
#[derive(Debug, Parser)]
#[command(name = "apim-deploy", version, about, long_about = None)]
pub struct Cli {
    /// More output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an inventory and print the derived topology.
    Check(check::Args),
    /// Bring every host to the playbook's state (install, configure, start).
    Apply(apply::Args),
    /// Show what `apply` would change, changing nothing (exit 0: nothing, 2: changes).
    Plan(plan::Args),
    /// Restart nodes role by role, batch by batch, each confirmed healthy.
    Restart(restart::Args),
    /// Each node's process, ports, health, version and drift (exit 0 ok, 2 drift, 1 unhealthy).
    Status(status::Args),
    /// Connect to every host and print what is there.
    Facts(facts::Args),
    /// Break a run lock whose run is gone, after showing whose it is.
    Unlock(unlock::Args),
    /// A throwaway cluster of real hosts on this machine (root, Linux).
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

impl Command {
    /// Whether the command was asked for JSON (`--json`).
    fn json(&self) -> bool {
        match self {
            Command::Check(a) => a.json,
            Command::Apply(a) => a.json,
            Command::Plan(a) => a.common.json,
            Command::Restart(a) => a.json,
            Command::Status(a) => a.json,
            Command::Facts(a) => a.json,
            Command::Unlock(_) => false,
            Command::Lab(_) => false,
        }
    }
}

/// Parses the process arguments, runs the command and returns its exit code.
/// Errors are printed once, here.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, n) => Verbosity::Verbose(n),
    };
    let shell = Arc::new(Shell::from_env(verbosity).with_json(cli.command.json()));
    init_tracing(&shell);
    match run(cli.command, &shell) {
        Ok(code) => code,
        Err(err) => {
            shell.error(err);
            ExitCode::from(1)
        }
    }
}

fn run(command: Command, shell: &Arc<Shell>) -> anyhow::Result<ExitCode> {
    match command {
        Command::Apply(args) => apply::exec(args, shell),
        Command::Plan(args) => plan::exec(args, shell),
        Command::Check(args) => check::exec(args, shell),
        Command::Restart(args) => restart::exec(args, shell),
        Command::Status(args) => status::exec(args, shell),
        Command::Facts(args) => facts::exec(args, shell),
        Command::Unlock(args) => unlock::exec(args, shell),
        Command::Lab(cmd) => lab::exec(cmd, shell),
    }
}

fn init_tracing(shell: &Shell) {
    use tracing_subscriber::EnvFilter;
    let level = match shell.verbosity() {
        Verbosity::Quiet => "error",
        Verbosity::Normal => "warn",
        Verbosity::Verbose(1) => "debug",
        Verbosity::Verbose(_) => "trace",
    };
    let filter = EnvFilter::try_from_env("APIM_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(shell.err_color())
        .try_init();
}
