//! The output layer (cargo's `Shell`): one value owns the process's stdout and
//! stderr, the verbosity, whether colour is used, whether a live display may be
//! drawn, and whether the command speaks JSON. Every command and every reporter
//! writes through it, so these rules live in one place:
//!
//! * colour only on a terminal, never with `NO_COLOR` set (<https://no-color.org>),
//!   always with `CLICOLOR_FORCE` set to anything but `0` (so CI logs can keep it);
//! * a live display (spinners) only when stdout is a terminal and colour is not
//!   turned off, never with `--json`;
//! * a closed stdout (`| head`) ends the output quietly instead of failing the command;
//! * errors go to stderr as `error: ...`.
//!
//! [`Shell::capture`] gives a shell that writes into memory, for tests.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// How much the user asked to hear (`-q`, `-v`, `-vv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose(u8),
}

/// What a painted piece of text means; the shell picks how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Done, healthy, unchanged (green).
    Good,
    /// Will change or changed (yellow).
    Changed,
    /// Failed, removed (red).
    Bad,
    /// Skipped (dim).
    Dim,
    /// A diff hunk header (cyan).
    Hunk,
}

impl Style {
    fn ansi(self) -> &'static str {
        match self {
            Style::Good => "32",
            Style::Changed => "33",
            Style::Bad => "31",
            Style::Dim => "2",
            Style::Hunk => "36",
        }
    }
}

type Sink = Box<dyn Write + Send>;

pub struct Shell {
    out: Mutex<Sink>,
    err: Mutex<Sink>,
    out_color: bool,
    err_color: bool,
    out_terminal: bool,
    json: bool,
    verbosity: Verbosity,
}

impl Shell {
    /// The process's stdout and stderr, with colour decided per stream by the rules above.
    pub fn from_env(verbosity: Verbosity) -> Shell {
        let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let no_color = set("NO_COLOR").is_some();
        let force = set("CLICOLOR_FORCE").is_some_and(|v| v != "0");
        let color = |terminal: bool| !no_color && (force || terminal);
        let out_terminal = io::stdout().is_terminal();
        Shell {
            out: Mutex::new(Box::new(io::stdout())),
            err: Mutex::new(Box::new(io::stderr())),
            out_color: color(out_terminal),
            err_color: color(io::stderr().is_terminal()),
            out_terminal: out_terminal && !no_color && verbosity != Verbosity::Quiet,
            json: false,
            verbosity,
        }
    }

    /// A shell that writes into memory, without colour; read it through the [`Capture`].
    pub fn capture() -> (Shell, Capture) {
        let capture = Capture::default();
        let shell = Shell {
            out: Mutex::new(Box::new(capture.out.clone())),
            err: Mutex::new(Box::new(capture.err.clone())),
            out_color: false,
            err_color: false,
            out_terminal: false,
            json: false,
            verbosity: Verbosity::Normal,
        };
        (shell, capture)
    }

    /// This shell speaking JSON (`--json`): no colour, no live display.
    pub fn with_json(mut self, json: bool) -> Shell {
        self.json = json;
        if json {
            self.out_color = false;
            self.out_terminal = false;
        }
        self
    }

