//! `apim-deploy plan INVENTORY`: what `apply` would do, changing nothing.
//! Exit 0: nothing would change; 2: something would; 1: error (like
//! `terraform plan -detailed-exitcode`).

use std::io::Write;
use std::process::ExitCode;

use crate::deploy;
use crate::engine::modules::Verdict;
use crate::engine::plan::Plan;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: super::apply::Args,
}

pub fn exec(args: Args) -> anyhow::Result<ExitCode> {
    let opts = args.common.options()?;
    let rt = tokio::runtime::Runtime::new()?;
    let plan = rt.block_on(async {
        let prepared = deploy::prepare(&opts).await?;
        for t in prepared.hosts.values() {
            t.close().await;
        }
        anyhow::Ok(prepared.plan)
    })?;
    let mut out = std::io::stdout().lock();
    if args.common.json {
        serde_json::to_writer_pretty(&mut out, &plan.to_json())?;
        writeln!(out)?;
    } else {
        let color = super::fancy(&std::io::stdout());
        print_plan(&mut out, &plan, color)?;
    }
    Ok(ExitCode::from(if plan.changes() == 0 { 0 } else { 2 }))
}

/// The human form of a plan: every step in execution order, diffs, SQL, restarts.
pub fn print_plan(out: &mut impl Write, plan: &Plan, color: bool) -> std::io::Result<()> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut phase = "";
    for step in &plan.steps {
        if step.phase != phase {
            phase = &step.phase;
            writeln!(out, "\n== {phase}")?;
        }
        let tag = match &step.verdict {
            Verdict::Ok(_) => paint("32", "  no change"),
            Verdict::Change(_) => paint("33", "will change"),
            Verdict::Skipped(_) => paint("2", "    skipped"),
        };
        writeln!(
            out,
            "{tag} {}: {} ({})",
            step.target,
            step.task,
            step.verdict.reason()
        )?;
        for d in &step.diffs {
            for line in d.diff.lines() {
                let line = match line.chars().next() {
                    Some('+') if !line.starts_with("+++") => paint("32", line),
                    Some('-') if !line.starts_with("---") => paint("31", line),
                    Some('@') => paint("36", line),
                    _ => line.to_string(),
                };
                writeln!(out, "      {line}")?;
            }
        }
        for sql in &step.sql {
            writeln!(out, "      sql> {sql}")?;
        }
    }
    let restarts = plan.restarts();
    if !restarts.is_empty() {
        writeln!(out, "\nRestarts, in order:")?;
        for r in restarts {
            writeln!(out, "  {} ({})", r.target, r.verdict.reason())?;
        }
    }
    let n = plan.changes();
    writeln!(
        out,
        "\nPlan: {n} change(s) in {} step(s).{}",
        plan.steps.len(),
        if n == 0 { " Nothing to do." } else { "" }
    )
}
