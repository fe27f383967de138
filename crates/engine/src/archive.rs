//! The distribution archive as the controller sees it: a verified local zip.
//!
//! The planner reads a fresh node's original config files from here, so `plan`
//! can show real diffs before anything is unpacked (a first `plan` shows what will
//! change, not just "will unpack"), and the archive's
//! entries are checked once, here, for path escapes and symlinks: the copy on
//! each host is byte-identical (its sha256 is verified there), so a check on the
//! controller covers every host.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot open archive {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("archive {path}: entry {entry:?} {problem}; refusing to unpack it")]
    Unsafe {
        path: PathBuf,
        entry: String,
        problem: &'static str,
    },
    #[error("archive {path}: no entry {entry:?}")]
    Missing { path: PathBuf, entry: String },
}

/// A zip on the controller, with the index of its regular files.
pub struct Archive {
    path: PathBuf,
    zip: Mutex<zip::ZipArchive<File>>,
    /// path below the top folder -> index in the zip
    files: BTreeMap<String, usize>,
    top: String,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Archive({})", self.path.display())
    }
}

impl Archive {
    /// Opens and vets the archive: every entry must stay inside `top/` and
    /// none may be a symlink.
    pub fn open(path: &Path, top: &str) -> Result<Self, ArchiveError> {
        let open_err = |message: String| ArchiveError::Open {
            path: path.to_path_buf(),
            message,
        };
        let file = File::open(path).map_err(|e| open_err(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| open_err(e.to_string()))?;
        let prefix = format!("{}/", top.trim_end_matches('/'));
        let mut files = BTreeMap::new();
        for i in 0..zip.len() {
            let entry = zip.by_index_raw(i).map_err(|e| open_err(e.to_string()))?;
            let raw = entry.name().map(|n| n.to_string()).unwrap_or_default();
            let unsafe_entry = |problem| ArchiveError::Unsafe {
                path: path.to_path_buf(),
                entry: raw.clone(),
                problem,
            };
            let Some(enclosed) = entry.enclosed_name() else {
                return Err(unsafe_entry("escapes the destination (absolute or `..`)"));
            };
            if entry.is_symlink() {
                return Err(unsafe_entry("is a symbolic link"));
            }
            let name = enclosed.to_string_lossy().replace('\\', "/");
            if !(name == prefix.trim_end_matches('/') || name.starts_with(&prefix)) {
                return Err(unsafe_entry("is outside the archive's top folder"));
            }
            if entry.is_file() {
                files.insert(name[prefix.len()..].to_string(), i);
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            zip: Mutex::new(zip),
            files,
            top: top.to_string(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The top folder every entry lives in (e.g. `app-1.0`).
    pub fn top(&self) -> &str {
        &self.top
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    /// The bytes of a file below the top folder (small files: configs, SQL).
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, ArchiveError> {
        let missing = || ArchiveError::Missing {
            path: self.path.clone(),
            entry: rel.to_string(),
        };
        let index = *self.files.get(rel).ok_or_else(missing)?;
        let mut zip = self.zip.lock().expect("archive lock");
        let mut entry = zip.by_index(index).map_err(|_| missing())?;
        let mut buf = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut buf)
            .map_err(|e| ArchiveError::Open {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        Ok(buf)
    }
}

/// Streams a file through sha256 (never holding it whole).
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn make_zip(
        entries: &[(&str, &[u8])],
        symlink: Option<(&str, &str)>,
    ) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut w = zip::ZipWriter::new(f.reopen().unwrap());
        for (name, body) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(body).unwrap();
        }
        if let Some((name, target)) = symlink {
            w.add_symlink(name, target, SimpleFileOptions::default())
                .unwrap();
        }
        w.finish().unwrap();
        f
    }

    #[test]
    fn reads_files_below_the_top_folder() {
        let z = make_zip(&[("top/conf/a.xml", b"<a/>")], None);
        let a = Archive::open(z.path(), "top").unwrap();
        assert_eq!(a.read("conf/a.xml").unwrap(), b"<a/>");
        assert!(!a.contains("conf/b.xml"));
    }

    #[test]
    fn refuses_parent_escapes() {
        let z = make_zip(&[("top/../../etc/passwd", b"x")], None);
        let err = Archive::open(z.path(), "top").unwrap_err().to_string();
        assert!(err.contains("escapes the destination"), "{err}");
    }

    #[test]
    fn refuses_symlinks() {
        let z = make_zip(&[("top/a", b"x")], Some(("top/link", "/etc")));
        let err = Archive::open(z.path(), "top").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn refuses_entries_outside_the_top_folder() {
        let z = make_zip(&[("other/a", b"x")], None);
        let err = Archive::open(z.path(), "top").unwrap_err().to_string();
        assert!(err.contains("outside the archive's top folder"), "{err}");
    }
}
