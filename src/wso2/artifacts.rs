//! The distribution archive and the JDBC driver on the controller: found (or
//! downloaded once into a cache), and verified against their pinned sha256
//! before any host is touched.
//!
//! Hashing a 150 MB archive costs about half a second, on every run. The digest of a
//! local file is therefore remembered in the controller cache (`digests/`), keyed by the
//! file's path and stamped with its device, inode, size, mtime and ctime: any write to
//! the file, a replacement, or a metadata change moves the ctime (which no tool can set
//! back), so a stale record is never used.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::engine::archive::{Archive, ArchiveError, Vetted, sha256_file, vet};
use crate::inventory::{Artifact, ArtifactMode, Inventory};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{what} {path}: {message}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error(
        "{what} {path}: sha256 is {found}, but the inventory pins {want}; nothing was changed on any host"
    )]
    Checksum {
        what: &'static str,
        path: PathBuf,
        found: String,
        want: String,
    },
    #[error("{what}: download of {url} failed: {message}")]
    Download {
        what: &'static str,
        url: String,
        message: String,
    },
    #[error("{what}: neither `path` nor `url` is set")]
    NoSource { what: &'static str },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// The verified artifacts, as local files.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub distribution: PathBuf,
    pub distribution_sha256: String,
    pub jdbc: PathBuf,
    pub jdbc_sha256: String,
    /// In `mode = "remote"`, where each host downloads the distribution itself (the
    /// controller still keeps a verified copy: the plan reads configs and SQL from it).
    pub distribution_host_url: Option<String>,
    pub jdbc_host_url: Option<String>,
    /// The JDK archive of `[java]`, vetted.
    pub java: Option<JavaArchive>,
}

/// A verified and vetted JDK archive.
#[derive(Debug, Clone)]
pub struct JavaArchive {
    pub path: PathBuf,
    pub sha256: String,
    pub host_url: Option<String>,
    pub vetted: Vetted,
}

impl JavaArchive {
    pub fn file_name(&self) -> String {
        file_name(&self.path)
    }
}

impl Artifacts {
    /// Finds or downloads each artifact and checks its checksum.
    pub fn verify(inv: &Inventory) -> Result<Self, ArtifactError> {
        let (distribution, distribution_sha256) =
            local_verified("distribution", &inv.distribution, &inv.base_dir)?;
        let (jdbc, jdbc_sha256) = local_verified("JDBC driver", &inv.jdbc_driver, &inv.base_dir)?;
        let java = match &inv.java {
            Some(a) => {
                let (path, sha256) = local_verified("JDK", a, &inv.base_dir)?;
                let vetted = vet(&path)?;
                Some(JavaArchive {
                    path,
                    sha256,
                    host_url: host_url(a),
                    vetted,
                })
            }
            None => None,
        };
        Ok(Artifacts {
            java,
            distribution,
            distribution_sha256,
            jdbc,
            jdbc_sha256,
            distribution_host_url: host_url(&inv.distribution),
            jdbc_host_url: host_url(&inv.jdbc_driver),
        })
    }

    /// Opens the distribution zip, vetting every entry (`..`, symlinks).
    pub fn open_distribution(&self) -> Result<Archive, ArtifactError> {
        let top = top_folder(&self.distribution)?;
        Ok(Archive::open(&self.distribution, &top)?)
    }

    pub fn distribution_file_name(&self) -> String {
        file_name(&self.distribution)
    }

    pub fn jdbc_file_name(&self) -> String {
        file_name(&self.jdbc)
    }
}

/// The URL hosts fetch from themselves, in remote mode.
fn host_url(artifact: &Artifact) -> Option<String> {
    (artifact.mode() == ArtifactMode::Remote)
        .then(|| {
            artifact
                .url
                .as_ref()
                .map(|u| u.get_ref().as_str().to_string())
        })
        .flatten()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The archive's single top folder (`wso2am-1.9.0` for the real one).
fn top_folder(path: &Path) -> Result<String, ArtifactError> {
    let unreadable = |message: String| ArtifactError::Unreadable {
        what: "distribution",
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| unreadable(e.to_string()))?;
    let first = zip
        .by_index_raw(0)
        .map_err(|e| unreadable(e.to_string()))?
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    first
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| unreadable("the archive has no top folder".into()))
}

