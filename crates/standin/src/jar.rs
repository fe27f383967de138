//! The fake MySQL Connector/J 5.1.49 jar: a valid zip with a manifest, the JDBC
//! service registration and a class-named entry. Nothing loads it (the stand-in server
//! talks to MariaDB through the `mariadb` client); it exists so that apim-deploy's
//! driver handling (checksum, upload to `repository/components/lib/`) is real.

use std::path::Path;

use crate::archive::write_entries_atomically;
use crate::layout::{EntryKind, ZipEntry};
use crate::{Artifact, DistError};

const MANIFEST: &str = "Manifest-Version: 1.0\r\n\
Implementation-Title: MySQL Connector Java (apim-deploy stand-in, not a driver)\r\n\
Implementation-Version: 5.1.49\r\n\
Implementation-Vendor: apim-deploy lab\r\n\
Specification-Title: JDBC\r\n\
Specification-Version: 4.0\r\n\
\r\n";

/// A class-file header (magic, Java 6 version) followed by a note: the entry is named
/// like the driver class but is not loadable.
fn driver_class_bytes() -> Vec<u8> {
    let mut bytes = vec![0xCA, 0xFE, 0xBA, 0xBE, 0x00, 0x00, 0x00, 0x32];
    bytes.extend_from_slice(b"apim-deploy stand-in: not a real class file\n");
    bytes
}

fn jar_entries() -> Vec<ZipEntry> {
    let dir = |name: &str| ZipEntry {
        name: name.to_string(),
        mode: 0o755,
        kind: EntryKind::Directory,
    };
    let file = |name: &str, bytes: Vec<u8>| ZipEntry {
        name: name.to_string(),
        mode: 0o644,
        kind: EntryKind::File(bytes),
    };
    vec![
        dir("META-INF/"),
        file("META-INF/MANIFEST.MF", MANIFEST.as_bytes().to_vec()),
        dir("META-INF/services/"),
        file(
            "META-INF/services/java.sql.Driver",
            b"com.mysql.jdbc.Driver\n".to_vec(),
        ),
        dir("com/"),
        dir("com/mysql/"),
        dir("com/mysql/jdbc/"),
        file("com/mysql/jdbc/Driver.class", driver_class_bytes()),
    ]
}

/// Writes the jar to `path` and returns its digest.
pub fn write_jdbc_jar(path: &Path) -> Result<Artifact, DistError> {
    write_entries_atomically(path, &jar_entries())
}
