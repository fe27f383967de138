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
    unpacked_size: u64,
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
        let mut unpacked_size = 0u64;
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
                // Rounded up to whole 4 KiB blocks, as a filesystem stores them.
                unpacked_size += entry.size().div_ceil(4096) * 4096;
            }
        }
        Ok(Archive {
            path: path.to_path_buf(),
            zip: Mutex::new(zip),
            files,
            top: top.to_string(),
            unpacked_size,
        })
    }

    /// The room its files take once unpacked.
    pub fn unpacked_size(&self) -> u64 {
        self.unpacked_size
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

/// How an archive is packed, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    #[serde(rename = "zip")]
    Zip,
    #[serde(rename = "tar.gz")]
    TarGz,
}

impl Format {
    pub fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        if name.ends_with(".zip") {
            Some(Format::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }
}

/// What vetting an archive found: its one top folder and the room it takes unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vetted {
    pub format: Format,
    pub top: String,
    pub unpacked_size: u64,
}

/// Vets an archive whose files the plan does not need to read (a runtime such as a
/// JDK), as vendors ship them: every entry inside one top folder, no absolute path
/// and no `..`, a symbolic link only to a place inside the top folder (JDKs link
/// within themselves), a hard link only to another entry, no device or fifo.
pub fn vet(path: &Path) -> Result<Vetted, ArchiveError> {
    let open_err = |message: String| ArchiveError::Open {
        path: path.to_path_buf(),
        message,
    };
    let format =
        Format::of(path).ok_or_else(|| open_err("not a .zip, .tar.gz or .tgz file".into()))?;
    let entries = match format {
        Format::Zip => zip_entries(path).map_err(open_err)?,
        Format::TarGz => tar_entries(path).map_err(open_err)?,
    };
    let mut top: Option<String> = None;
    let mut unpacked_size = 0;
    for e in &entries {
        let unsafe_entry = |problem: &'static str| ArchiveError::Unsafe {
            path: path.to_path_buf(),
            entry: e.name.clone(),
            problem,
        };
        let parts = normalized(&e.name)
            .ok_or_else(|| unsafe_entry("escapes the destination (absolute or `..`)"))?;
        let Some(first) = parts.first() else { continue };
        match &top {
            None => top = Some(first.clone()),
            Some(t) if t != first => {
                return Err(unsafe_entry("is outside the archive's top folder"));
            }
            Some(_) => {}
        }
        match &e.kind {
            EntryKind::File(size) => unpacked_size += size.div_ceil(4096) * 4096,
            EntryKind::Dir => {}
            EntryKind::Symlink(target) => {
                let parent = &parts[..parts.len() - 1];
                let joined = format!("{}/{}", parent.join("/"), target);
                let inside = !target.starts_with('/')
                    && normalized(&joined).is_some_and(|p| p.first() == Some(first) && p.len() > 1);
                if !inside {
                    return Err(unsafe_entry(
                        "is a symbolic link that points outside the archive's top folder",
                    ));
                }
            }
            EntryKind::HardLink(target) => {
                if normalized(target).is_none_or(|p| p.first() != Some(first)) {
                    return Err(unsafe_entry(
                        "is a hard link to a file outside the archive's top folder",
                    ));
                }
            }
            EntryKind::Other => {
                return Err(unsafe_entry("is a device, fifo or other special file"));
            }
        }
    }
    let top = top.ok_or_else(|| open_err("the archive is empty".into()))?;
    Ok(Vetted {
        format,
        top,
        unpacked_size,
    })
}

enum EntryKind {
    File(u64),
    Dir,
    Symlink(String),
    HardLink(String),
    Other,
}

struct Entry {
    name: String,
    kind: EntryKind,
}

/// `a/./b/../c` -> `[a, c]`; `None` for an absolute path or one that climbs out.
fn normalized(name: &str) -> Option<Vec<String>> {
    if name.starts_with('/') || name.contains('\\') {
        return None;
    }
    let mut parts: Vec<String> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p.to_string()),
        }
    }
    Some(parts)
}

