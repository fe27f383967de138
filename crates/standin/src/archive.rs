//! Writes the distribution zip reproducibly: fixed entry order, fixed timestamps,
//! fixed permissions and compression settings, filler from a seeded generator.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::layout::{EntryKind, ZipEntry, zip_entries};
use crate::{Artifact, DistError, DistOptions};

/// The timestamp of every entry: the 1.9.0 release month, so nothing depends on the clock.
fn fixed_mtime() -> DateTime {
    DateTime::from_date_and_time(2015, 6, 2, 12, 0, 0).expect("valid fixed date")
}

/// Options for one entry. Filler is stored (it would not compress anyway); everything
/// else is deflated at a fixed level.
pub(crate) fn entry_options(mode: u32, compress: bool) -> SimpleFileOptions {
    let method = if compress {
        CompressionMethod::Deflated
    } else {
        CompressionMethod::Stored
    };
    SimpleFileOptions::default()
        .compression_method(method)
        .compression_level(if compress { Some(6) } else { None })
        .last_modified_time(fixed_mtime())
        .unix_permissions(mode)
        .system(zip::System::Unix)
}

/// Writes the archive for `opts` to `path` (via a temporary file renamed into place).
pub fn write_zip(path: &Path, opts: &DistOptions) -> Result<Artifact, DistError> {
    opts.validate()?;
    let entries = zip_entries(opts);
    write_entries_atomically(path, &entries)
}

/// Writes `entries` into a zip at `path`, atomically, and returns its digest.
pub(crate) fn write_entries_atomically(
    path: &Path,
    entries: &[ZipEntry],
) -> Result<Artifact, DistError> {
    let tmp = temp_path(path);
    let result = write_entries(&tmp, entries).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| DistError::Io {
            path: path.to_path_buf(),
            action: "rename into place",
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    digest_file(path)
}

pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

fn write_entries(path: &Path, entries: &[ZipEntry]) -> Result<(), DistError> {
    let file = File::create(path).map_err(|source| DistError::Io {
        path: path.to_path_buf(),
        action: "create",
        source,
    })?;
    let mut zip = ZipWriter::new(BufWriter::new(file));
    for entry in entries {
        write_entry(&mut zip, entry).map_err(|source| DistError::Zip {
            path: path.to_path_buf(),
            entry: entry.name.clone(),
            source,
        })?;
    }
    let mut out = zip.finish().map_err(|source| DistError::Zip {
        path: path.to_path_buf(),
        entry: "(central directory)".to_string(),
        source,
    })?;
    out.flush().map_err(|source| DistError::Io {
        path: path.to_path_buf(),
        action: "flush",
        source,
    })
}

fn write_entry<W: Write + std::io::Seek>(
    zip: &mut ZipWriter<W>,
    entry: &ZipEntry,
) -> zip::result::ZipResult<()> {
    match &entry.kind {
        EntryKind::Directory => zip.add_directory(&entry.name, entry_options(entry.mode, false)),
        EntryKind::File(bytes) => {
            zip.start_file(&entry.name, entry_options(entry.mode, true))?;
            zip.write_all(bytes)?;
            Ok(())
        }
        EntryKind::Filler { seed, len } => {
            zip.start_file(&entry.name, entry_options(entry.mode, false))?;
            write_filler(zip, *seed, *len)?;
            Ok(())
        }
    }
}

/// Streams `len` pseudo-random bytes from SplitMix64 seeded with `seed`: incompressible,
/// fast, and identical on every run.
fn write_filler<W: Write>(out: &mut W, seed: u64, len: u64) -> std::io::Result<()> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// sha256 and size of a file on disk.
pub(crate) fn digest_file(path: &Path) -> Result<Artifact, DistError> {
    let io_err = |source| DistError::Io {
        path: path.to_path_buf(),
        action: "read back",
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Artifact {
        path: path.to_path_buf(),
        sha256: hex::encode(hasher.finalize()),
        size_bytes: size,
    })
}
