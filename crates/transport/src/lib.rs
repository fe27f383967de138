//! apim-transport: how apim-deploy talks to hosts.
//!
//! **API Boundary.** Everything above this crate reaches a host only through the
//! [`Transport`] trait. The crate knows hosts, bytes, files and exit codes, and
//! nothing of WSO2, inventories or playbooks: connection settings come in as an
//! [`ssh::SshTarget`] that the caller builds from its own configuration.
//!
//! # Brief overview
//! * [`Cmd`]: a command as an argument vector (every argument shell-quoted, NUL
//!   refused), with stdin (bytes or a streamed reader), privilege, directory,
//!   environment and timeout. Secrets travel on stdin only.
//! * [`Output`] / [`ExitStatus`]: stdout, stderr and `Code(i32)` or `Signal(name)`;
//!   a command that ends without either is an error.
//! * [`Transport`]: `exec`, plus file operations built on it (`read_file`,
//!   `write_file_atomic`, `write_files_atomic`, `upload`, `stat`) and `script` for a
//!   batch of probes in one round trip.
//! * [`LocalTransport`]: this machine, through `/bin/sh -c` (single-host runs, tests).
//! * [`SshTransport`]: russh, one connection per host reused for all the work.
//! * [`TransportError`]: one error enum, host and command as fields.
//!
//! # Example
//! ```
//! # tokio_test_block_on(async {
//! use apim_transport::{Cmd, LocalTransport, Transport};
//! let host = LocalTransport::new();
//! let out = host.exec(&Cmd::new("echo").arg("it's $(fine)")).await.unwrap();
//! assert_eq!(out.stdout, b"it's $(fine)\n");
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Runtime::new().unwrap().block_on(f)
//! # }
//! ```

use std::path::Path;

use async_trait::async_trait;

pub mod cmd;
pub mod error;
pub mod files;
pub mod local;
pub mod output;
pub mod ssh;

pub use cmd::{Cmd, QuoteError, Stdin, StdoutTap, quote};
pub use error::{Result, TransportError};
pub use files::{BatchError, FileKind, FileStat, FileWrite, Owner, Was, script_cmd};
pub use local::LocalTransport;
pub use output::{ExitStatus, Output};
pub use ssh::{Auth, HostKeyPolicy, SshTarget, SshTransport, Timeouts};

/// A host apim-deploy can act on.
///
/// Design choice: a single primitive, [`Transport::exec`], that each implementation
/// provides; every file operation is a provided method built on it (a short bash
/// script with the content on stdin). So local and SSH hosts behave identically,
/// sudo applies to file operations exactly as to commands, and a new transport is
/// one method. The trait is object safe: share hosts as `Arc<dyn Transport>`.
///
/// Privilege: commands and file operations run as root by default, through
/// `sudo -n --` when the host's settings say so (see [`Cmd::as_login_user`]).
#[async_trait]
pub trait Transport: Send + Sync {
    /// The host's name, as used in messages and errors.
    fn host(&self) -> &str;

    /// Runs one command and returns its output, whatever its exit status (see
    /// [`Transport::exec_ok`]). Fails when the command cannot be started, times out
    /// or ends without an exit status or signal.
    async fn exec(&self, cmd: &Cmd) -> Result<Output>;

    /// Like [`Transport::exec`], but a non-zero exit or a signal is an error
    /// ([`TransportError::Failed`] with the stderr tail).
    async fn exec_ok(&self, cmd: &Cmd) -> Result<Output> {
        let out = self.exec(cmd).await?;
        out.require_success(self.host(), &cmd.display())
    }

    /// Runs a bash script (`$1..` = `args`) in one round trip, with optional stdin.
    /// Use it to batch probes: one script, one channel, one result.
    async fn script(&self, source: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Output> {
        let mut cmd = script_cmd(source, args);
        if let Some(bytes) = stdin {
            cmd = cmd.stdin_bytes(bytes);
        }
        self.exec(&cmd).await
    }

    /// The file's content, or `None` when the path does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        files::read_file(self, path).await
    }

    /// Replaces `path` with `bytes` atomically: temp file in the same directory,
    /// hash check, fsync, rename. An existing file keeps its owner and mode unless
    /// `mode`/`owner` are given. Readers see the old or the new content, never a
    /// truncated file.
    async fn write_file_atomic(
        &self,
        path: &str,
        bytes: &[u8],
        mode: Option<u32>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        files::write_file_atomic(self, path, bytes, mode, owner).await
    }

    /// Writes `files` in order, each as [`Transport::write_file_atomic`] does, in one
    /// round trip. Stops at the first failure; [`BatchError::written`] says how many
    /// files were written before it.
    async fn write_files_atomic(
        &self,
        files: &[FileWrite<'_>],
    ) -> std::result::Result<(), BatchError> {
        files::write_files_atomic(self, files).await
    }

    /// Streams a local file to `remote` (never held whole in memory) under a temp
    /// name, checks `sha256sum` on the far side against `expected_sha256`, gives the
    /// temp file `mode` and `owner` (as [`Transport::write_file_atomic`] does), then
    /// renames it into place: the file never exists at `remote` with other ones. A
    /// mismatch is [`TransportError::HashMismatch`] and leaves `remote` untouched.
    async fn upload(
        &self,
        local: &Path,
        remote: &str,
        expected_sha256: &str,
        mode: Option<u32>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        files::upload(self, local, remote, expected_sha256, mode, owner).await
    }

    /// Metadata of `path` (not following a final symlink), or `None` when absent.
    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        files::stat(self, path).await
    }

    /// Closes the connection, if there is one. Later calls fail.
    async fn close(&self) {}
}
