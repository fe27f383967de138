//! `TransportError`: every way talking to a host can fail, with the host, the
//! (log-safe) command, the exit status and the tail of stderr as fields.

use std::path::PathBuf;
use std::time::Duration;

use crate::output::ExitStatus;

/// Result alias of this crate.
pub type Result<T, E = TransportError> = std::result::Result<T, E>;

/// One error type for all transports. `cmd` fields hold [`crate::Cmd::display`]
/// output (scripts elided, never stdin), so errors are safe to print.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The command cannot be turned into a command line (NUL byte, empty argv...).
    #[error("{host}: invalid command `{cmd}`: {reason}")]
    InvalidCommand {
        host: String,
        cmd: String,
        reason: String,
    },

    /// TCP connect failed (refused, unreachable, DNS...).
    #[error("{host}: cannot connect to {address}: {reason}")]
    Connect {
        host: String,
        address: String,
        reason: String,
    },

    /// A stage (connect, banner, auth, channel open, a command) took too long.
    #[error("{host}: {stage} timed out after {}", fmt_duration(*after))]
    Timeout {
        host: String,
        stage: String,
        after: Duration,
    },

    /// The host key is unknown, changed, revoked or cannot be checked.
    #[error("{host}: host key verification failed: {reason}")]
    HostKey { host: String, reason: String },

    /// No authentication method succeeded.
    #[error("{host}: authentication failed for user {user}: {reason}")]
    Auth {
        host: String,
        user: String,
        reason: String,
    },

    /// The command ran and ended unsuccessfully.
    #[error("{host}: `{cmd}` failed with {status}{}", tail_suffix(stderr_tail))]
    Failed {
        host: String,
        cmd: String,
        status: ExitStatus,
        stderr_tail: String,
    },

    /// The command's channel closed without an exit status or signal.
    #[error(
        "{host}: `{cmd}` ended without an exit status (connection lost?){}",
        tail_suffix(stderr_tail)
    )]
    NoExitStatus {
        host: String,
        cmd: String,
        stderr_tail: String,
    },

    /// The host stopped answering keepalives while a command ran (frozen, network
    /// cut): the connection was given up.
    #[error(
        "{host}: lost: the host stopped answering (no reply to SSH keepalives for {}) while running `{cmd}`",
        fmt_duration(*silent_for)
    )]
    Lost {
        host: String,
        cmd: String,
        silent_for: Duration,
    },

    /// An upload arrived with a different hash than expected.
    #[error(
        "{host}: upload of {local} to {remote}: sha256 mismatch (expected {expected}, far side has {actual})"
    )]
    HashMismatch {
        host: String,
        local: PathBuf,
        remote: String,
        expected: String,
        actual: String,
    },

    /// A local I/O error (reading the file to upload, spawning a process...).
    #[error("{host}: {what}: {source}")]
    Io {
        host: String,
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// The SSH session failed (protocol error, connection dropped, channel refused).
    #[error("{host}: ssh: {what}: {message}")]
    Ssh {
        host: String,
        what: String,
        message: String,
    },

    /// A probe's output could not be understood.
    #[error("{host}: `{cmd}`: unexpected output: {reason}")]
    Parse {
        host: String,
        cmd: String,
        reason: String,
    },

    /// The connection settings are not usable (missing key file, bad jump spec...).
    #[error("{host}: {reason}")]
    Config { host: String, reason: String },
}

impl TransportError {
    /// The host this error is about.
    pub fn host(&self) -> &str {
        match self {
            TransportError::InvalidCommand { host, .. }
            | TransportError::Connect { host, .. }
            | TransportError::Timeout { host, .. }
            | TransportError::HostKey { host, .. }
            | TransportError::Auth { host, .. }
            | TransportError::Failed { host, .. }
            | TransportError::NoExitStatus { host, .. }
            | TransportError::Lost { host, .. }
            | TransportError::HashMismatch { host, .. }
            | TransportError::Io { host, .. }
            | TransportError::Ssh { host, .. }
            | TransportError::Parse { host, .. }
            | TransportError::Config { host, .. } => host,
        }
    }
}

fn tail_suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
