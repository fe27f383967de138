//! A [`Transport`] that makes every file write of a saved plan's run check, on the
//! host and right before it replaces the file, that the file is still what the plan
//! saw: the probed content, or what an earlier write of this run left there. A hand
//! edit made while the run goes on is then kept and the write fails ("stale plan"),
//! instead of being overwritten unseen.
//!
//! What a file should be is known from the plan's facts and from this run's own
//! writes and uploads. Any other command (a script, a start) may create files the
//! plan only knew as absent, so after one, absent files are no longer checked; the
//! contents a write or the probe vouched for still are.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use apim_transport::{BatchError, Cmd, FileStat, FileWrite, Output, Owner, Result, Transport, Was};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::plan::Plan;
use crate::probe::{Answer, Fact};

pub struct Guarded {
    inner: Arc<dyn Transport>,
    /// Path -> what it must be before the next write of it.
    expected: Mutex<BTreeMap<String, Was>>,
}

/// Every host's transport of `hosts`, guarded by what `plan` saw on it.
pub fn guard_all(
    hosts: &HashMap<String, Arc<dyn Transport>>,
    plan: &Plan,
) -> HashMap<String, Arc<dyn Transport>> {
    hosts
        .iter()
        .map(|(name, t)| {
            let guarded: Arc<dyn Transport> = Arc::new(Guarded::new(t.clone(), plan, name));
            (name.clone(), guarded)
        })
        .collect()
}

fn digest(bytes: &[u8]) -> Was {
    Was::Sha256(hex::encode(Sha256::digest(bytes)))
}

impl Guarded {
    fn new(inner: Arc<dyn Transport>, plan: &Plan, host: &str) -> Self {
        let expected = plan
            .facts
            .get(host)
            .into_iter()
            .flat_map(|f| f.answers())
            .filter_map(|(q, a)| match (q, a) {
                (Fact::File(p), Answer::Bytes(b)) => Some((p.clone(), digest(b))),
                (Fact::File(p), Answer::Missing) => Some((p.clone(), Was::Absent)),
                _ => None,
            })
            .collect();
        Guarded {
            inner,
            expected: Mutex::new(expected),
        }
    }

    /// A command other than a write ran: it may have created any file.
    fn something_ran(&self) {
        self.expected
            .lock()
            .unwrap()
            .retain(|_, was| *was != Was::Absent);
    }

    fn check<'f>(&self, files: &[FileWrite<'f>]) -> Vec<FileWrite<'f>> {
        let expected = self.expected.lock().unwrap();
        let mut planned: BTreeMap<&str, Was> = BTreeMap::new();
        files
            .iter()
            .map(|f| {
                // A batch may write one file twice: the second finds the first's bytes.
                let was = planned
                    .get(f.path)
                    .or_else(|| expected.get(f.path))
                    .cloned();
                planned.insert(f.path, digest(f.bytes));
                FileWrite { was, ..f.clone() }
            })
            .collect()
    }

    fn wrote(&self, files: &[FileWrite<'_>]) {
        let mut expected = self.expected.lock().unwrap();
        for f in files {
            expected.insert(f.path.to_string(), digest(f.bytes));
        }
    }
}

#[async_trait]
impl Transport for Guarded {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn exec(&self, cmd: &Cmd) -> Result<Output> {
        self.something_ran();
        self.inner.exec(cmd).await
    }

    async fn exec_ok(&self, cmd: &Cmd) -> Result<Output> {
        self.something_ran();
        self.inner.exec_ok(cmd).await
    }

    async fn script(&self, source: &str, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Output> {
        self.something_ran();
        self.inner.script(source, args, stdin).await
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_file(path).await
    }

    async fn write_file_atomic(
        &self,
        path: &str,
        bytes: &[u8],
        mode: Option<u32>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        let file = FileWrite {
            path,
            bytes,
            mode,
            owner: owner.cloned(),
            was: None,
        };
        self.write_files_atomic(&[file]).await.map_err(|e| e.error)
    }

    async fn write_files_atomic(
        &self,
        files: &[FileWrite<'_>],
    ) -> std::result::Result<(), BatchError> {
        let checked = self.check(files);
        let r = self.inner.write_files_atomic(&checked).await;
        let written = r.as_ref().map_or_else(|e| e.written, |_| files.len());
        self.wrote(&files[..written.min(files.len())]);
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
        let r = self
            .inner
            .upload(local, remote, expected_sha256, mode, owner)
            .await;
        let now = match r.is_ok() {
            true => Was::Sha256(expected_sha256.to_string()),
            // Cut short, it left the old file or none: unknown, so not checked.
            false => {
                self.expected.lock().unwrap().remove(remote);
                return r;
            }
        };
        self.expected
            .lock()
            .unwrap()
            .insert(remote.to_string(), now);
        r
    }

    async fn stat(&self, path: &str) -> Result<Option<FileStat>> {
        self.inner.stat(path).await
    }

    async fn close(&self) {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Facts;
    use apim_transport::LocalTransport;

    fn plan_saw(path: &str, answer: Answer) -> Plan {
        let mut facts = Facts::default();
        facts.insert(Fact::File(path.into()), answer);
        Plan {
            playbook: "t".into(),
            steps: vec![],
            facts: BTreeMap::from([("local".to_string(), facts)]),
        }
    }

    fn write<'a>(path: &'a str, bytes: &'a [u8]) -> FileWrite<'a> {
        FileWrite {
            path,
            bytes,
            mode: None,
            owner: None,
            was: None,
        }
    }

    #[tokio::test]
    async fn a_file_edited_after_the_plan_is_kept_and_the_write_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.conf");
        let p = path.to_str().unwrap();
        std::fs::write(&path, "planned\n").unwrap();
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new().named("local"));
        let plan = plan_saw(p, Answer::Bytes(b"planned\n".to_vec()));
        let guarded = Guarded::new(local.clone(), &plan, "local");
        std::fs::write(&path, "hand edit\n").unwrap();
        let e = guarded
            .write_files_atomic(&[write(p, b"new\n")])
            .await
            .unwrap_err();
        assert!(e.error.to_string().contains("stale plan"), "{}", e.error);
        assert_eq!(std::fs::read(&path).unwrap(), b"hand edit\n");

        // As the plan saw it: written, and a second write of the run finds the first's bytes.
        std::fs::write(&path, "planned\n").unwrap();
        let guarded = Guarded::new(local.clone(), &plan, "local");
        guarded
            .write_files_atomic(&[write(p, b"one\n"), write(p, b"two\n")])
            .await
            .unwrap();
        guarded
            .write_files_atomic(&[write(p, b"three\n")])
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three\n");
    }

    #[tokio::test]
    async fn a_file_the_plan_saw_absent_must_still_be_absent_until_a_command_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.conf");
        let p = path.to_str().unwrap();
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new().named("local"));
        let guarded = Guarded::new(local, &plan_saw(p, Answer::Missing), "local");
        std::fs::write(&path, "made by hand\n").unwrap();
        assert!(guarded.write_files_atomic(&[write(p, b"x")]).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"made by hand\n");
        // An unpack (any command) may have created it: no longer checked.
        guarded.exec(&Cmd::new("true")).await.unwrap();
        guarded.write_files_atomic(&[write(p, b"x")]).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
