//! Running the system tools the lab drives (ip, nsenter, unshare, ssh-keygen, ...).
//! One place that turns a failed command into a `LabError::Command` with its stderr,
//! and gives every child a clean environment so nothing of the caller (pyenv shims,
//! proxies, locale) leaks into the lab hosts.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::error::{LabError, Result};

/// PATH for every process the lab starts; only system directories.
pub(crate) const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A command for `program` with a minimal, predictable environment.
pub(crate) fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
    cmd
}

/// Renders a command for error messages. Arguments never hold secrets (they go on stdin).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` to completion; a non-zero exit is an error carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    run_with_input(cmd, None)
}

/// Like [`run`], feeding `input` on stdin (how secrets reach a process).
pub(crate) fn run_with_input(cmd: &mut Command, input: Option<&[u8]>) -> Result<Output> {
    let output = output_with_input(cmd, input)?;
    if !output.status.success() {
        return Err(LabError::Command {
            command: describe(cmd),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(output)
}

/// Runs `cmd` and returns its output whatever the exit status.
pub(crate) fn output_with_input(cmd: &mut Command, input: Option<&[u8]>) -> Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|source| LabError::Spawn {
        program: describe(cmd),
        source,
    })?;
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().expect("stdin was piped");
        // A process that exits without reading its input is reported by its status, not here.
        let _ = stdin.write_all(bytes);
    }
    child.wait_with_output().map_err(|source| LabError::Spawn {
        program: describe(cmd),
        source,
    })
}
