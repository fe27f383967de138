//! Reporting: every event of a run goes through one [`Reporter`], which writes
//! through the [`Shell`]: plain lines when not on a terminal, an indicatif
//! display on one, or NDJSON with `--json`. Nothing else in the engine prints.
//! The line of each kind of event (a task, a failure, a restart, the recap) has
//! one formatter here, which `restart`'s reporters use too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::modules::{FileDiff, Verdict};
use super::shell::{Shell, Style};

/// Something that happened during a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart {
        /// The event stream's schema (docs/events.md): `apim-deploy.events/1`.
        schema: String,
        command: String,
        hosts: usize,
        nodes: usize,
    },
    PhaseStart {
        phase: String,
    },
    TaskStart {
        target: String,
        task: String,
    },
    TaskEnd {
        target: String,
        task: String,
        #[serde(flatten)]
        verdict: Verdict,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        diffs: Vec<FileDiff>,
    },
    TaskFailed {
        target: String,
        task: String,
        error: String,
    },
    Restart {
        target: String,
        healthy: bool,
        duration_ms: u64,
    },
    Recap {
        hosts: Vec<HostRecap>,
        ok: bool,
        duration_ms: u64,
    },
}

impl Event {
    /// Whether the event tells of a failure: what `-q` still prints.
    pub fn is_failure(&self) -> bool {
        match self {
            Event::TaskFailed { .. } => true,
            Event::Restart { healthy, .. } => !healthy,
            Event::Recap { ok, .. } => !ok,
            _ => false,
        }
    }
}

/// Per-host totals at the end of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostRecap {
    pub host: String,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub restarted: usize,
    pub duration_ms: u64,
}

pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// The reporter the shell calls for: NDJSON with `--json`, the live display on a
/// terminal, plain lines otherwise.
pub fn reporter(shell: Arc<Shell>, show_diffs: bool) -> Arc<dyn Reporter> {
    if shell.is_json() {
        Arc::new(JsonReporter::new(shell))
    } else if shell.is_live() {
        Arc::new(ProgressReporter::new(shell, show_diffs))
    } else {
        Arc::new(PlainReporter::new(shell, show_diffs))
    }
}

/// Plain, line-per-event output without control codes (CI, pipes).
pub struct PlainReporter {
    shell: Arc<Shell>,
    show_diffs: bool,
}

impl PlainReporter {
    pub fn new(shell: Arc<Shell>, show_diffs: bool) -> Self {
        PlainReporter { shell, show_diffs }
    }
}

impl Reporter for PlainReporter {
    fn event(&self, e: &Event) {
        let sh = &self.shell;
        let failure = e.is_failure();
        let text = match e {
            Event::RunStart {
                command,
                hosts,
                nodes,
                ..
            } => format!("{command}: {hosts} host(s), {nodes} node(s)\n"),
            // Hosts do not wait for each other at phase boundaries, so a heading
            // would stand over other hosts' lines; each line names its target.
            Event::PhaseStart { .. } | Event::TaskStart { .. } => return,
            Event::TaskEnd {
                target,
                task,
                verdict,
                duration_ms,
                diffs,
            } => {
                let mut text = task_line(sh, target, task, verdict, *duration_ms) + "\n";
                if self.show_diffs {
                    for d in diffs {
                        text.push_str(&d.diff);
                    }
                }
                text
            }
            Event::TaskFailed {
                target,
                task,
                error,
            } => failed_line(sh, target, task, error) + "\n",
            Event::Restart {
                target,
                healthy,
                duration_ms,
            } => restart_line(sh, target, *healthy, *duration_ms) + "\n",
            Event::Recap {
                hosts,
                ok,
                duration_ms,
            } => recap_text(sh, hosts, *ok, *duration_ms),
        };
        let _ = if failure {
            sh.print_always(&text)
        } else {
            sh.print(&text)
        };
    }
}

/// NDJSON: one JSON object per event (schema in docs/events.md); `restart` and
/// `status` stream their own events through it too.
pub struct JsonReporter {
    shell: Arc<Shell>,
}

impl JsonReporter {
    pub fn new(shell: Arc<Shell>) -> Self {
        JsonReporter { shell }
    }

    /// Writes one event of any kind as a line.
    pub fn line<E: Serialize>(&self, e: &E) {
        let _ = self.shell.print_json_line(e);
    }
}

