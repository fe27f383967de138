//! `host_check`: what a host should offer a long-running server but that does not
//! stop a deployment: a clock that agrees with the controller's (logs, tokens and
//! certificates are compared across hosts) and enough open files for the service
//! account. Findings are warnings, shown by `plan` and `apply`; nothing changes.

use serde::Deserialize;

use super::{Decision, ModuleError};
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The account whose open-files limit counts (the servers run as it).
    pub user: String,
    /// Warn below this many open files for `user`.
    #[serde(default = "default_open_files")]
    pub min_open_files: u64,
    /// Warn when the host's clock is further than this from the controller's.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
}

fn default_open_files() -> u64 {
    4096
}

fn default_skew() -> u64 {
    5
}

/// Prints `clock <unix secs>` and `nofile <limit>` (as `user` gets it when a start
/// runs as it; the current session's when the account does not exist yet).
fn probe(p: &Params) -> String {
    format!(
        "{}u={}\necho \"clock $(date +%s)\"\n\
         if [ \"$u\" != root ] && id -u -- \"$u\" >/dev/null 2>&1; then\n\
           echo \"nofile $(runuser -u \"$u\" -- sh -c 'ulimit -n' 2>/dev/null)\"\n\
         else echo \"nofile $(ulimit -n)\"; fi",
        crate::probe::VOLATILE,
        quote(&p.user)
    )
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    Ok(vec![Fact::Shell(probe(p))])
}

pub fn decide(p: &Params, state: &HostState) -> Result<Decision, ModuleError> {
    let out = state
        .probed_shell(&probe(p))
        .map(|(_, o)| String::from_utf8_lossy(o).into_owned())
        .unwrap_or_default();
    let value = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
    };
    let mut warnings = Vec::new();
    if state.checks("clock")
        && let (Some(host), Some(ours)) = (value("clock "), state.facts.asked_at)
    {
        let skew = host - ours;
        if skew.abs() > p.max_clock_skew_secs as f64 + 1.0 {
            warnings.push(format!(
                "its clock is {:.0} s {} the controller's (more than {} s): run NTP (chrony, systemd-timesyncd) on every host",
                skew.abs(),
                if skew > 0.0 { "ahead of" } else { "behind" },
                p.max_clock_skew_secs
            ));
        }
    }
    // `unlimited` parses as nothing: no warning.
    if state.checks("open-files")
        && let Some(limit) = value("nofile ")
        && limit < p.min_open_files as f64
    {
        warnings.push(format!(
            "{} may open only {limit:.0} files (below {}): raise `nofile` for it in /etc/security/limits.conf",
            p.user, p.min_open_files
        ));
    }
    let mut d = Decision::ok(if warnings.is_empty() {
        "clock and open-files limit fine".to_string()
    } else {
        format!("{} warning(s)", warnings.len())
    });
    d.warnings = warnings;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Answer, Facts};

    fn state(out: &str, asked_at: f64) -> (Params, HostState) {
        let p = Params {
            user: "svc".into(),
            min_open_files: 4096,
            max_clock_skew_secs: 5,
        };
        let mut facts = Facts::default();
        facts.insert(
            Fact::Shell(probe(&p)),
            Answer::Output {
                rc: 0,
                stdout: out.as_bytes().to_vec(),
            },
        );
        facts.asked_at = Some(asked_at);
        (p, HostState::new(facts))
    }

    #[test]
    fn a_skewed_clock_and_a_low_open_files_limit_are_warnings() {
        let (p, s) = state("clock 1000\nnofile 1024\n", 1012.4);
        let d = decide(&p, &s).unwrap();
        assert!(!d.verdict.is_change());
        assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
        assert!(
            d.warnings[0].contains("12 s behind the controller's"),
            "{:?}",
            d.warnings
        );
        assert!(
            d.warnings[1].contains("only 1024 files"),
            "{:?}",
            d.warnings
        );
        let (p, mut s) = state("clock 1000\nnofile 1024\n", 1012.4);
        s.skip_checks = ["clock".to_string(), "open-files".to_string()].into();
        assert!(decide(&p, &s).unwrap().warnings.is_empty());
    }

    #[test]
    fn a_close_clock_and_an_unlimited_or_high_limit_are_fine() {
        for out in [
            "clock 1000\nnofile 65535\n",
            "clock 1003\nnofile unlimited\n",
        ] {
            let (p, s) = state(out, 1000.5);
            assert!(decide(&p, &s).unwrap().warnings.is_empty(), "{out}");
        }
    }

    #[test]
    fn the_probe_reads_this_machines_clock_and_limit() {
        let p = Params {
            user: "root".into(),
            min_open_files: 4096,
            max_clock_skew_secs: 5,
        };
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(probe(&p))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("clock "), "{text}");
        assert!(text.contains("\nnofile "), "{text}");
    }
}