    /// This shell with colour on both streams forced on or off (tests of the coloured forms).
    pub fn with_color(mut self, color: bool) -> Shell {
        self.out_color = color;
        self.err_color = color;
        self
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether a live display (spinners redrawn in place) may be drawn.
    pub fn is_live(&self) -> bool {
        self.out_terminal && !self.json
    }

    /// Whether what goes to stderr may be coloured (error reports, logs).
    pub fn err_color(&self) -> bool {
        self.err_color
    }

    /// `text` in `style` when stdout is coloured, else as it is.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if self.out_color {
            format!("\x1b[{}m{text}\x1b[0m", style.ansi())
        } else {
            text.to_string()
        }
    }

    /// This shell at another verbosity (tests of `-q` and `-v`).
    pub fn with_verbosity(mut self, verbosity: Verbosity) -> Shell {
        self.verbosity = verbosity;
        if verbosity == Verbosity::Quiet {
            self.out_terminal = false;
        }
        self
    }

    /// Writes `text` to stdout as it is, unless the user asked for errors only
    /// (`-q`; JSON is still written, a program asked for it). A closed pipe is not
    /// an error: the reader has what it wanted, and the command's outcome does not
    /// depend on it.
    pub fn print(&self, text: &str) -> io::Result<()> {
        if self.verbosity == Verbosity::Quiet && !self.json {
            return Ok(());
        }
        self.print_always(text)
    }

    /// Writes `text` to stdout even with `-q`: a failure, or the recap of a run
    /// that failed, is what `-q` still shows.
    pub fn print_always(&self, text: &str) -> io::Result<()> {
        let mut out = self.out.lock().expect("shell lock");
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// One JSON document, pretty-printed, on stdout.
    pub fn print_json<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.print_always(&(text + "\n"))
    }

    /// One NDJSON line on stdout, flushed at once (a consumer follows the stream live).
    pub fn print_json_line<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        self.print_always(&(text + "\n"))
    }

    /// Writes `text` to stderr as it is (a report that formats itself).
    pub fn print_err(&self, text: &str) {
        let mut err = self.err.lock().expect("shell lock");
        let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
    }

    /// `error: <message>` on stderr (the alternate form, so an error's causes show too).
    pub fn error(&self, message: impl Display) {
        self.print_err(&format!("error: {message:#}\n"));
    }

    /// Something the operator should know that stops nothing, on stderr.
    pub fn warn(&self, message: impl Display) {
        self.print_err(&format!("warning: {message:#}\n"));
    }

    /// Where a live display draws: stderr when live, nowhere otherwise.
    pub fn live_display(&self) -> indicatif::MultiProgress {
        let target = if self.is_live() {
            indicatif::ProgressDrawTarget::stderr()
        } else {
            indicatif::ProgressDrawTarget::hidden()
        };
        indicatif::MultiProgress::with_draw_target(target)
    }
}

/// What a [`Shell::capture`] shell wrote.
#[derive(Clone, Default)]
pub struct Capture {
    out: Buffer,
    err: Buffer,
}

impl Capture {
    pub fn out(&self) -> String {
        self.out.text()
    }

    pub fn err(&self) -> String {
        self.err.text()
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer lock")).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("buffer lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_shell_writes_plain_text_and_errors_apart() {
        let (shell, capture) = Shell::capture();
        shell.print("one\n").unwrap();
        shell.print_json_line(&serde_json::json!({"a": 1})).unwrap();
        shell.error("it broke");
        assert_eq!(capture.out(), "one\n{\"a\":1}\n");
        assert_eq!(capture.err(), "error: it broke\n");
        assert_eq!(shell.paint(Style::Bad, "x"), "x");
        assert!(!shell.is_live());
    }

    #[test]
    fn colour_paints_and_json_turns_it_off() {
        let (shell, _) = Shell::capture();
        let shell = shell.with_color(true);
        assert_eq!(shell.paint(Style::Good, "ok"), "\x1b[32mok\x1b[0m");
        let shell = shell.with_json(true);
        assert_eq!(shell.paint(Style::Good, "ok"), "ok");
        assert!(shell.is_json() && !shell.is_live());
    }

    #[test]
    fn quiet_keeps_only_failures_and_json() {
        let (shell, capture) = Shell::capture();
        let shell = shell.with_verbosity(Verbosity::Quiet);
        shell.print("chatter\n").unwrap();
        shell.print_always("FAILED\n").unwrap();
        shell.error("it broke");
        assert_eq!(capture.out(), "FAILED\n");
        assert_eq!(capture.err(), "error: it broke\n");
        let (shell, capture) = Shell::capture();
        let shell = shell.with_verbosity(Verbosity::Quiet).with_json(true);
        shell.print_json_line(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(capture.out(), "{\"a\":1}\n");
    }

    #[test]
    fn a_closed_pipe_ends_the_output_quietly() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (mut shell, _) = Shell::capture();
        shell.out = Mutex::new(Box::new(Closed));
        assert!(shell.print("lost\n").is_ok());
    }
}
