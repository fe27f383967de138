//! Reporting: every event of a run goes through one [`Reporter`] (cargo's
//! `Shell`): plain lines when not on a terminal, an indicatif display on one,
//! or NDJSON with `--json`. Nothing else in the engine prints.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::modules::{FileDiff, Verdict};

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

/// Plain, line-per-event output without control codes (CI, pipes).
pub struct PlainReporter<W: Write + Send> {
    out: Mutex<W>,
    pub show_diffs: bool,
}

impl<W: Write + Send> PlainReporter<W> {
    pub fn new(out: W) -> Self {
        PlainReporter {
            out: Mutex::new(out),
            show_diffs: false,
        }
    }
}

impl<W: Write + Send> Reporter for PlainReporter<W> {
    fn event(&self, e: &Event) {
        let mut out = self.out.lock().expect("reporter lock");
        let _ = match e {
            Event::RunStart {
                command,
                hosts,
                nodes,
                ..
            } => {
                writeln!(out, "{command}: {hosts} host(s), {nodes} node(s)")
            }
            // Hosts do not wait for each other at phase boundaries, so a heading
            // would stand over other hosts' lines; each line names its target.
            Event::PhaseStart { .. } | Event::TaskStart { .. } => Ok(()),
            Event::TaskEnd {
                target,
                task,
                verdict,
                duration_ms,
                diffs,
            } => {
                let tag = match verdict {
                    Verdict::Ok(_) => "ok",
                    Verdict::Change(_) => "changed",
                    Verdict::Skipped(_) => "skipped",
                };
                let r = writeln!(
                    out,
                    "{tag:>8} {target}: {task} ({}) [{}]",
                    verdict.reason(),
                    fmt_ms(*duration_ms)
                );
                if self.show_diffs {
                    for d in diffs {
                        let _ = write!(out, "{}", d.diff);
                    }
                }
                r
            }
            Event::TaskFailed {
                target,
                task,
                error,
            } => {
                writeln!(out, "  FAILED {target}: {task}: {error}")
            }
            Event::Restart {
                target,
                healthy,
                duration_ms,
            } => writeln!(
                out,
                "{:>8} {target}: {} in {}",
                if *healthy { "started" } else { "FAILED" },
                if *healthy { "healthy" } else { "not healthy" },
                fmt_ms(*duration_ms)
            ),
            Event::Recap {
                hosts,
                ok,
                duration_ms,
            } => {
                let _ = writeln!(out, "{}", recap_table(hosts));
                writeln!(
                    out,
                    "{} in {}",
                    if *ok { "done" } else { "FAILED" },
                    fmt_ms(*duration_ms)
                )
            }
        };
    }
}

/// NDJSON: one JSON object per event (schema in docs/events.md).
pub struct JsonReporter<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        JsonReporter {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> Reporter for JsonReporter<W> {
    fn event(&self, e: &Event) {
        let mut out = self.out.lock().expect("reporter lock");
        if let Ok(line) = serde_json::to_string(e) {
            let _ = writeln!(out, "{line}");
        }
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
    multi: indicatif::MultiProgress,
    bars: Mutex<std::collections::BTreeMap<String, indicatif::ProgressBar>>,
    show_diffs: bool,
}

impl ProgressReporter {
    pub fn new(show_diffs: bool) -> Self {
        ProgressReporter {
            multi: indicatif::MultiProgress::new(),
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
        match e {
            Event::RunStart { .. } | Event::PhaseStart { .. } => {}
            Event::TaskStart { target, task } => {
                self.bar(target).set_message(format!("{target}: {task}"))
            }
            Event::TaskEnd {
                target,
                task,
                verdict: Verdict::Change(reason),
                duration_ms,
                diffs,
            } => {
                self.say(format!(
                    "\x1b[33mchanged\x1b[0m {target}: {task} ({reason}) [{}]",
                    fmt_ms(*duration_ms)
                ));
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
            } => self.say(format!("\x1b[31mFAILED\x1b[0m  {target}: {task}: {error}")),
            Event::Restart {
                target,
                healthy,
                duration_ms,
            } => self.say(if *healthy {
                format!(
                    "\x1b[32mstarted\x1b[0m {target}: healthy in {}",
                    fmt_ms(*duration_ms)
                )
            } else {
                format!(
                    "\x1b[31mFAILED\x1b[0m  {target}: not healthy after {}",
                    fmt_ms(*duration_ms)
                )
            }),
            Event::Recap {
                hosts,
                ok,
                duration_ms,
            } => {
                for bar in self.bars.lock().expect("progress lock").values() {
                    bar.finish_and_clear();
                }
                let _ = self.multi.clear();
                println!("{}", recap_table(hosts));
                println!(
                    "{} in {}",
                    if *ok {
                        "\x1b[32mdone\x1b[0m"
                    } else {
                        "\x1b[31mFAILED\x1b[0m"
                    },
                    fmt_ms(*duration_ms)
                );
            }
        }
    }
}
