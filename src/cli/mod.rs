//! Command-line parsing and dispatch. Each subcommand has its own file with an
//! `Args` struct and an `exec` function; `exec` validates input, calls the
//! library, and returns the process exit code. No command opens a connection itself.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::engine::limit::Limit;

pub mod apply;
pub mod check;
pub mod dist;
pub mod facts;
pub mod lab;
pub mod plan;
pub mod restart;
pub mod status;
pub mod table;

/// Whether output on this stream may use colour and a live display: a terminal, and
/// `NO_COLOR` unset (<https://no-color.org>). Pipes and CI get plain lines.
pub fn fancy(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

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
    /// A throwaway cluster of real hosts on this machine (root, Linux).
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

/// Parses the process arguments, runs the command and returns its exit code.
/// Errors are printed once, here.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Apply(args) => apply::exec(args),
        Command::Plan(args) => plan::exec(args),
        Command::Check(args) => check::exec(args),
        Command::Restart(args) => restart::exec(args),
        Command::Status(args) => status::exec(args),
        Command::Facts(args) => facts::exec(args),
        Command::Lab(cmd) => lab::exec(cmd),
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("APIM_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
