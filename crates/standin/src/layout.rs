//! The archive's content as data: every entry, its bytes and its mode, in zip order.
//!
//! Config templates live as plain files under `crates/standin/dist/` (same relative
//! paths as inside the archive) and are embedded at compile time, so the archive does
//! not depend on the directory the generator runs from.

use std::collections::BTreeMap;

use crate::{DistOptions, TOP_DIR};

/// A file shipped verbatim from `crates/standin/dist/`.
struct Template {
    path: &'static str,
    contents: &'static [u8],
    mode: u32,
}

macro_rules! template {
    ($path:literal, $mode:expr) => {
        Template {
            path: $path,
            contents: include_bytes!(concat!("../dist/", $path)),
            mode: $mode,
        }
    };
}

const FILE: u32 = 0o644;
const EXEC: u32 = 0o755;

const TEMPLATES: &[Template] = &[
    template!("STANDIN.txt", FILE),
    template!("bin/wso2server.sh", EXEC),
    template!("bin/standin-carbon.py", EXEC),
    template!("bin/version.txt", FILE),
    template!("bin/wso2carbon-version.txt", FILE),
    template!("dbscripts/mysql.sql", FILE),
    template!("dbscripts/apimgt/mysql.sql", FILE),
    template!("repository/conf/carbon.xml", FILE),
    template!("repository/conf/api-manager.xml", FILE),
    template!("repository/conf/user-mgt.xml", FILE),
    template!("repository/conf/registry.xml", FILE),
    template!("repository/conf/axis2/axis2.xml", FILE),
    template!("repository/conf/datasources/master-datasources.xml", FILE),
    template!("repository/conf/tomcat/catalina-server.xml", FILE),
    template!("repository/conf/etc/jmx.xml", FILE),
    template!(
        "repository/deployment/server/synapse-configs/default/api/_TokenAPI_.xml",
        FILE
    ),
    template!(
        "repository/deployment/server/synapse-configs/default/api/_AuthorizeAPI_.xml",
        FILE
    ),
    template!(
        "repository/deployment/server/synapse-configs/default/api/_RevokeAPI_.xml",
        FILE
    ),
];

/// Directories that exist empty in the real distribution (the JDBC driver goes into
/// `components/lib`; logs, H2 files and the filler land in the others).
const EMPTY_DIRS: &[&str] = &[
    "repository/components/lib",
    "repository/components/plugins",
    "repository/database",
    "repository/logs",
    "repository/deployment/server/webapps",
    "tmp",
];

/// Where `--size-mb` filler goes, and how big each piece is.
pub(crate) const FILLER_DIR: &str = "repository/components/plugins";
pub(crate) const FILLER_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;
/// Roughly what the archive weighs without filler; subtracted so `--size-mb N` lands near N MiB.
const BASE_ARCHIVE_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Directory,
    /// Bytes known up front (templates, generated text).
    File(Vec<u8>),
    /// Incompressible filler of `len` bytes, generated from `seed` while writing.
    Filler {
        seed: u64,
        len: u64,
    },
}

/// One entry of the archive; `name` includes the `wso2am-1.9.0/` prefix and
/// directory names end with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub mode: u32,
    pub kind: EntryKind,
}

/// All entries of the archive for `opts`, sorted by name (parents before children).
pub fn zip_entries(opts: &DistOptions) -> Vec<ZipEntry> {
    let mut entries: BTreeMap<String, ZipEntry> = BTreeMap::new();
    let mut add_file = |path: &str, mode: u32, kind: EntryKind| {
        add_parent_dirs(&mut entries, path);
        let name = format!("{TOP_DIR}/{path}");
        entries.insert(name.clone(), ZipEntry { name, mode, kind });
    };
    for t in TEMPLATES {
        add_file(t.path, t.mode, EntryKind::File(t.contents.to_vec()));
    }
    add_file(
        "bin/standin.properties",
        FILE,
        EntryKind::File(standin_properties(opts).into_bytes()),
    );
    for (index, len) in filler_chunks(opts.size_mb).into_iter().enumerate() {
        let path = format!("{FILLER_DIR}/standin-filler-{index:03}.bin");
        let seed = index as u64 + 1;
        add_file(&path, FILE, EntryKind::Filler { seed, len });
    }
    for dir in EMPTY_DIRS {
        add_parent_dirs(&mut entries, &format!("{dir}/x"));
    }
    entries.into_values().collect()
}

/// Adds `wso2am-1.9.0/` and every directory above `path` (relative to it).
fn add_parent_dirs(entries: &mut BTreeMap<String, ZipEntry>, path: &str) {
    let mut prefix = format!("{TOP_DIR}/");
    entries
        .entry(prefix.clone())
        .or_insert_with(|| dir_entry(&prefix));
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        prefix.push_str(part);
        prefix.push('/');
        entries
            .entry(prefix.clone())
            .or_insert_with(|| dir_entry(&prefix));
    }
}

fn dir_entry(name: &str) -> ZipEntry {
    ZipEntry {
        name: name.to_string(),
        mode: EXEC,
        kind: EntryKind::Directory,
    }
}

/// The server's own settings file; the env var `STANDIN_START_DELAY` overrides it.
fn standin_properties(opts: &DistOptions) -> String {
    format!(
        "# Settings of the stand-in server (bin/standin-carbon.py), written by `apim-deploy lab dist`.\n\
         # Start-up time: seconds from the server process's start to the started line (checks included);\n\
         # env STANDIN_START_DELAY overrides.\n\
         start.delay.secs={}\n",
        opts.start_delay_secs
    )
}

/// Sizes of the filler pieces that bring the archive to about `size_mb` MiB.
fn filler_chunks(size_mb: u64) -> Vec<u64> {
    let total = (size_mb * MIB).saturating_sub(BASE_ARCHIVE_BYTES);
    let mut chunks = Vec::new();
    let mut left = total;
    while left > 0 {
        let len = left.min(FILLER_CHUNK_BYTES);
        chunks.push(len);
        left -= len;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_chunks_sum_to_requested_size_minus_base() {
        assert!(filler_chunks(0).is_empty());
        let chunks = filler_chunks(40);
        assert_eq!(chunks.iter().sum::<u64>(), 40 * MIB - BASE_ARCHIVE_BYTES);
        assert!(chunks.iter().all(|c| *c <= FILLER_CHUNK_BYTES));
    }

    #[test]
    fn parents_come_before_children() {
        let names: Vec<String> = zip_entries(&DistOptions::default())
            .into_iter()
            .map(|e| e.name)
            .collect();
        for (i, name) in names.iter().enumerate() {
            let parent = match name.trim_end_matches('/').rsplit_once('/') {
                Some((parent, _)) => format!("{parent}/"),
                None => continue,
            };
            let at = names.iter().position(|n| *n == parent);
            assert!(
                at.is_some_and(|at| at < i),
                "{parent} missing or after {name}"
            );
        }
    }
}
