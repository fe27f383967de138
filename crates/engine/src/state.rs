//! What the planner knows about a host while it walks the tasks: the facts
//! probed at the start, plus the effect of every change planned so far.
//!
//! This is how `plan` carries state across dependent steps (an XML patch on a
//! node that is not unpacked yet is computed against the archive's original
//! file, then against the output of the previous patch of the same file), and
//! why `apply` does exactly what `plan` showed: both walk the same state.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::archive::Archive;
use super::probe::Facts;

/// A file's owner, group and mode; `None` where unknown (not on the host yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttrs {
    pub user: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

/// Planned state of one host.
#[derive(Debug, Default)]
pub struct HostState {
    pub facts: Facts,
    /// Files as they will be once the planned changes are made.
    files: BTreeMap<String, Option<Vec<u8>>>,
    /// Owners and modes the planned changes give files.
    attrs: BTreeMap<String, FileAttrs>,
    /// Directories that a planned unpack will fill from an archive.
    unpacked: Vec<(String, Arc<Archive>)>,
    /// Bytes the planned changes write, per mount point.
    reserved: BTreeMap<String, u64>,
    /// Directories a planned unpack creates whose files the plan does not read.
    created: Vec<String>,
    /// Preflight checks the operator chose to skip.
    pub skip_checks: std::collections::BTreeSet<String>,
}

impl HostState {
    pub fn new(facts: Facts) -> Self {
        HostState {
            facts,
            ..Default::default()
        }
    }

    /// The file as it will be after the changes planned so far; `None` when
    /// it will not exist.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        if let Some(planned) = self.files.get(path) {
            return planned.clone();
        }
        if let Some(bytes) = self.facts.file(path) {
            return Some(bytes.to_vec());
        }
        for (dir, archive) in &self.unpacked {
            if let Some(rel) = path
                .strip_prefix(dir.as_str())
                .and_then(|r| r.strip_prefix('/'))
                && archive.contains(rel)
            {
                return archive.read(rel).ok();
            }
        }
        None
    }

    /// Records a planned write.
    pub fn write(&mut self, path: &str, bytes: Vec<u8>) {
        self.files.insert(path.to_string(), Some(bytes));
    }

    /// The owner, group and mode `path` will have after the changes planned so far:
    /// what the probe found, with what planned changes set on top.
    pub fn attrs(&self, path: &str) -> FileAttrs {
        let mut now = self
            .facts
            .attrs(path)
            .map(|st| FileAttrs {
                user: Some(st.user.clone()),
                group: Some(st.group.clone()),
                mode: Some(st.mode),
            })
            .unwrap_or_default();
        if let Some(planned) = self.attrs.get(path) {
            now.user = planned.user.clone().or(now.user);
            now.group = planned.group.clone().or(now.group);
            now.mode = planned.mode.or(now.mode);
        }
        now
    }

    /// Records that a planned change gives `path` the attributes set in `attrs`.
    pub fn set_attrs(&mut self, path: &str, attrs: FileAttrs) {
        let entry = self.attrs.entry(path.to_string()).or_default();
        entry.user = attrs.user.or(entry.user.take());
        entry.group = attrs.group.or(entry.group.take());
        entry.mode = attrs.mode.or(entry.mode);
    }

    /// Records that `dir` will be unpacked from `archive`.
    pub fn unpack(&mut self, dir: &str, archive: Arc<Archive>) {
        self.unpacked
            .push((dir.trim_end_matches('/').to_string(), archive));
    }

    /// Whether the preflight check `name` runs (the operator did not skip it).
    pub fn checks(&self, name: &str) -> bool {
        !self.skip_checks.contains(name)
    }

    /// Records that `dir` will be created (by an unpack whose files are not read).
    pub fn create_dir(&mut self, dir: &str) {
        self.created.push(dir.trim_end_matches('/').to_string());
    }

    /// Whether a planned change creates `dir`.
    pub fn will_create(&self, dir: &str) -> bool {
        let dir = dir.trim_end_matches('/');
        self.will_unpack(dir) || self.created.iter().any(|d| d == dir)
    }

    /// Whether a planned unpack covers `dir`.
    pub fn will_unpack(&self, dir: &str) -> bool {
        self.unpacked
            .iter()
            .any(|(d, _)| d == dir.trim_end_matches('/'))
    }

    /// The sha256 the host reported for a file (probed, not planned).
    pub fn probed_sha256(&self, path: &str) -> Option<&str> {
        self.facts.sha256(path)
    }

    /// Reserves room for a planned write of `bytes` on the filesystem the
    /// probe's `free` answer describes: an error with the mount point, the room
    /// this run needs there (all its writes so far, with a margin) and what is free.
    pub fn reserve(&mut self, free: &[u8], bytes: u64) -> Result<(), (String, u64, u64)> {
        let Some((mount, avail)) = super::preflight::parse_free_space(free) else {
            return Ok(()); // no answer (a df without -P): nothing to check against
        };
        let total = self.reserved.entry(mount.clone()).or_default();
        *total += bytes;
        let need = super::preflight::with_margin(*total);
        if need > avail {
            return Err((mount, need, avail));
        }
        Ok(())
    }

    pub fn probed_shell(&self, snippet: &str) -> Option<(i32, &[u8])> {
        self.facts.shell(snippet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Answer, Fact};

    #[test]
    fn planned_writes_shadow_probed_files() {
        let mut facts = Facts::default();
        facts.insert(Fact::File("/a".into()), Answer::Bytes(b"old".to_vec()));
        let mut s = HostState::new(facts);
        assert_eq!(s.read("/a").unwrap(), b"old");
        s.write("/a", b"new".to_vec());
        assert_eq!(s.read("/a").unwrap(), b"new");
        assert_eq!(s.read("/b"), None);
    }
}
