//! The lab's one error type. Every variant carries what a user needs to act on it:
//! the path, the command and its stderr, the host, or the field of the spec that is wrong.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab manipulates namespaces, mounts and links: that needs root on Linux.
    #[error("the lab needs root on Linux: {reason}")]
    NotPermitted { reason: String },

    #[error("the lab needs {missing} (run scripts/install-deps.sh as root)")]
    MissingTools { missing: String },

    #[error("invalid lab spec: {field}: {problem}")]
    Spec {
        field: &'static str,
        problem: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },

    /// A command exited unsuccessfully. `command` never contains secrets: the lab
    /// passes secrets on stdin only.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    #[error("host {host}: {problem} (log: {log})")]
    Host {
        host: String,
        problem: String,
        log: PathBuf,
    },

    #[error("no host named `{name}` in this lab (hosts: {known})")]
    UnknownHost { name: String, known: String },

    #[error(
        "{path} is not in a private dir of {host} (/etc, /opt, /root, /home, /tmp, /var/tmp, \
         /var/log, /run, /usr/lib/jvm): read it with `exec`"
    )]
    NotPrivate { host: String, path: String },

    #[error(
        "{path} exists, is not empty and has no lab.json: not a lab state dir, refusing to delete it"
    )]
    NotALab { path: PathBuf },

    #[error("lab state {path}: {problem}")]
    State { path: PathBuf, problem: String },

    #[error("timed out after {secs} s waiting for {what}")]
    Timeout { what: String, secs: u64 },

    #[error("still mounted under {dir} after unmounting: {mounts}; not deleting it")]
    StillMounted { dir: PathBuf, mounts: String },

    #[error("stand-in JDK: {0}")]
    Jdk(#[source] apim_standin::DistError),
}

impl LabError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LabError {
        let path = path.into();
        move |source| LabError::Io { path, source }
    }
}
