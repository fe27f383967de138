//! `LocalTransport`: this machine as a host, through `/bin/sh -c` and tokio::process.
//!
//! It renders commands exactly as the SSH transport does (sshd also runs the command
//! line through the login shell), so quoting, sudo, directory, environment and the
//! file operations behave the same. Used for single-host deployments run on the host
//! itself, and by unit tests that need a real host without SSH.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};

use crate::Transport;
use crate::cmd::{Cmd, Stdin};
use crate::error::{Result, TransportError};
use crate::output::{ExitStatus, Output};

/// Default per-command limit when the command sets none.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// This machine. `sudo` decides whether root commands get the `sudo -n --` prefix.
#[derive(Debug, Clone)]
pub struct LocalTransport {
    name: String,
    sudo: bool,
    command_timeout: Duration,
}

impl Default for LocalTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTransport {
    /// The local machine, named `localhost`, without sudo.
    pub fn new() -> Self {
        LocalTransport {
            name: "localhost".into(),
            sudo: false,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }

    /// Names the host in messages (e.g. the inventory's host name).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Prefixes root commands with `sudo -n --` (when not running as root).
    pub fn with_sudo(mut self, sudo: bool) -> Self {
        self.sudo = sudo;
        self
    }

    /// The limit for commands that set none.
    pub fn with_command_timeout(mut self, limit: Duration) -> Self {
        self.command_timeout = limit;
        self
    }

    fn io_error(&self, what: String, source: std::io::Error) -> TransportError {
        TransportError::Io {
            host: self.name.clone(),
            what,
            source,
        }
    }

    async fn run(&self, cmd: &Cmd, mut child: Child) -> Result<Output> {
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // The feed is dropped once the command has ended: a command that exits
        // while its stdin stream is still open (one that holds a lock while its
        // caller lives, and gives up) must not wait for a stream that never ends.
        let (fed, (read_out, read_err), status) = {
            let mut feeding = std::pin::pin!(feed_stdin(cmd, stdin));
            let mut ended = std::pin::pin!(async {
                let reads = tokio::join!(
                    read_stdout(cmd, &mut stdout, &mut out),
                    stderr.read_to_end(&mut err)
                );
                (reads, child.wait().await)
            });
            let mut fed = None;
            loop {
                tokio::select! {
                    f = &mut feeding, if fed.is_none() => fed = Some(f),
                    (reads, status) = &mut ended => break (fed, reads, status),
                }
            }
        };
        let what = || format!("run `{}`", cmd.display());
        if let Some(fed) = fed {
            fed.map_err(|e| self.io_error(format!("stdin of `{}`", cmd.display()), e))?;
        }
        read_out.map_err(|e| self.io_error(what(), e))?;
        read_err.map_err(|e| self.io_error(what(), e))?;
        let status = status.map_err(|e| self.io_error(what(), e))?;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(sig)) => ExitStatus::Signal(signal_name(sig)),
            (None, None) => {
                return Err(TransportError::NoExitStatus {
                    host: self.name.clone(),
                    cmd: cmd.display(),
                    stderr_tail: crate::output::stderr_tail(&err),
                });
            }
        };
        Ok(Output {
            stdout: out,
            stderr: err,
            status,
        })
    }
}

/// Reads stdout to its end into `out`, handing each chunk to the command's tap.
async fn read_stdout(
    cmd: &Cmd,
    stdout: &mut (impl AsyncRead + Unpin),
    out: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        let n = stdout.read(&mut chunk).await?;
        if n == 0 {
            return Ok(out.len());
        }
        cmd.tap_stdout(&chunk[..n]);
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Writes the command's stdin and closes it. A command that exits without reading
/// all of it is not an error here: its exit status tells.
async fn feed_stdin(cmd: &Cmd, stdin: Option<ChildStdin>) -> std::io::Result<()> {
    let Some(mut pipe) = stdin else { return Ok(()) };
    let result = match cmd.stdin() {
        Stdin::Null => Ok(()),
        Stdin::Bytes(bytes) => pipe.write_all(bytes).await,
        Stdin::Stream(_) => match cmd.take_stdin_reader() {
            Some(mut reader) => copy_all(&mut reader, &mut pipe).await,
            None => Err(std::io::Error::other(
                "stdin stream already consumed by an earlier run",
            )),
        },
    };
    drop(pipe);
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

async fn copy_all(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    pipe: &mut ChildStdin,
) -> std::io::Result<()> {
    tokio::io::copy(reader, pipe).await.map(|_| ())
}

#[async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.name
    }

    async fn exec(&self, cmd: &Cmd) -> Result<Output> {
        let line = cmd
            .render(self.sudo && cmd.wants_root())
            .map_err(|r| cmd.invalid(&self.name, r))?;
        let stdin = if matches!(cmd.stdin(), Stdin::Null) {
            Stdio::null()
        } else {
            Stdio::piped()
        };
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            // `exec`: the command replaces the shell, so its signal death is reported
            // as such (bash does this implicitly for sshd; dash does not).
            .arg(format!("exec {line}"))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| self.io_error(format!("start `{}`", cmd.display()), e))?;
        let group = child.id();
        let limit = cmd.timeout_limit().unwrap_or(self.command_timeout);
        match tokio::time::timeout(limit, self.run(cmd, child)).await {
            Ok(result) => result,
            Err(_) => {
                if let Some(pid) = group {
                    kill_process_group(pid);
                }
                Err(TransportError::Timeout {
                    host: self.name.clone(),
                    stage: format!("command `{}`", cmd.display()),
                    after: limit,
                })
            }
        }
    }
}

/// Kills the command and everything it started (it leads its own process group),
/// so a timed-out command leaves nothing running.
fn kill_process_group(pid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
}

/// The conventional name (without `SIG`) of a Linux signal number, as sshd reports it.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        5 => "TRAP",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        10 => "USR1",
        11 => "SEGV",
        12 => "USR2",
        13 => "PIPE",
        14 => "ALRM",
        15 => "TERM",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}
