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
pub mod completions;
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
    /// More output: -v the tool's own steps with timings, -vv also every remote
    /// command (secrets masked) and SSH events, -vvv also library internals.
    /// `APIM_LOG` (a tracing filter such as `apim=debug`) overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: errors only (and the recap when something failed).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate an inventory and print the derived topology.
    #[command(after_help = "Examples:\n  apim-deploy check inventory.toml
  apim-deploy check inventory.toml --offline      # do not read the artifacts and keys
  apim-deploy check inventory.toml --json | jq .nodes")]
    Check(check::Args),
    /// Bring every host to the playbook's state (install, configure, start).
    #[command(after_help = "Examples:\n  apim-deploy apply inventory.toml
  apim-deploy apply inventory.toml --limit 'app*,!app4' --diff
  apim-deploy apply inventory.toml --limit @inventory.toml.retry   # the hosts that failed last time
  apim-deploy apply inventory.toml --json > events.ndjson")]
    Apply(apply::Args),
    /// Show what `apply` would change, changing nothing (exit 0: nothing, 2: changes).
    #[command(after_help = "Examples:\n  apim-deploy plan inventory.toml
  apim-deploy plan inventory.toml --limit gateway
  apim-deploy plan inventory.toml --json | jq '.steps[] | select(.verdict == \"change\")'")]
    Plan(plan::Args),
    /// Restart nodes role by role, batch by batch, each confirmed healthy.
    #[command(
        after_help = "Examples:\n  apim-deploy restart inventory.toml --rolling
  apim-deploy restart inventory.toml --roles gateway --batch 50%
  apim-deploy restart inventory.toml --limit app2/store"
    )]
    Restart(restart::Args),
    /// Each node's process, ports, health, version and drift (exit 0 ok, 2 drift, 1 unhealthy).
    #[command(after_help = "Examples:\n  apim-deploy status inventory.toml
  apim-deploy status inventory.toml --limit keymanager --json")]
    Status(status::Args),
    /// Connect to every host and print what is there.
    #[command(after_help = "Examples:\n  apim-deploy facts inventory.toml
  apim-deploy facts inventory.toml --limit db --json")]
    Facts(facts::Args),
    /// Break a run lock whose run is gone, after showing whose it is.
    #[command(after_help = "Examples:\n  apim-deploy unlock inventory.toml")]
    Unlock(unlock::Args),
    /// A throwaway cluster of real hosts on this machine (root, Linux).
    #[command(
        subcommand,
        after_help = "Examples:\n  apim-deploy lab up && apim-deploy apply /tmp/apimlab/inventory.toml\n  apim-deploy lab status\n  apim-deploy lab down"
    )]
    Lab(lab::LabCommand),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    #[command(
        after_help = "Examples:\n  apim-deploy completions bash > /etc/bash_completion.d/apim-deploy\n  apim-deploy completions zsh > \"${fpath[1]}/_apim-deploy\"\n  apim-deploy completions fish > ~/.config/fish/completions/apim-deploy.fish"
    )]
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    #[command(
        after_help = "Examples:\n  apim-deploy man > /usr/local/share/man/man1/apim-deploy.1\n  apim-deploy man | man -l -"
    )]
    Man,
}

impl Command {
    /// Whether the command was asked for JSON (`--json`).
    fn json(&self) -> bool {
        match self {
            Command::Check(a) => a.json,
            Command::Apply(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Restart(a) => a.json,
            Command::Status(a) => a.json,
            Command::Facts(a) => a.json,
            Command::Unlock(_) | Command::Lab(_) | Command::Completions(_) | Command::Man => false,
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
        Command::Completions(args) => completions::completions(args, shell),
        Command::Man => completions::man(shell),
    }
}

/// The tracing filter for a verbosity. The SSH library logs every packet at debug
/// level, which drowns the tool's own lines, so it is heard only at `-vvv`.
pub fn log_filter(verbosity: Verbosity) -> &'static str {
    match verbosity {
        Verbosity::Quiet => "error,russh=off",
        Verbosity::Normal => "warn,russh=off",
        // The tool's steps (info) but not its remote commands (debug).
        Verbosity::Verbose(1) => "info,russh=off",
        Verbosity::Verbose(2) => "debug,russh=off",
        Verbosity::Verbose(_) => "trace",
    }
}

fn init_tracing(shell: &Shell) {
    use tracing_subscriber::EnvFilter;
    let level = log_filter(shell.verbosity());
    let filter = EnvFilter::try_from_env("APIM_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(shell.err_color())
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;

    /// The lines a subscriber with `verbosity`'s filter lets through, of one event each
    /// from the tool's steps, its remote commands, and the SSH library.
    fn heard(verbosity: Verbosity) -> Vec<&'static str> {
        use std::sync::{Arc, Mutex};
        let heard = Arc::new(Mutex::new(Vec::new()));
        struct Record(Arc<Mutex<Vec<&'static str>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Record {
            fn on_event(
                &self,
                e: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.lock().unwrap().push(e.metadata().target());
            }
        }
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new(log_filter(verbosity)))
            .with(Record(heard.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(target: "apim_deploy::deploy", "failed");
            tracing::info!(target: "apim_deploy::connect", "app1: connected in 12ms");
            tracing::debug!(target: crate::engine::traced::TARGET, "app1: $ true");
            tracing::debug!(target: "russh::client", "packet");
        });
        let targets = heard.lock().unwrap();
        targets.clone()
    }

    #[test]
    fn every_command_has_examples_in_its_help() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                if !help.contains("Examples:") || !help.contains(&path) {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "apim-deploy", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn plan_offers_no_flag_that_only_apply_uses_and_names_its_schema() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let plan = cli.find_subcommand("plan").unwrap();
        let longs: Vec<&str> = plan.get_arguments().filter_map(|a| a.get_long()).collect();
        for flag in ["forks", "diff", "transfers", "start-timeout"] {
            assert!(!longs.contains(&flag), "plan offers --{flag}");
        }
        let json = plan
            .get_arguments()
            .find(|a| a.get_long() == Some("json"))
            .unwrap();
        let help = json.get_help().unwrap().to_string();
        assert!(help.contains("apim-deploy.plan/1"), "{help}");
        assert!(Cli::try_parse_from(["apim-deploy", "plan", "i.toml", "--forks", "2"]).is_err());
    }

    #[test]
    fn each_v_adds_one_layer_and_the_ssh_library_only_at_vvv() {
        let steps = "apim_deploy::connect";
        let remote = crate::engine::traced::TARGET;
        assert_eq!(heard(Verbosity::Quiet), ["apim_deploy::deploy"]);
        assert_eq!(heard(Verbosity::Normal), ["apim_deploy::deploy"]);
        assert_eq!(heard(Verbosity::Verbose(1)), ["apim_deploy::deploy", steps]);
        assert_eq!(
            heard(Verbosity::Verbose(2)),
            ["apim_deploy::deploy", steps, remote]
        );
        assert_eq!(
            heard(Verbosity::Verbose(3)),
            ["apim_deploy::deploy", steps, remote, "russh::client"]
        );
    }
}
