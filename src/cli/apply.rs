//! `apim-deploy apply INVENTORY`: bring every host to the playbook's state.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::deploy::{self, DeployOptions};
use crate::engine::shell::Shell;
use crate::engine::{limit, report};

/// What `plan` and `apply` both take: which inventory, which part of it, which playbook.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Target {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    #[command(flatten)]
    pub limit: super::LimitArg,
    /// Use this playbook instead of the built-in WSO2 API Manager 1.9 one.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    /// Skip one preflight check (repeatable): java, disk, ports, commands, clock, open-files.
    #[arg(long = "skip-preflight", value_name = "CHECK", value_parser = clap::builder::PossibleValuesParser::new(crate::engine::preflight::CHECKS))]
    pub skip_preflight: Vec<String>,
}

impl Target {
    pub fn options(&self) -> anyhow::Result<DeployOptions> {
        let mut o = DeployOptions {
            inventory: self.inventory.clone(),
            playbook: self.playbook.clone(),
            limit: self.limit.parse()?,
            ..Default::default()
        };
        o.settings.skip_checks = self.skip_preflight.iter().cloned().collect();
        Ok(o)
    }
}

#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    pub target: Target,
    /// Print an NDJSON event stream (schema apim-deploy.events/1: docs/events.md).
    #[arg(long)]
    pub json: bool,
    /// Show the diff of every file changed.
    #[arg(long)]
    pub diff: bool,
    /// How many hosts run a step at once.
    #[arg(long, default_value_t = 16)]
    pub forks: usize,
    /// How many large uploads (the distribution) stream at once; they go in the order
    /// the nodes start, so the first node to start is not slowed by the others.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub transfers: u16,
    /// Seconds a node may take to become healthy.
    #[arg(long, default_value_t = 180)]
    pub start_timeout: u64,
    /// Seconds to wait for another run's lock before giving up (0: stop at once).
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    pub lock_timeout: u64,
}

impl Args {
    pub fn options(&self) -> anyhow::Result<DeployOptions> {
        let mut o = self.target.options()?;
        o.settings.start_timeout_secs = self.start_timeout;
        o.exec.forks = self.forks;
        o.exec.transfers = usize::from(self.transfers);
        o.lock = Some(deploy::LockRequest {
            command: deploy::this_command(),
            wait: std::time::Duration::from_secs(self.lock_timeout),
        });
        Ok(o)
    }
}

pub fn exec(args: Args, shell: &Arc<Shell>) -> anyhow::Result<ExitCode> {
    let opts = args.options()?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let started = std::time::Instant::now();
        // Before the plan: a Ctrl-C while planning ends the run before its first step.
        let watcher = watch_interrupts(opts.exec.interrupted.clone(), shell.clone());
        let mut prepared = deploy::prepare(&opts).await?;
        for step in &prepared.plan.steps {
            for w in &step.warnings {
                shell.warn(format!("{}: {w}", step.target));
            }
        }
        let reporter = report::reporter(shell.clone(), args.diff);
        let outcome = deploy::apply(&mut prepared, reporter, &opts, started).await;
        watcher.abort();
        if !outcome.pending.is_empty() {
            let mut text = String::from(
                "interrupted: the steps already running finished; not started:\n",
            );
            for p in &outcome.pending {
                text.push_str(&format!("  {p}\n"));
            }
            text.push_str("a node changed before the interruption keeps its restart-pending mark: the next apply restarts it\n");
            shell.print_err(&text);
            return Ok(ExitCode::from(130));
        }
        if outcome.ok {
            Ok(ExitCode::SUCCESS)
        } else {
            for f in &outcome.failures {
                shell.error(f);
            }
            let failed: Vec<String> = outcome
                .hosts
                .iter()
                .filter(|h| h.failed > 0)
                .map(|h| h.host.clone())
                .collect();
            if !failed.is_empty() {
                let path = limit::retry_path(&args.target.inventory);
                match limit::write_retry_file(&path, &failed) {
                    Ok(()) => {
                        shell.print_err(&format!("retry with: --limit @{}\n", path.display()))
                    }
                    Err(e) => shell.error(format!("could not write {}: {e}", path.display())),
                }
            }
            Ok(ExitCode::from(1))
        }
    })
}

/// The first Ctrl-C stops new steps (the running ones reach their end, then the
/// run reports what was done and what is pending); a second one aborts at once.
fn watch_interrupts(
    interrupted: Arc<std::sync::atomic::AtomicBool>,
    shell: Arc<Shell>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
        shell.print_err(
            "interrupted: no new step starts; the running ones finish (Ctrl-C again to abort at once)\n",
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            shell.print_err("aborted\n");
            std::process::exit(130);
        }
    })
}
