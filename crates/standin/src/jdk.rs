//! Stand-in JDKs for the lab: a JDK directory whose `bin/java` is a POSIX sh script,
//! as a tree on disk or as the archive a vendor ships (`.tar.gz` or `.zip`, one top
//! directory, `bin/java` executable).
//!
//! WSO2 API Manager 1.9.0 is picky about its JVM (`wso2server.sh` warns on anything but
//! 1.6/1.7, and a 9+ JVM refuses its `-XX:MaxPermSize` and `-Djava.endorsed.dirs`), so a
//! lab that only ever ran python would pass deployments that fail on a real host. The
//! stand-in `java` answers `-version` like the real one, dies like a 9+ JVM on those
//! options, and otherwise runs the stand-in Carbon server with the arguments the start
//! script gave it. See `jdk/java.sh` for its exact behaviour.
//!
//! **Invariant:** like the distribution, an archive is a pure function of its version
//! and format: fixed entry order, timestamps, owners and modes.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::archive::{digest_file, temp_path, write_entries_atomically};
use crate::layout::{EntryKind, ZipEntry};
use crate::{Artifact, DistError};

const JAVA_TEMPLATE: &str = include_str!("../jdk/java.sh");
const FILE: u32 = 0o644;
const EXEC: u32 = 0o755;
/// 2015-06-02 12:00:00 UTC, the timestamp every distribution entry has.
const FIXED_MTIME: u64 = 1_433_246_400;

/// The JDKs the lab can give a host: the one 1.9.0 documents (1.7), the one it tolerates
/// with an error line (1.8), and a modern one it cannot run on (17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JdkVersion {
    /// Oracle JDK 7u80, the last public Java 7 update.
    #[serde(rename = "1.7")]
    V1_7,
    /// Oracle JDK 8u202, the last Java 8 update under the old licence.
    #[serde(rename = "1.8")]
    V1_8,
    /// OpenJDK 17.0.2.
    #[serde(rename = "17")]
    V17,
}

impl JdkVersion {
    pub const ALL: [JdkVersion; 3] = [JdkVersion::V1_7, JdkVersion::V1_8, JdkVersion::V17];

    /// How the CLI and lab specs name it: `1.7`, `1.8` or `17`.
    pub fn as_str(self) -> &'static str {
        match self {
            JdkVersion::V1_7 => "1.7",
            JdkVersion::V1_8 => "1.8",
            JdkVersion::V17 => "17",
        }
    }

    /// The Java feature release: 7, 8 or 17.
    pub fn feature(self) -> u32 {
        match self {
            JdkVersion::V1_7 => 7,
            JdkVersion::V1_8 => 8,
            JdkVersion::V17 => 17,
        }
    }

    /// Java 9 and later: no permanent generation, no endorsed-standards override.
    pub fn is_modular(self) -> bool {
        self.feature() >= 9
    }

    /// The vendor archive's top directory, which is also the directory name on a host
    /// (`/usr/lib/jvm/jdk1.7.0_80`).
    pub fn dir_name(self) -> &'static str {
        match self {
            JdkVersion::V1_7 => "jdk1.7.0_80",
            JdkVersion::V1_8 => "jdk1.8.0_202",
            JdkVersion::V17 => "jdk-17.0.2",
        }
    }

    /// The `java.version` system property.
    pub fn java_version(self) -> &'static str {
        match self {
            JdkVersion::V1_7 => "1.7.0_80",
            JdkVersion::V1_8 => "1.8.0_202",
            JdkVersion::V17 => "17.0.2",
        }
    }

    /// What `java -fullversion` quotes.
    fn full_version(self) -> &'static str {
        match self {
            JdkVersion::V1_7 => "1.7.0_80-b15",
            JdkVersion::V1_8 => "1.8.0_202-b08",
            JdkVersion::V17 => "17.0.2+8-86",
        }
    }

    fn vm_description(self) -> &'static str {
        match self {
            JdkVersion::V1_7 | JdkVersion::V1_8 => "Java HotSpot(TM) 64-Bit Server VM",
            JdkVersion::V17 => "OpenJDK 64-Bit Server VM",
        }
    }

    /// What `java -version` prints on stderr (three lines, with the final newline).
    pub fn version_text(self) -> String {
        match self {
            JdkVersion::V1_7 | JdkVersion::V1_8 => {
                let vm_build = match self {
                    JdkVersion::V1_7 => "24.80-b11",
                    _ => "25.202-b08",
                };
                format!(
                    "java version \"{}\"\nJava(TM) SE Runtime Environment (build {})\n{} (build {vm_build}, mixed mode)\n",
                    self.java_version(),
                    self.full_version(),
                    self.vm_description()
                )
            }
            JdkVersion::V17 => format!(
                "openjdk version \"{}\" 2022-01-18\nOpenJDK Runtime Environment (build {full})\n{} (build {full}, mixed mode, sharing)\n",
                self.java_version(),
                self.vm_description(),
                full = self.full_version()
            ),
        }
    }

    /// The file name the vendor gives the archive, with `format`'s extension.
    pub fn archive_name(self, format: ArchiveFormat) -> String {
        let base = match self {
            JdkVersion::V1_7 => "jdk-7u80-linux-x64",
            JdkVersion::V1_8 => "jdk-8u202-linux-x64",
            JdkVersion::V17 => "openjdk-17.0.2_linux-x64_bin",
        };
        format!("{base}.{}", format.extension())
    }
}