fn zip_entries(path: &Path) -> Result<Vec<Entry>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.to_string();
        let kind = if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| e.to_string())?;
            EntryKind::Symlink(target)
        } else if entry.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File(entry.size())
        };
        out.push(Entry { name, kind });
    }
    Ok(out)
}

fn tar_entries(path: &Path) -> Result<Vec<Entry>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default()
        };
        use tar::EntryType as T;
        let kind = match entry.header().entry_type() {
            T::Regular | T::Continuous => EntryKind::File(entry.size()),
            T::Directory => EntryKind::Dir,
            T::Symlink => EntryKind::Symlink(link()),
            T::Link => EntryKind::HardLink(link()),
            // pax and GNU long-name headers describe the next entry; the tar crate
            // already applied them.
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            _ => EntryKind::Other,
        };
        out.push(Entry { name, kind });
    }
    Ok(out)
}

#[cfg(test)]
mod vet_tests {
    use super::*;

    /// A .tar.gz with the given (name, kind) entries: `Ok(bytes)` a file, `Err(target)`
    /// a symbolic link.
    fn tar_gz(dir: &Path, entries: &[(&str, Result<&[u8], &str>)]) -> PathBuf {
        let path = dir.join("jdk.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&path).unwrap(), Default::default());
        let mut tar = tar::Builder::new(gz);
        for (name, kind) in entries {
            let mut h = tar::Header::new_gnu();
            match kind {
                Ok(bytes) => {
                    h.set_size(bytes.len() as u64);
                    h.set_mode(0o755);
                    h.set_entry_type(tar::EntryType::Regular);
                    // set_path refuses `..`: write the raw name, as a hostile archive would.
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    tar.append(&h, *bytes).unwrap();
                }
                Err(target) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_link_name(target).unwrap();
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    tar.append(&h, std::io::empty()).unwrap();
                }
            }
        }
        tar.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn a_jdk_tarball_with_inner_links_is_accepted_with_its_top_and_size() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tar_gz(
            tmp.path(),
            &[
                ("jdk1.8.0_202/bin/java", Ok(b"#!/bin/sh\n")),
                ("jdk1.8.0_202/jre/lib/libjsig.so", Ok(&[0u8; 5000])),
                (
                    "jdk1.8.0_202/jre/lib/server/libjsig.so",
                    Err("../libjsig.so"),
                ),
            ],
        );
        let v = vet(&path).unwrap();
        assert_eq!(v.format, Format::TarGz);
        assert_eq!(v.top, "jdk1.8.0_202");
        assert_eq!(v.unpacked_size, 4096 + 8192);
    }

    #[test]
    fn entries_that_escape_are_refused_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        for (entries, problem) in [
            (
                vec![
                    ("jdk/bin/java", Ok(&b"x"[..])),
                    ("jdk/../../etc/cron.d/x", Ok(&b"x"[..])),
                ],
                "escapes the destination",
            ),
            (
                vec![
                    ("jdk/bin/java", Ok(&b"x"[..])),
                    ("jdk/lib/evil", Err("../../../etc/passwd")),
                ],
                "points outside",
            ),
            (
                vec![
                    ("jdk/bin/java", Ok(&b"x"[..])),
                    ("jdk/lib/abs", Err("/etc/passwd")),
                ],
                "points outside",
            ),
            (
                vec![
                    ("jdk/bin/java", Ok(&b"x"[..])),
                    ("other/bin/java", Ok(&b"x"[..])),
                ],
                "outside the archive's top folder",
            ),
        ] {
            let err = vet(&tar_gz(tmp.path(), &entries)).unwrap_err().to_string();
            assert!(err.contains(problem), "{err}");
        }
        let err = vet(&tmp.path().join("jdk.rpm")).unwrap_err().to_string();
        assert!(err.contains("not a .zip, .tar.gz or .tgz file"), "{err}");
    }
}
