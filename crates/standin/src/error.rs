//! Errors of the generator: bad options, or a file that could not be written.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("invalid --{option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write entry {entry} of {}: {source}", path.display())]
    Zip {
        path: PathBuf,
        entry: String,
        source: zip::result::ZipError,
    },
}