impl std::fmt::Display for JdkVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JdkVersion {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "1.7" | "7" => Ok(JdkVersion::V1_7),
            "1.8" | "8" => Ok(JdkVersion::V1_8),
            "17" => Ok(JdkVersion::V17),
            other => Err(format!("unknown JDK `{other}` (allowed: 1.7, 1.8, 17)")),
        }
    }
}

/// How a JDK archive is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ArchiveFormat {
    #[default]
    TarGz,
    Zip,
}

impl ArchiveFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::Zip => "zip",
        }
    }
}

impl std::fmt::Display for ArchiveFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

impl std::str::FromStr for ArchiveFormat {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "tar.gz" | "tgz" => Ok(ArchiveFormat::TarGz),
            "zip" => Ok(ArchiveFormat::Zip),
            other => Err(format!(
                "unknown archive format `{other}` (allowed: tar.gz, zip)"
            )),
        }
    }
}

/// The stand-in `bin/java` of `version`.
pub fn java_script(version: JdkVersion) -> String {
    let vendor_word = if version.is_modular() {
        "openjdk"
    } else {
        "java"
    };
    JAVA_TEMPLATE
        .replace("@JDK_DIR@", version.dir_name())
        .replace("@FEATURE@", &version.feature().to_string())
        .replace("@VERSION@", version.java_version())
        .replace("@FULL_VERSION@", version.full_version())
        .replace("@VM_DESCRIPTION@", version.vm_description())
        .replace("@VENDOR_WORD@", vendor_word)
        .replace("@VERSION_TEXT@", version.version_text().trim_end())
}

/// The JDK's `release` file, as the real JDKs carry it.
fn release_file(version: JdkVersion) -> String {
    match version {
        JdkVersion::V1_7 | JdkVersion::V1_8 => format!(
            "JAVA_VERSION=\"{}\"\nOS_NAME=\"Linux\"\nOS_VERSION=\"2.6\"\nOS_ARCH=\"amd64\"\n",
            version.java_version()
        ),
        JdkVersion::V17 => format!(
            "IMPLEMENTOR=\"Oracle Corporation\"\nJAVA_VERSION=\"{}\"\nJAVA_VERSION_DATE=\"2022-01-18\"\n\
             OS_ARCH=\"x86_64\"\nOS_NAME=\"Linux\"\n",
            version.java_version()
        ),
    }
}

fn standin_note(version: JdkVersion) -> String {
    format!(
        "This is NOT a JDK.\n\n\
         It is a stand-in for {} ({}), written by apim-deploy for its test lab. Its\n\
         bin/java is a shell script that answers -version like that JVM, refuses the\n\
         options that JVM refuses, and runs the stand-in WSO2 Carbon server\n\
         (bin/standin-carbon.py of the distribution named by -Dcarbon.home). See\n\
         docs/standin.md in the apim-deploy repository.\n",
        version.dir_name(),
        version.java_version()
    )
}