fn local_verified(
    what: &'static str,
    artifact: &Artifact,
    base: &Path,
) -> Result<(PathBuf, String), ArtifactError> {
    let want = artifact.sha256.as_str().to_lowercase();
    let path = match (&artifact.path, &artifact.url) {
        (Some(p), _) => {
            let p = p.get_ref();
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        }
        (None, Some(url)) => download(what, url.get_ref().as_str(), &want)?,
        (None, None) => return Err(ArtifactError::NoSource { what }),
    };
    let found = cached_sha256(&path).map_err(|e| ArtifactError::Unreadable {
        what,
        path: path.clone(),
        message: e.to_string(),
    })?;
    if found != want {
        return Err(ArtifactError::Checksum {
            what,
            path,
            found,
            want,
        });
    }
    Ok((path, want))
}

/// What can be checked on the controller alone: each artifact given by `path`
/// exists and matches its sha256 (through the digest cache, so a second check does not
/// hash a 400 MB zip again). One given by `url` only is not downloaded: that is
/// `apply`'s work. Every problem is returned, not only the first.
pub fn check_local(inv: &Inventory) -> Vec<ArtifactError> {
    let mut all = vec![
        ("distribution", &inv.distribution),
        ("JDBC driver", &inv.jdbc_driver),
    ];
    if let Some(java) = &inv.java {
        all.push(("JDK", java));
    }
    all.into_iter()
        .filter(|(_, a)| a.path.is_some())
        .filter_map(|(what, a)| local_verified(what, a, &inv.base_dir).err())
        .collect()
}

/// The controller cache: `$XDG_CACHE_HOME/apim-deploy`, else `~/.cache/apim-deploy`.
fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"))
        .join("apim-deploy")
}

/// The sha256 of a local file: from its digest record when the file has not changed
/// since it was hashed, else hashed (and recorded; a cache that cannot be written only
/// costs the next run a rehash).
fn cached_sha256(path: &Path) -> std::io::Result<String> {
    cached_sha256_in(&cache_dir(), path)
}

fn cached_sha256_in(cache: &Path, path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    let stamp = format!(
        "{} {} {} {}.{:09} {}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    let canonical = std::fs::canonicalize(path)?;
    let key = hex::encode(Sha256::digest(canonical.as_os_str().as_encoded_bytes()));
    let record = cache.join("digests").join(key);
    if let Ok(text) = std::fs::read_to_string(&record)
        && let Some((recorded, digest)) = text.trim_end().rsplit_once(' ')
        && recorded == stamp
        && digest.len() == 64
        && digest.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Ok(digest.to_string());
    }
    let digest = sha256_file(path)?;
    let _ = write_record(&record, &format!("{stamp} {digest}\n"));
    Ok(digest)
}

/// Writes a digest record atomically (a temp file, then rename).
fn write_record(record: &Path, text: &str) -> std::io::Result<()> {
    let dir = record.parent().expect("records live in a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, record)
}

/// Downloads `url` once into the controller cache, named by its pinned sha256.
fn download(what: &'static str, url: &str, sha256: &str) -> Result<PathBuf, ArtifactError> {
    let cache = cache_dir();
    let name = url
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("artifact");
    // One directory per digest keeps the file's own name, which is what hosts see.
    let dir = cache.join(sha256);
    let dest = dir.join(name);
    if dest.exists() {
        return Ok(dest);
    }
    let failed = |message: String| ArtifactError::Download {
        what,
        url: url.to_string(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|e| failed(e.to_string()))?;
    let partial = dest.with_extension("part");
    let status = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "-o"])
        .arg(&partial)
        .arg("--")
        .arg(url)
        .status()
        .map_err(|e| failed(format!("cannot run curl: {e}")))?;
    if !status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(failed(format!("curl {status}")));
    }
    // Only a download with the pinned digest enters the cache (named by that digest).
    let found = sha256_file(&partial).map_err(|e| failed(e.to_string()))?;
    if found != sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(ArtifactError::Checksum {
            what,
            path: PathBuf::from(url),
            found,
            want: sha256.to_string(),
        });
    }
    std::fs::rename(&partial, &dest).map_err(|e| failed(e.to_string()))?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_digest_is_used_only_while_the_file_is_unchanged() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.zip");
        std::fs::write(&file, b"first").unwrap();
        let first = cached_sha256_in(cache.path(), &file).unwrap();
        assert_eq!(first, sha256_file(&file).unwrap());
        assert_eq!(
            std::fs::read_dir(cache.path().join("digests"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(cached_sha256_in(cache.path(), &file).unwrap(), first);
        // Same size, mtime put back: the ctime still moves, so the record is not used.
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"other").unwrap();
        let f = std::fs::File::options().write(true).open(&file).unwrap();
        f.set_modified(mtime).unwrap();
        let now = cached_sha256_in(cache.path(), &file).unwrap();
        assert_eq!(now, sha256_file(&file).unwrap());
        assert_ne!(now, first);
    }
}
