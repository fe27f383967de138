//! `Output` and `ExitStatus`: what a finished command left behind.

use std::fmt;

use crate::error::TransportError;

/// How a command ended. A command that ended without either (connection lost,
/// channel closed early) is an error, never an `ExitStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal (name without `SIG`, e.g. `TERM`).
    Signal(String),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// Everything a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
}

impl Output {
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// This output when the command succeeded, otherwise a
    /// [`TransportError::Failed`] naming the host and command.
    pub fn require_success(self, host: &str, cmd: &str) -> Result<Output, TransportError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(TransportError::Failed {
                host: host.to_string(),
                cmd: cmd.to_string(),
                status: self.status.clone(),
                stderr_tail: stderr_tail(&self.stderr),
            })
        }
    }
}

/// The last few lines of stderr (at most 2000 bytes), for error messages.
pub fn stderr_tail(stderr: &[u8]) -> String {
    const MAX: usize = 2000;
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim_end();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    if tail.len() <= MAX {
        return tail;
    }
    let mut start = tail.len() - MAX;
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &tail[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_ten_lines() {
        let text: String = (1..=15).map(|i| format!("line {i}\n")).collect();
        let tail = stderr_tail(text.as_bytes());
        assert!(
            tail.starts_with("line 6\n") && tail.ends_with("line 15"),
            "{tail}"
        );
    }

    #[test]
    fn tail_is_bounded() {
        let text = "é".repeat(5000);
        assert!(stderr_tail(text.as_bytes()).len() <= 2003);
    }

    #[test]
    fn failure_names_host_command_and_status() {
        let out = Output {
            stdout: vec![],
            stderr: b"boom\n".to_vec(),
            status: ExitStatus::Code(3),
        };
        let err = out
            .require_success("app1", "false")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "app1: `false` failed with exit code 3: boom");
    }
}