/// Every entry of the JDK, names prefixed with its top directory, parents before children.
pub fn jdk_entries(version: JdkVersion) -> Vec<ZipEntry> {
    let top = version.dir_name();
    let dir = |path: &str| ZipEntry {
        name: format!("{top}/{path}"),
        mode: EXEC,
        kind: EntryKind::Directory,
    };
    let file = |path: &str, mode: u32, text: String| ZipEntry {
        name: format!("{top}/{path}"),
        mode,
        kind: EntryKind::File(text.into_bytes()),
    };
    let mut entries = vec![
        dir(""),
        file("STANDIN.txt", FILE, standin_note(version)),
        dir("bin/"),
        file("bin/java", EXEC, java_script(version)),
    ];
    if !version.is_modular() {
        // Where 7 and 8 keep the JRE (java.home) and the endorsed-standards directory
        // 1.9.0's start script names.
        entries.push(dir("jre/"));
        entries.push(dir("jre/lib/"));
        entries.push(dir("jre/lib/endorsed/"));
    }
    entries.push(dir("lib/"));
    entries.push(file("release", FILE, release_file(version)));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Writes `version`'s vendor-style archive into `dir` (created if missing), replacing an
/// earlier copy atomically, and returns its path and digest.
pub fn write_jdk_archive(
    dir: &Path,
    version: JdkVersion,
    format: ArchiveFormat,
) -> Result<Artifact, DistError> {
    fs::create_dir_all(dir).map_err(|source| DistError::Io {
        path: dir.to_path_buf(),
        action: "create directory",
        source,
    })?;
    let path = dir.join(version.archive_name(format));
    let entries = jdk_entries(version);
    match format {
        ArchiveFormat::Zip => write_entries_atomically(&path, &entries),
        ArchiveFormat::TarGz => {
            let tmp = temp_path(&path);
            let result = write_tar_gz(&tmp, &entries).and_then(|()| {
                fs::rename(&tmp, &path).map_err(|source| DistError::Io {
                    path: path.clone(),
                    action: "rename into place",
                    source,
                })
            });
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result?;
            digest_file(&path)
        }
    }
}

/// GNU tar (what vendors' JDK tarballs use), owner 0:0 without names, the fixed
/// timestamp, gzip level 6 without a file name or time in its header.
fn write_tar_gz(path: &Path, entries: &[ZipEntry]) -> Result<(), DistError> {
    let io_err = |action: &'static str| {
        move |source| DistError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let file = File::create(path).map_err(io_err("create"))?;
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(BufWriter::new(file), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        let bytes: &[u8] = match &entry.kind {
            EntryKind::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                &[]
            }
            EntryKind::File(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                bytes
            }
            EntryKind::Filler { .. } => unreachable!("a JDK has no filler"),
        };
        header.set_size(bytes.len() as u64);
        tar.append_data(&mut header, &entry.name, bytes)
            .map_err(io_err("write"))?;
    }
    let gz = tar.into_inner().map_err(io_err("write"))?;
    let mut out = gz.finish().map_err(io_err("write"))?;
    out.flush().map_err(io_err("flush"))
}

/// Writes `version`'s JDK as a directory tree under `root` (created if missing):
/// `root/<dir_name>`, replacing an earlier tree of that name. Returns the JDK's path,
/// i.e. the JAVA_HOME that runs it.
pub fn install_jdk_tree(root: &Path, version: JdkVersion) -> Result<PathBuf, DistError> {
    let io_err = |path: &Path, action: &'static str| {
        let path = path.to_path_buf();
        move |source| DistError::Io {
            path,
            action,
            source,
        }
    };
    fs::create_dir_all(root).map_err(io_err(root, "create directory"))?;
    let home = root.join(version.dir_name());
    // Built beside the target and renamed into place, so a host never sees half a JDK.
    let staging = root.join(format!(".{}.partial", version.dir_name()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_err(&staging, "remove"))?;
    }
    for entry in jdk_entries(version) {
        let relative = entry
            .name
            .split_once('/')
            .map_or("", |(_, rest)| rest)
            .trim_end_matches('/');
        let path = if relative.is_empty() {
            staging.clone()
        } else {
            staging.join(relative)
        };
        match &entry.kind {
            EntryKind::Directory => {
                fs::create_dir_all(&path).map_err(io_err(&path, "create directory"))?
            }
            EntryKind::File(bytes) => fs::write(&path, bytes).map_err(io_err(&path, "write"))?,
            EntryKind::Filler { .. } => unreachable!("a JDK has no filler"),
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode))
            .map_err(io_err(&path, "set the mode of"))?;
    }
    if home.exists() {
        fs::remove_dir_all(&home).map_err(io_err(&home, "remove"))?;
    }
    fs::rename(&staging, &home).map_err(io_err(&home, "rename into place"))?;
    Ok(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways() {
        for version in JdkVersion::ALL {
            assert_eq!(version.as_str().parse::<JdkVersion>(), Ok(version));
        }
        assert_eq!("7".parse::<JdkVersion>(), Ok(JdkVersion::V1_7));
        assert!(
            "11".parse::<JdkVersion>()
                .unwrap_err()
                .contains("1.7, 1.8, 17")
        );
        assert_eq!("tgz".parse::<ArchiveFormat>(), Ok(ArchiveFormat::TarGz));
        assert!("rar".parse::<ArchiveFormat>().is_err());
    }

    #[test]
    fn version_text_matches_what_wso2server_sh_greps_for() {
        // 1.9.0's check is `grep "1.[6|7]"` on `java -version`: only 1.7 may match.
        let matches = |text: &str| {
            text.as_bytes()
                .windows(3)
                .any(|w| w[0] == b'1' && matches!(w[2], b'6' | b'7' | b'|'))
        };
        assert!(matches(&JdkVersion::V1_7.version_text()));
        assert!(!matches(&JdkVersion::V1_8.version_text()));
        assert!(!matches(&JdkVersion::V17.version_text()));
    }

    #[test]
    fn the_script_has_no_placeholder_left() {
        for version in JdkVersion::ALL {
            let script = java_script(version);
            let placeholder = script
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'@' && w[1].is_ascii_uppercase());
            assert!(!placeholder, "{version}: {script}");
            assert!(script.starts_with("#!/bin/sh\n"));
        }
    }
}
