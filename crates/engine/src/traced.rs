//! A [`Transport`] that logs every remote command it passes on (`-vv`): the host,
//! the command as [`Cmd::display`] shows it, masked by the run's [`Redactor`],
//! its exit status and how long it took. Secrets travel on stdin, never in an
//! argument, but the mask is applied anyway: a log is the kind of output people
//! paste into tickets.
//!
//! Every method is passed on to the wrapped transport as it is (not through the
//! trait's provided methods), so a transport that does a file operation its own
//! way keeps doing it.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use apim_transport::{BatchError, Cmd, FileStat, FileWrite, Output, Owner, Result, Transport};
use async_trait::async_trait;

use crate::redact::Redactor;

/// The tracing target of remote commands, so a filter can pick them alone.
pub const TARGET: &str = "apim::remote";

pub struct Traced {
    inner: Arc<dyn Transport>,
    redactor: Redactor,
}

impl Traced {
    pub fn wrap(inner: Arc<dyn Transport>, redactor: &Redactor) -> Arc<dyn Transport> {
        Arc::new(Traced {
            inner,
            redactor: redactor.clone(),
        })
    }

    fn log<T, E: std::fmt::Display>(
        &self,
        what: &str,
        started: Instant,
        result: &std::result::Result<T, E>,
        status: impl FnOnce(&T) -> String,
    ) {
        let outcome = match result {
            Ok(v) => status(v),
            Err(e) => format!("error: {e}"),
        };
        let line = self.line(what, &outcome, started.elapsed().as_millis());
        tracing::debug!(target: TARGET, "{line}");
    }

    /// `app1: $ command (exit, 12ms)`, masked.
    fn line(&self, what: &str, outcome: &str, ms: u128) -> String {
        self.redactor.mask(&format!(
            "{}: $ {what} ({outcome}, {ms}ms)",
            self.inner.host()
        ))
    }
}

fn exit(out: &Output) -> String {
    format!("{:?}", out.status)
}

fn done<T>(_: &T) -> String {
    "ok".into()
}

#[async_trait]
impl Transport for Traced {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn exec(&self, cmd: &Cmd) -> Result<Output> {
        let t = Instant::now();
        let r = self.inner.exec(cmd).await;
        self.log(&cmd.display(), t, &r, exit);
        r
    }

    async fn exec_ok(&self, cmd: &Cmd) -> Result<Output> {
        let t = Instant::now();
        let r = self.inner.exec_ok(cmd).await;
        self.log(&cmd.display(), t, &r, exit);
        r
    }

    async fn script(&self, source: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Output> {
        let t = Instant::now();
        let r = self.inner.script(source, args, stdin).await;
        let what = format!("bash script of {} bytes {}", source.len(), args.join(" "));
        self.log(&what, t, &r, exit);
        r
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let t = Instant::now();
        let r = self.inner.read_file(path).await;
        self.log(&format!("read {path}"), t, &r, |v| match v {
            Some(b) => format!("{} bytes", b.len()),
            None => "absent".into(),
        });
        r
    }

    async fn write_file_atomic(
        &self,
        path: &str,
        bytes: &[u8],
        mode: Option<u32>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.write_file_atomic(path, bytes, mode, owner).await;
        self.log(
            &format!("write {path} ({} bytes)", bytes.len()),
            t,
            &r,
            done,
        );
        r
    }

    async fn write_files_atomic(
        &self,
        files: &[FileWrite<'_>],
    ) -> std::result::Result<(), BatchError> {
        let t = Instant::now();
        let r = self.inner.write_files_atomic(files).await;
        let shown = r.as_ref().map_err(|e| &e.error);
        self.log(&format!("write {} file(s)", files.len()), t, &shown, done);
        r
    }

    async fn upload(
        &self,
        local: &Path,
        remote: &str,
        expected_sha256: &str,
        mode: Option<u32>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        let t = Instant::now();
        let r = self
            .inner
            .upload(local, remote, expected_sha256, mode, owner)
            .await;
        self.log(
            &format!("upload {} to {remote}", local.display()),
            t,
            &r,
            done,
        );
        r
    }

    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        let t = Instant::now();
        let r = self.inner.stat(path).await;
        self.log(&format!("stat {path}"), t, &r, |s| {
            if s.is_some() { "present" } else { "absent" }.to_string()
        });
        r
    }

    async fn close(&self) {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apim_transport::LocalTransport;

    #[test]
    fn a_traced_line_masks_secrets_and_the_command_runs_untouched() {
        let mut redactor = Redactor::new();
        redactor.add("s3cret-value");
        let traced = Traced {
            inner: Arc::new(LocalTransport::new()),
            redactor,
        };
        let cmd = Cmd::new("echo").arg("s3cret-value");
        let out = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(traced.exec(&cmd))
            .unwrap();
        assert_eq!(out.stdout, b"s3cret-value\n");
        let line = traced.line(&cmd.display(), &exit(&out), 5);
        assert!(line.ends_with(": $ echo ******** (Code(0), 5ms)"), "{line}");
        assert!(!line.contains("s3cret-value"));
    }
}
