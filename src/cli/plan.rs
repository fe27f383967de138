//! `apim-deploy plan INVENTORY`: what `apply` would do, changing nothing.
//! Exit 0: nothing would change; 2: something would; 1: error (like
//! `terraform plan -detailed-exitcode`).

use std::process::ExitCode;

use crate::deploy;
use crate::engine::modules::Verdict;
use crate::engine::plan::Plan;
use crate::engine::saved::SavedPlan;
use crate::engine::shell::{Shell, Style};

/// Only what changes the plan: `apply`'s `--forks`, `--transfers`, `--diff` (a plan
/// always shows its diffs) and `--start-timeout` mean nothing here, so they are not offered.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: super::apply::Target,
    /// Print the plan as one JSON document (schema apim-deploy.plan/1: docs/plan-json.md).
    #[arg(long)]
    pub json: bool,
    /// Also save the plan to FILE, for `apply INVENTORY --plan FILE` to do exactly that
    /// (schema apim-deploy.saved-plan/1, no secret in it: docs/saved-plans.md).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<ExitCode> {
    // `plan` never takes the lock (the shared options leave it unset): it only says
    // when a run is in progress.
    let opts = args.target.options()?;
    let rt = tokio::runtime::Runtime::new()?;
    let (plan, saved) = rt.block_on(async {
        let prepared = deploy::prepare(&opts).await?;
        for t in prepared.hosts.values() {
            t.close().await;
        }
        for (host, holder) in &prepared.in_progress {
            shell.print_err(&format!(
                "warning: {host}: a run is in progress: {holder}; this plan may be out of date when it ends\n"
            ));
        }
        let saved = match &args.out {
            Some(_) => Some(SavedPlan::new(
                &prepared.plan,
                prepared.inputs.clone(),
                &prepared.run.redactor,
            )?),
            None => None,
        };
        anyhow::Ok((prepared.plan, saved))
    })?;
    if let (Some(path), Some(saved)) = (&args.out, saved) {
        write_saved(path, &saved)?;
        // The plan-shaping flags are part of the saved plan: the hint repeats them.
        let mut shaping = String::new();
        if !opts.limit.is_all() {
            shaping.push_str(&format!(" --limit '{}'", opts.limit));
        }
        for check in &args.target.skip_preflight {
            shaping.push_str(&format!(" --skip-preflight {check}"));
        }
        shell.print_err(&format!(
            "saved the plan to {}; apply exactly it with: apim-deploy apply {} --plan {}{shaping}\n",
            path.display(),
            args.target.inventory.display(),
            path.display()
        ));
    }
    if shell.is_json() {
        shell.print_json(&plan.to_json())?;
    } else {
        shell.print(&plan_text(shell, &plan))?;
    }
    Ok(ExitCode::from(if plan.changes() == 0 { 0 } else { 2 }))
}

/// The human form of a plan: every step in execution order, diffs, SQL, restarts.
pub fn plan_text(shell: &Shell, plan: &Plan) -> String {
    use std::fmt::Write;
    let paint = |style, s: &str| shell.paint(style, s);
    let mut out = String::new();
    let mut phase = "";
    for step in &plan.steps {
        if step.phase != phase {
            phase = &step.phase;
            let _ = writeln!(out, "\n== {phase}");
        }
        let tag = match &step.verdict {
            Verdict::Ok(_) => paint(Style::Good, "  no change"),
            Verdict::Change(_) => paint(Style::Changed, "will change"),
            Verdict::Skipped(_) => paint(Style::Dim, "    skipped"),
        };
        let _ = writeln!(
            out,
            "{tag} {}: {} ({})",
            step.target,
            step.task,
            step.verdict.reason()
        );
        for d in &step.diffs {
            for line in d.diff.lines() {
                let line = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => paint(Style::Good, line),
                    Some('-') if !line.starts_with("---") => paint(Style::Bad, line),
                    Some('@') => paint(Style::Hunk, line),
                    _ => line.to_string(),
                };
                let _ = writeln!(out, "      {line}");
            }
        }
        for sql in &step.sql {
            let _ = writeln!(out, "      sql> {sql}");
        }
        for w in &step.warnings {
            let _ = writeln!(out, "      {} {w}", paint(Style::Changed, "warning:"));
        }
    }
    let restarts = plan.restarts();
    if !restarts.is_empty() {
        let _ = writeln!(out, "\nRestarts, in order:");
        for r in restarts {
            let _ = writeln!(out, "  {} ({})", r.target, r.verdict.reason());
        }
    }
    let n = plan.changes();
    let _ = writeln!(
        out,
        "\nPlan: {n} change(s) in {} step(s).{}",
        plan.steps.len(),
        if n == 0 { " Nothing to do." } else { "" }
    );
    out
}

/// Writes a saved plan beside its final name, then renames it there: a reader never
/// sees half a plan.
fn write_saved(path: &std::path::Path, saved: &SavedPlan) -> anyhow::Result<()> {
    let fail =
        |e: std::io::Error| anyhow::anyhow!("cannot save the plan to {}: {e}", path.display());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, saved.to_bytes()).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
