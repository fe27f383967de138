//! The database host's MariaDB: a private datadir made by `mariadb-install-db` inside the
//! host, `mariadbd` started directly (not `mysqld_safe`, so a killed server stays dead), and
//! an admin account for the deployment whose password travels only on stdin and in a 0600 file.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::{HostPaths, enter, start_daemon};
use crate::run::run_with_input;
use crate::spec::LabSpec;

/// The account `up` creates for the deployment tool.
pub const ADMIN_USER: &str = "apimadmin";

/// Creates the datadir (about 1 s; run it while the app hosts' sshds start).
pub(crate) fn install(spec: &LabSpec, paths: &HostPaths) -> Result<()> {
    let log = paths.log("install-db.log");
    let mut cmd = enter(
        spec,
        paths,
        &[
            "mariadb-install-db",
            "--user=mysql",
            "--datadir=/var/lib/mysql",
            "--skip-test-db",
            "--auth-root-authentication-method=socket",
        ],
    );
    let file = std::fs::File::create(&log).map_err(LabError::io(&log))?;
    cmd.stdout(file.try_clone().map_err(LabError::io(&log))?)
        .stderr(file);
    let status = cmd.status().map_err(LabError::io("mariadb-install-db"))?;
    if !status.success() {
        return Err(LabError::Host {
            host: paths.name.clone(),
            problem: format!("mariadb-install-db failed ({status})"),
            log,
        });
    }
    Ok(())
}

/// Starts mariadbd and waits until its socket answers.
pub(crate) fn start(spec: &LabSpec, paths: &HostPaths) -> Result<()> {
    let _ = std::fs::remove_file(paths.private("/run/mysqld/mysqld.pid"));
    start_daemon(
        spec,
        paths,
        &["/usr/sbin/mariadbd", "--user=mysql"],
        "mariadbd.log",
    )?;
    wait_for_socket(
        paths,
        &paths.private("/run/mysqld/mysqld.sock"),
        Duration::from_secs(30),
    )
}

/// Creates `apimadmin`@'%' with all privileges; the password is sent on stdin.
pub(crate) fn create_admin(spec: &LabSpec, paths: &HostPaths, password: &str) -> Result<()> {
    let sql = format!(
        "CREATE OR REPLACE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{password}';\n\
         GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION;\nFLUSH PRIVILEGES;\n"
    );
    run_with_input(
        &mut enter(spec, paths, &["mariadb", "--batch"]),
        Some(sql.as_bytes()),
    )
    .map(|_| ())
}

/// Does the server accept connections on its unix socket?
pub(crate) fn answering(paths: &HostPaths) -> bool {
    std::os::unix::net::UnixStream::connect(paths.private("/run/mysqld/mysqld.sock")).is_ok()
}

fn wait_for_socket(paths: &HostPaths, socket: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(LabError::Host {
        host: paths.name.clone(),
        problem: format!(
            "mariadbd not answering on {} after {} s",
            socket.display(),
            timeout.as_secs()
        ),
        log: paths.log("mariadbd.log"),
    })
}