impl Reporter for JsonReporter {
    fn event(&self, e: &Event) {
        self.line(e);
    }
}

/// The first 12 characters of a digest, for people. Characters, not bytes: a digest
/// read from a host may be anything, and a byte slice can split a character.
pub fn short_digest(d: &str) -> &str {
    d.char_indices().nth(12).map_or(d, |(end, _)| &d[..end])
}

pub fn fmt_ms(ms: u64) -> String {
    let d = Duration::from_millis(ms);
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// A finished task: `  changed app1/api: task (reason) [1.2s]`.
pub fn task_line(sh: &Shell, target: &str, task: &str, verdict: &Verdict, ms: u64) -> String {
    let (tag, style) = match verdict {
        Verdict::Ok(_) => ("ok", Style::Good),
        Verdict::Change(_) => ("changed", Style::Changed),
        Verdict::Skipped(_) => ("skipped", Style::Dim),
    };
    format!(
        "{} {target}: {task} ({}) [{}]",
        sh.paint(style, &format!("{tag:>8}")),
        verdict.reason(),
        fmt_ms(ms)
    )
}

/// A failed task: `  FAILED app1/api: task: error`.
pub fn failed_line(sh: &Shell, target: &str, task: &str, error: &str) -> String {
    format!(
        "{} {target}: {task}: {error}",
        sh.paint(Style::Bad, "  FAILED")
    )
}

/// A node (re)started by `apply` or `restart`: `  started app1/api: healthy in 3.2s`.
pub fn restart_line(sh: &Shell, target: &str, healthy: bool, ms: u64) -> String {
    let (tag, style, state) = if healthy {
        (" started", Style::Good, "healthy")
    } else {
        ("  FAILED", Style::Bad, "not healthy")
    };
    format!(
        "{} {target}: {state} in {}",
        sh.paint(style, tag),
        fmt_ms(ms)
    )
}

/// The end of `apply` and `restart`: the recap table, then `done in 12.3s` (or `FAILED`).
pub fn recap_text(sh: &Shell, hosts: &[HostRecap], ok: bool, ms: u64) -> String {
    let verdict = if ok {
        sh.paint(Style::Good, "done")
    } else {
        sh.paint(Style::Bad, "FAILED")
    };
    format!("{}\n{verdict} in {}\n", recap_table(hosts), fmt_ms(ms))
}

/// The recap as an aligned text table.
pub fn recap_table(hosts: &[HostRecap]) -> String {
    let mut s = format!(
        "{:<16} {:>4} {:>8} {:>7} {:>8} {:>10} {:>9}\n",
        "HOST", "OK", "CHANGED", "FAILED", "SKIPPED", "RESTARTED", "TIME"
    );
    for h in hosts {
        s.push_str(&format!(
            "{:<16} {:>4} {:>8} {:>7} {:>8} {:>10} {:>9}\n",
            h.host,
            h.ok,
            h.changed,
            h.failed,
            h.skipped,
            h.restarted,
            fmt_ms(h.duration_ms)
        ));
    }
    s.trim_end().to_string()
}

/// The terminal display: one spinner line per host showing its current task,
/// changes and failures printed above the spinners, then the recap table.
pub struct ProgressReporter {
    shell: Arc<Shell>,
    multi: indicatif::MultiProgress,
    bars: Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
    show_diffs: bool,
}

impl ProgressReporter {
    pub fn new(shell: Arc<Shell>, show_diffs: bool) -> Self {
        ProgressReporter {
            multi: shell.live_display(),
            shell,
            bars: Mutex::new(Default::default()),
            show_diffs,
        }
    }

    fn bar(&self, target: &str) -> indicatif::ProgressBar {
        let host = target.split('/').next().unwrap_or(target).to_string();
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(host.clone())
            .or_insert_with(|| {
                let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {prefix:<12} {wide_msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(host);
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .clone()
    }

    fn say(&self, line: String) {
        let _ = self.multi.println(line);
    }
}

impl Reporter for ProgressReporter {
    fn event(&self, e: &Event) {
        let sh = &self.shell;
        match e {
            Event::RunStart { .. } | Event::PhaseStart { .. } => {}
            Event::TaskStart { target, task } => {
                self.bar(target).set_message(format!("{target}: {task}"))
            }
            Event::TaskEnd {
                target,
                task,
                verdict: verdict @ Verdict::Change(_),
                duration_ms,
                diffs,
            } => {
                self.say(task_line(sh, target, task, verdict, *duration_ms));
                if self.show_diffs {
                    for d in diffs {
                        self.say(d.diff.trim_end().to_string());
                    }
                }
                self.bar(target).set_message("");
            }
            Event::TaskEnd { target, .. } => self.bar(target).set_message(""),
            Event::TaskFailed {
                target,
                task,
                error,
            } => self.say(failed_line(sh, target, task, error)),
            Event::Restart {
                target,
                healthy,
                duration_ms,
            } => self.say(restart_line(sh, target, *healthy, *duration_ms)),
            Event::Recap {
                hosts,
                ok,
                duration_ms,
            } => {
                for bar in self.bars.lock().expect("progress lock").values() {
                    bar.finish_and_clear();
                }
                let _ = self.multi.clear();
                let _ = sh.print(&recap_text(sh, hosts, *ok, *duration_ms));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Verbosity;

    fn plain(events: &[Event]) -> String {
        let (shell, capture) = Shell::capture();
        let r = PlainReporter::new(Arc::new(shell), false);
        for e in events {
            r.event(e);
        }
        capture.out()
    }

    #[test]
    fn plain_lines_keep_their_shape() {
        let out = plain(&[
            Event::TaskEnd {
                target: "app1/api".into(),
                task: "server.xml".into(),
                verdict: Verdict::Change("Port".into()),
                duration_ms: 1200,
                diffs: vec![],
            },
            Event::TaskFailed {
                target: "app1".into(),
                task: "unpack".into(),
                error: "no space".into(),
            },
            Event::Restart {
                target: "app1/api".into(),
                healthy: false,
                duration_ms: 3000,
            },
            Event::Recap {
                hosts: vec![HostRecap {
                    host: "app1".into(),
                    changed: 1,
                    failed: 1,
                    ..Default::default()
                }],
                ok: false,
                duration_ms: 5000,
            },
        ]);
        assert_eq!(
            out,
            " changed app1/api: server.xml (Port) [1.2s]\n\
             \x20 FAILED app1: unpack: no space\n\
             \x20 FAILED app1/api: not healthy in 3.0s\n\
             HOST               OK  CHANGED  FAILED  SKIPPED  RESTARTED      TIME\n\
             app1                0        1       1        0          0       0ms\n\
             FAILED in 5.0s\n"
        );
    }

    #[test]
    fn quiet_prints_only_failures_and_the_recap_of_a_failed_run() {
        let run = |ok: bool| {
            let (shell, capture) = Shell::capture();
            let r = PlainReporter::new(Arc::new(shell.with_verbosity(Verbosity::Quiet)), false);
            for e in [
                Event::TaskEnd {
                    target: "app1".into(),
                    task: "user".into(),
                    verdict: Verdict::Change("created".into()),
                    duration_ms: 1,
                    diffs: vec![],
                },
                Event::Restart {
                    target: "app1/api".into(),
                    healthy: true,
                    duration_ms: 1,
                },
                Event::Recap {
                    hosts: vec![],
                    ok,
                    duration_ms: 1,
                },
            ] {
                r.event(&e);
            }
            if !ok {
                r.event(&Event::TaskFailed {
                    target: "app2".into(),
                    task: "unpack".into(),
                    error: "no space".into(),
                });
            }
            capture.out()
        };
        assert_eq!(run(true), "", "a quiet run that went well prints nothing");
        let failed = run(false);
        assert!(failed.contains("FAILED in 1ms"), "{failed}");
        assert!(failed.contains("FAILED app2: unpack: no space"), "{failed}");
        assert!(!failed.contains("changed"), "{failed}");
    }

    #[test]
    fn coloured_lines_are_the_plain_lines_painted() {
        let (shell, _) = Shell::capture();
        let shell = shell.with_color(true);
        assert_eq!(
            restart_line(&shell, "app1/web", true, 42),
            "\x1b[32m started\x1b[0m app1/web: healthy in 42ms"
        );
        assert_eq!(
            recap_text(&shell, &[], true, 1500).lines().last(),
            Some("\x1b[32mdone\x1b[0m in 1.5s")
        );
    }
}
