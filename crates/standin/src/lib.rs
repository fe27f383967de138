//! apim-standin: a stand-in WSO2 API Manager 1.9.0 distribution for apim-deploy's lab.
//!
//! The real `wso2am-1.9.0.zip` cannot be downloaded here and needs JDK 7, yet every
//! end-to-end test needs a distribution to push, unpack, patch, start, stop and break.
//! This crate writes one that behaves like the real thing where apim-deploy can see it:
//!
//! * [`write_dist`] writes `wso2am-1.9.0.zip` (top folder `wso2am-1.9.0/`, the real
//!   layout, config files with the real element paths, defaults and traps) and a
//!   matching fake JDBC driver jar, byte-for-byte reproducible (same options, same sha256).
//! * Inside the zip, `bin/wso2server.sh` has the 1.9.0 script's interface and quirks
//!   and runs `bin/standin-carbon.py` (python3, standard library only), a server that
//!   reads the node's own config files, binds the Carbon ports, checks its databases and
//!   peers and logs in Carbon's format. See `docs/standin.md` for its behaviour.
//! * [`pidfile`] parses the 100-byte NUL-padded `wso2carbon.pid` both servers write.
//!
//! **Invariant:** the archive is a pure function of [`DistOptions`]; nothing in it
//! depends on the clock, the machine or the file system it is built on.

mod archive;
mod error;
mod jar;
pub mod jdk;
mod layout;
pub mod pidfile;

use std::path::{Path, PathBuf};

pub use archive::write_zip;
pub use error::DistError;
pub use jar::write_jdbc_jar;
pub use layout::{EntryKind, ZipEntry, zip_entries};

/// File name of the distribution archive.
pub const DIST_ZIP_NAME: &str = "wso2am-1.9.0.zip";
/// The archive's single top-level folder (CARBON_HOME once unpacked).
pub const TOP_DIR: &str = "wso2am-1.9.0";
/// File name of the fake MySQL Connector/J jar.
pub const JDBC_JAR_NAME: &str = "mysql-connector-java-5.1.49-bin.jar";
/// The log line the server writes once it is healthy (as Carbon's StartupFinalizer).
pub const STARTED_MARKER: &str = "WSO2 Carbon started in";
/// The file under CARBON_HOME that makes the server refuse to become healthy.
pub const REFUSE_START_FILE: &str = "repository/conf/standin-refuse-start";
/// The file under CARBON_HOME that makes the server log an ERROR and exit (status 1)
/// before it is healthy; the env var `STANDIN_EXIT_EARLY=1` does the same.
pub const EXIT_EARLY_FILE: &str = "repository/conf/standin-exit-early";

/// Default delay between "all checks passed" and the started line.
pub const DEFAULT_START_DELAY_SECS: f64 = 2.0;
/// Largest accepted `--size-mb` (the zip stays below 4 GiB, no zip64 needed).
pub const MAX_SIZE_MB: u64 = 2048;
/// Largest accepted start delay.
pub const MAX_START_DELAY_SECS: f64 = 600.0;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DistOptions {
    /// Pad the archive with incompressible filler to about this many MiB (0: no padding).
    pub size_mb: u64,
    /// Seconds the server waits, once every check passed, before logging that it started.
    /// Written to `bin/standin.properties`; the env var `STANDIN_START_DELAY` overrides it.
    pub start_delay_secs: f64,
}

impl Default for DistOptions {
    fn default() -> Self {
        Self {
            size_mb: 0,
            start_delay_secs: DEFAULT_START_DELAY_SECS,
        }
    }
}

impl DistOptions {
    /// Rejects values the generator or the server could not honour.
    pub fn validate(&self) -> Result<(), DistError> {
        if self.size_mb > MAX_SIZE_MB {
            return Err(DistError::InvalidOption {
                option: "size-mb",
                reason: format!("{} is above the maximum of {MAX_SIZE_MB}", self.size_mb),
            });
        }
        let delay = self.start_delay_secs;
        if !delay.is_finite() || !(0.0..=MAX_START_DELAY_SECS).contains(&delay) {
            return Err(DistError::InvalidOption {
                option: "start-delay-secs",
                reason: format!("{delay} is not between 0 and {MAX_START_DELAY_SECS}"),
            });
        }
        Ok(())
    }
}

/// A written file and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: PathBuf,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
    pub size_bytes: u64,
}

/// Everything [`write_dist`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dist {
    pub zip: Artifact,
    pub jdbc_jar: Artifact,
}

/// Writes `wso2am-1.9.0.zip` and the JDBC jar into `out_dir` (created if missing),
/// replacing earlier copies atomically, and returns their paths and digests.
pub fn write_dist(out_dir: &Path, opts: &DistOptions) -> Result<Dist, DistError> {
    opts.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|source| DistError::Io {
        path: out_dir.to_path_buf(),
        action: "create directory",
        source,
    })?;
    let zip = write_zip(&out_dir.join(DIST_ZIP_NAME), opts)?;
    let jdbc_jar = write_jdbc_jar(&out_dir.join(JDBC_JAR_NAME))?;
    Ok(Dist { zip, jdbc_jar })
}
