//! The database host's MariaDB: a private datadir made by `mariadb-install-db` inside the
//! host, `mariadbd` started directly (not `mysqld_safe`, so a killed server stays dead), and
//! an admin account for the deployment whose password travels only on stdin and in a 0600 file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::{HostPaths, enter, start_daemon};
use crate::run::{run, run_with_input};
use crate::spec::LabSpec;

/// The account `up` creates for the deployment tool.
pub const ADMIN_USER: &str = "apimadmin";

/// Machine-wide cache of a freshly installed datadir, one per mariadbd binary and lab
/// config. `mariadb-install-db` takes 1 to 5 s on a busy machine; copying its result takes
/// about 0.1 s. Not lab state: `down` leaves it, deleting it only costs the next `up` time.
pub const DATADIR_CACHE: &str = "/var/cache/apim-lab";

/// Fills the db host's private datadir: from the cache when it has a matching template,
/// else with `mariadb-install-db` inside the host (then stored in the cache).
pub(crate) fn install(spec: &LabSpec, paths: &HostPaths) -> Result<()> {
    let template = template_dir()?;
    if template.join("ready").exists() {
        // /var/cache is shared with the hosts; the datadir (a tmpfs) only exists inside.
        return copy_in_host(
            spec,
            paths,
            &template.join("data"),
            Path::new("/var/lib/mysql"),
        );
    }
    install_fresh(spec, paths)?;
    store_template(spec, paths, &template)
}

/// `<cache>/mariadb-<binary size>-<binary mtime>-<config hash>`.
fn template_dir() -> Result<PathBuf> {
    let binary = Path::new("/usr/sbin/mariadbd");
    let meta = std::fs::metadata(binary).map_err(LabError::io(binary))?;
    // FNV-1a of the lab config: a changed config must not reuse an old datadir.
    let hash = crate::host::MARIADB_CNF
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    Ok(PathBuf::from(DATADIR_CACHE).join(format!(
        "mariadb-{}-{}-{hash:016x}",
        meta.len(),
        meta.mtime()
    )))
}

/// Copies a just-installed datadir into the cache, atomically (a temp dir, then rename),
/// so labs coming up at the same time never see half a template.
fn store_template(spec: &LabSpec, paths: &HostPaths, template: &Path) -> Result<()> {
    let cache = Path::new(DATADIR_CACHE);
    std::fs::create_dir_all(cache).map_err(LabError::io(cache))?;
    let tmp = cache.join(format!(".tmp-{}-{}", std::process::id(), unique()));
    copy_in_host(spec, paths, Path::new("/var/lib/mysql"), &tmp.join("data"))?;
    std::fs::write(tmp.join("ready"), "").map_err(LabError::io(&tmp))?;
    if std::fs::rename(&tmp, template).is_err() {
        // Another lab stored the same template first; ours is redundant.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    remove_stale_templates(cache, template);
    Ok(())
}

/// Templates of an older mariadbd or lab config are never used again.
fn remove_stale_templates(cache: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_template = entry.file_name().to_string_lossy().starts_with("mariadb-");
        if is_template && path != current {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `cp -a src/. dest/` inside the db host: keeps owners (mysql) and modes.
fn copy_in_host(spec: &LabSpec, paths: &HostPaths, src: &Path, dest: &Path) -> Result<()> {
    let from = format!("{}/.", src.display());
    let to = dest.display().to_string();
    run(&mut enter(
        spec,
        paths,
        &[
            "sh",
            "-c",
            "mkdir -p \"$2\" && cp -a \"$1\" \"$2\"",
            "sh",
            &from,
            &to,
        ],
    ))
    .map(|_| ())
}

fn install_fresh(spec: &LabSpec, paths: &HostPaths) -> Result<()> {
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
