//! `Lab`: bringing a lab up and down and inspecting it (faults: `faults.rs`; teardown:
//! `teardown.rs`).
//!
//! `up` writes `lab.json` into the state dir before it creates anything, so `down` (or the
//! next `up`) can clean up a half-built or crashed lab. Teardown finds the lab's processes by
//! mount namespace, its links and netns by their tagged names, and its mounts by path; it
//! refuses to delete the state dir while anything is still mounted under it.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apim_standin::jdk::JdkVersion;
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::{LabError, Result};
use crate::host::{self, DeployUser, HostPaths};
use crate::inventory::{self, DistFiles};
use crate::keys;
use crate::net;
use crate::procs;
use crate::run::{command, output_with_input, run};
use crate::spec::{Host, LabSpec};
use crate::teardown::{Files, host_namespace, teardown};

const STATE_FILE: &str = "lab.json";
const BOOT_TIMEOUT: Duration = Duration::from_secs(15);
pub(crate) const SSHD_TIMEOUT: Duration = Duration::from_secs(15);

/// What `lab.json` records: enough to find and tear down everything of the lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    spec: LabSpec,
    hosts: Vec<Host>,
    deploy_uid: u32,
    deploy_gid: u32,
}

/// A running lab. Dropping it does not stop it (the CLI's `up` leaves it running);
/// call [`Lab::down`], or use [`crate::testing::TestLab`] which downs on drop.
#[derive(Debug)]
pub struct Lab {
    spec: LabSpec,
    hosts: Vec<Host>,
    /// The `unshare` anchors when this process started them: waited on by `down` so
    /// they never linger as zombies of a long-running test process.
    anchors: Mutex<Vec<Child>>,
}

/// The database admin account `up` created, for tests and the inventory.
#[derive(Debug, Clone)]
pub struct DbAdmin {
    pub host: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub user: String,
    /// Mode 0600 file holding the password (never printed).
    pub password_file: PathBuf,
}

/// One host's state, as `lab status` reports it.
#[derive(Debug, Clone)]
pub struct HostStatus {
    pub host: Host,
    /// Processes in the host (its init, the anchor, sshd, sessions, daemons).
    pub processes: usize,
    pub sshd_running: bool,
    /// Some process of the host is stopped (after `freeze`).
    pub frozen: bool,
    /// Traffic dropped (after `cut`).
    pub cut: bool,
    /// For the db host: mariadbd answers on its socket.
    pub db_running: Option<bool>,
}

impl Lab {
    /// Builds the lab `spec` describes. An existing state dir is torn down first, so a
    /// crashed run is cleaned up by running `up` again.
    pub fn up(spec: &LabSpec) -> Result<Lab> {
        spec.validate()?;
        ensure_root()?;
        Lab::down_dir(&spec.state_dir)?;
        ensure_tools(spec)?;
        ensure_prefix_free(spec)?;
        let hosts = spec.plan();
        let mut user = host::deploy_user(&spec.deploy_user)?;
        mkdir_private(&spec.state_dir)?;
        write_state(spec, &hosts, &user)?;
        if spec.password_login {
            let password = inventory::random_password()?;
            host::write(
                &inventory::secret_path(spec, inventory::DEPLOY_PASSWORD),
                &password,
                0o600,
            )?;
            user.password_hash = Some(host::password_hash(&password)?);
        }
        let lab = Lab {
            spec: spec.clone(),
            hosts,
            anchors: Mutex::new(Vec::new()),
        };
        match lab.build(&user) {
            Ok(()) => Ok(lab),
            Err(err) => {
                // Stop everything, but keep the files: the error points at a host's log.
                // The next `up` or `down` deletes them.
                let anchors =
                    std::mem::take(&mut *lab.anchors.lock().unwrap_or_else(|e| e.into_inner()));
                if let Err(cleanup) = teardown(&lab.spec, &lab.hosts, anchors, Files::Keep) {
                    tracing::warn!("cleaning up the failed lab also failed: {cleanup}");
                }
                Err(err)
            }
        }
    }

    /// Re-opens the lab recorded in `state_dir` (for `lab status`, `lab freeze`, ...).
    pub fn open(state_dir: &Path) -> Result<Lab> {
        let state = read_state(state_dir)?.ok_or_else(|| LabError::State {
            path: state_dir.to_path_buf(),
            problem: "no lab here (no lab.json); run `apim-deploy lab up` first".into(),
        })?;
        Ok(Lab {
            spec: state.spec,
            hosts: state.hosts,
            anchors: Mutex::new(Vec::new()),
        })
    }

    /// Stops every process of the lab and removes its mounts, namespaces, links, firewall
    /// rules and state dir. Running it again is a no-op.
    pub fn down(&self) -> Result<()> {
        let anchors = std::mem::take(&mut *self.anchors.lock().unwrap_or_else(|e| e.into_inner()));
        teardown(&self.spec, &self.hosts, anchors, Files::Delete)
    }

    /// Tears down whatever lab lives in `state_dir`; nothing to do if it does not exist.
    pub fn down_dir(state_dir: &Path) -> Result<()> {
        if !state_dir.exists() {
            return Ok(());
        }
        match read_state(state_dir)? {
            Some(state) => teardown(&state.spec, &state.hosts, Vec::new(), Files::Delete),
            None if is_empty_dir(state_dir) => {
                fs::remove_dir(state_dir).map_err(LabError::io(state_dir))
            }
            None => Err(LabError::NotALab {
                path: state_dir.to_path_buf(),
            }),
        }
    }

    fn build(&self, user: &DeployUser) -> Result<()> {
        let spec = &self.spec;
        let t0 = Instant::now();
        keys::generate(spec, &self.hosts)?;
        tracing::debug!("lab: keys after {:?}", t0.elapsed());
        let lab_key = keys::lab_public_key(spec)?;
        for host in &self.hosts {
            host::prepare(&self.paths(host), host, &self.hosts, spec, &lab_key, user)?;
        }
        net::create(spec, &self.hosts)?;
        private_ns_dir(&spec.state_dir.join("ns"))?;
        ensure_mount_point(Path::new(crate::spec::JVM_DIR))?;
        tracing::debug!("lab: prepared+net after {:?}", t0.elapsed());
        self.boot_all()?;
        tracing::debug!("lab: booted after {:?}", t0.elapsed());
        let secrets = inventory::write_secrets(spec)?;
        std::thread::scope(|scope| {
            let db_job = self.hosts.iter().find(|h| h.is_db).map(|db_host| {
                scope.spawn(move || self.start_db(db_host, &secrets.db_admin_password))
            });
            let sshd = self.start_all_sshd();
            let db = db_job.map_or(Ok(()), |job| job.join().expect("db thread panicked"));
            sshd.and(db)
        })?;
        tracing::debug!("lab: daemons after {:?}", t0.elapsed());
        keys::write_known_hosts(spec, &self.hosts)?;
        keys::write_ssh_config(spec, &self.hosts)?;
        inventory::write(spec, &self.hosts, &inventory::DistFiles::placeholder(spec))?;
        inventory::write_ansible(spec, &self.hosts)?;
        Ok(())
    }

    fn boot_all(&self) -> Result<()> {
        let mut anchors = self.anchors.lock().unwrap_or_else(|e| e.into_inner());
        for host in &self.hosts {
            anchors.push(host::boot(&self.spec, &self.paths(host), host)?);
        }
        for (host, anchor) in self.hosts.iter().zip(anchors.iter_mut()) {
            let paths = self.paths(host);
            host::wait_booted(&paths, anchor, BOOT_TIMEOUT)?;
            if host_namespace(&paths) != procs::mntns_of(anchor.id() as i32) {
                return Err(LabError::Host {
                    host: host.name.clone(),
                    problem: "its mount namespace handle is not bound".into(),
                    log: paths.log("init.log"),
                });
            }
        }
        Ok(())
    }

    fn start_all_sshd(&self) -> Result<()> {
        for host in &self.hosts {
            host::start_sshd(&self.spec, &self.paths(host))?;
        }
        for host in &self.hosts {
            wait_for_port(host, 22, SSHD_TIMEOUT, &self.paths(host).log("sshd.log"))?;
        }
        Ok(())
    }

    fn start_db(&self, db_host: &Host, admin_password: &str) -> Result<()> {
        let paths = self.paths(db_host);
        let t0 = Instant::now();
        db::install(&self.spec, &paths)?;
        tracing::debug!("lab: db installed after {:?}", t0.elapsed());
        db::start(&self.spec, &paths)?;
        tracing::debug!("lab: db started after {:?}", t0.elapsed());
        db::create_admin(&self.spec, &paths, admin_password)?;
        tracing::debug!("lab: db admin after {:?}", t0.elapsed());
        wait_for_port(db_host, 3306, SSHD_TIMEOUT, &paths.log("mariadbd.log"))
    }

    // ----- accessors -----

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// Every host, app hosts first, then `db`.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host named `name` (`app1`, ..., `db`).
    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| LabError::UnknownHost {
                name: name.to_string(),
                known: self
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn state_dir(&self) -> &Path {
        &self.spec.state_dir
    }

    /// The controller's own address on the lab network (connections from it come from here).
    pub fn controller_address(&self) -> Ipv4Addr {
        self.spec.controller_address()
    }

    /// Private key (ed25519, no passphrase) accepted for root and the deploy user on every host.
    pub fn ssh_key_path(&self) -> PathBuf {
        self.spec.state_dir.join("id_ed25519")
    }

    /// Every host key, as `name,address type key` lines.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.spec.state_dir.join("known_hosts")
    }

    /// OpenSSH client config with a `Host` block per lab host.
    pub fn ssh_config_path(&self) -> PathBuf {
        self.spec.state_dir.join("ssh_config")
    }

    /// `<state>/inventory.toml`, written by `up` (passes `apim-deploy check`). Its
    /// distribution and JDBC driver are placeholders until [`Lab::write_inventory`].
    pub fn inventory_path(&self) -> PathBuf {
        inventory::path(&self.spec)
    }

    /// `<state>/inventory.ini`: the same hosts as an Ansible inventory (groups `apim` and
    /// `database`), for comparison runs.
    pub fn ansible_inventory_path(&self) -> PathBuf {
        inventory::ansible_path(&self.spec)
    }

    /// Rewrites the inventory to point at real distribution files (e.g. the stand-in
    /// from `apim_standin::write_dist`, conventionally under [`Lab::dist_dir`]).
    pub fn write_inventory(&self, dist: &DistFiles) -> Result<PathBuf> {
        inventory::write(&self.spec, &self.hosts, dist)?;
        Ok(self.inventory_path())
    }

    /// `<state>/dist`: where the inventory expects the distribution by default.
    pub fn dist_dir(&self) -> PathBuf {
        self.spec.state_dir.join("dist")
    }

    /// Non-root user with passwordless sudo and the lab key on every host.
    pub fn deploy_user(&self) -> &str {
        &self.spec.deploy_user
    }

    /// The deploy user's password file (mode 0600), when the spec asked for password login.
    pub fn deploy_password_file(&self) -> Option<PathBuf> {
        self.spec
            .password_login
            .then(|| inventory::secret_path(&self.spec, inventory::DEPLOY_PASSWORD))
    }

    /// The MariaDB admin account, if the lab has a db host.
    pub fn db_admin(&self) -> Option<DbAdmin> {
        let db_host = self.hosts.iter().find(|h| h.is_db)?;
        Some(DbAdmin {
            host: db_host.name.clone(),
            address: db_host.address,
            port: 3306,
            user: db::ADMIN_USER.to_string(),
            password_file: inventory::secret_path(&self.spec, inventory::DB_ADMIN_PASSWORD),
        })
    }

    /// Where a path inside one of the host's private dirs (/opt, /root, /home, /tmp,
    /// /var/tmp, /var/log, /run, /usr/lib/jvm) lives on the controller, for assertions that do not go
    /// through the host. For /etc it is the host's own changes (the overlay's upper dir).
    /// Other paths (/usr, the db's in-memory /var/lib/mysql) are an error: use `exec`.
    pub fn host_path(&self, name: &str, inside: &str) -> Result<PathBuf> {
        let host = self.host(name)?;
        self.paths(host)
            .private_path(inside)
            .ok_or_else(|| LabError::NotPrivate {
                host: name.to_string(),
                path: inside.to_string(),
            })
    }

    /// JAVA_HOME of the JDK `up` installed on the host (`/usr/lib/jvm/jdk1.7.0_80`), if any:
    /// app hosts get [`LabSpec::jdk`], the db host none. Nothing sets JAVA_HOME on the
    /// host itself; a deployment must find or be told this path.
    pub fn java_home(&self, name: &str) -> Result<Option<String>> {
        Ok(self.spec.java_home(self.host(name)?))
    }

    /// Installs the stand-in JDK `version` into the running host's `/usr/lib/jvm`
    /// (replacing one of the same version) and returns its JAVA_HOME as the host sees it.
    pub fn install_jdk(&self, name: &str, version: JdkVersion) -> Result<String> {
        let root = self.host_path(name, crate::spec::JVM_DIR)?;
        apim_standin::jdk::install_jdk_tree(&root, version).map_err(LabError::Jdk)?;
        Ok(format!("{}/{}", crate::spec::JVM_DIR, version.dir_name()))
    }

    /// Removes the stand-in JDK `version` from the host's `/usr/lib/jvm` (nothing to do
    /// if it is not there).
    pub fn remove_jdk(&self, name: &str, version: JdkVersion) -> Result<()> {
        let root = self.host_path(name, crate::spec::JVM_DIR)?;
        let home = root.join(version.dir_name());
        match fs::remove_dir_all(&home) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(LabError::io(&home)(err)),
            _ => Ok(()),
        }
    }

    /// Directory with the host's logs (sshd.log, mariadbd.log, init.log, install-db.log).
    pub fn log_dir(&self, name: &str) -> Result<PathBuf> {
        let host = self.host(name)?;
        Ok(self.paths(host).dir.join("log"))
    }

    // ----- inside hosts -----

    /// Runs `argv` inside the host (its namespaces, as root, cwd /), without SSH. The exit
    /// status is in the output, not an error.
    pub fn exec(&self, name: &str, argv: &[&str]) -> Result<Output> {
        self.exec_with_stdin(name, argv, None)
    }

    /// Like [`Lab::exec`], feeding `stdin` to the command (the way to pass secrets).
    pub fn exec_with_stdin(
        &self,
        name: &str,
        argv: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<Output> {
        let host = self.host(name)?;
        output_with_input(&mut host::enter(&self.spec, &self.paths(host), argv), stdin)
    }

    /// The command [`Lab::exec`] runs, for callers that want their own stdio (the CLI's
    /// `lab exec` passes the terminal through).
    pub fn exec_command(&self, name: &str, argv: &[&str]) -> Result<std::process::Command> {
        let host = self.host(name)?;
        Ok(host::enter(&self.spec, &self.paths(host), argv))
    }

    /// An OpenSSH client command logging in to `name` as `user` with the lab key, checking
    /// the host key against the lab's known_hosts. Append the remote command with `.arg(...)`.
    /// `connect_timeout_secs` bounds the TCP connect and the banner exchange: without it a
    /// frozen or cut host makes ssh hang for minutes.
    pub fn ssh_command(
        &self,
        name: &str,
        user: &str,
        connect_timeout_secs: u64,
    ) -> Result<std::process::Command> {
        let host = self.host(name)?;
        let mut cmd = std::process::Command::new("ssh");
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.ssh_key_path())
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts_path().display()
            ))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-o")
            .arg(format!("ConnectTimeout={connect_timeout_secs}"))
            .arg("-p")
            .arg("22")
            .arg(format!("{user}@{}", host.address));
        Ok(cmd)
    }

    /// Pids (as the controller sees them) of every process of the host.
    pub fn pids(&self, name: &str) -> Result<Vec<i32>> {
        Ok(procs::pids_in(self.mntns(self.host(name)?)?))
    }

    /// The host's sshd listener pid (controller view), if it runs.
    pub fn sshd_pid(&self, name: &str) -> Result<Option<i32>> {
        let host = self.host(name)?;
        let ns = self.mntns(host)?;
        Ok(procs::pid_from_file(
            ns,
            &self.paths(host).private("/run/sshd.pid"),
        ))
    }

    // ----- status -----

    /// One scan of /proc, then each host's state.
    pub fn status(&self) -> Result<Vec<HostStatus>> {
        let ids: Vec<u64> = self
            .hosts
            .iter()
            .filter_map(|h| self.mntns(h).ok())
            .collect();
        let mut by_ns: HashMap<u64, Vec<i32>> = HashMap::new();
        for (pid, ns) in procs::scan(&ids) {
            by_ns.entry(ns).or_default().push(pid);
        }
        let mut report = Vec::new();
        for host in &self.hosts {
            let paths = self.paths(host);
            let ns = self.mntns(host).ok();
            let pids = ns
                .and_then(|ns| by_ns.get(&ns).cloned())
                .unwrap_or_default();
            let frozen = pids
                .iter()
                .any(|&p| procs::status_of(p).is_some_and(|s| s.state == 'T' || s.state == 't'));
            let sshd_running = ns.is_some_and(|ns| {
                procs::pid_from_file(ns, &paths.private("/run/sshd.pid")).is_some()
            });
            let db_running = host.is_db.then(|| db::answering(&paths));
            report.push(HostStatus {
                host: host.clone(),
                processes: pids.len(),
                sshd_running,
                frozen,
                cut: paths.dir.join("cut").exists(),
                db_running,
            });
        }
        Ok(report)
    }

    // ----- internals -----

    pub(crate) fn paths(&self, host: &Host) -> HostPaths {
        HostPaths::new(&self.spec.state_dir, &host.name)
    }

    pub(crate) fn mntns(&self, host: &Host) -> Result<u64> {
        let paths = self.paths(host);
        host_namespace(&paths).ok_or(LabError::State {
            path: paths.handle("mnt"),
            problem: format!(
                "host {} is not running (no mount namespace handle)",
                host.name
            ),
        })
    }

    pub(crate) fn in_netns(&self, host: &Host, argv: &[&str]) -> std::process::Command {
        let mut cmd = command("nsenter");
        cmd.arg(format!("--net={}", net::netns_path(&self.spec, &host.name)))
            .arg("--")
            .args(argv);
        cmd
    }
}

/// `unshare --mount=FILE` needs FILE on a non-shared mount: make the ns dir a private bind.
fn private_ns_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    run(command("mount").arg("--bind").arg(dir).arg(dir))?;
    run(command("mount").arg("--make-private").arg(dir))?;
    Ok(())
}

pub(crate) fn wait_for_port(host: &Host, port: u16, timeout: Duration, log: &Path) -> Result<()> {
    let addr = SocketAddr::from((host.address, port));
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(LabError::Host {
        host: host.name.clone(),
        problem: format!("nothing listening on {addr} after {} s", timeout.as_secs()),
        log: log.to_path_buf(),
    })
}

/// Polls `done` every 10 ms; false on timeout.
pub(crate) fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Root on Linux, or a clear error.
pub fn ensure_root() -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Err(LabError::NotPermitted {
            reason: format!(
                "this is {}, and the lab uses Linux namespaces",
                std::env::consts::OS
            ),
        });
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(LabError::NotPermitted {
            reason: format!("running as uid {euid}; run as root (e.g. with sudo)"),
        });
    }
    Ok(())
}

/// Every program `up` will run, checked before anything is created: a missing one would
/// otherwise surface as a half-built lab and a host log to read.
fn ensure_tools(spec: &LabSpec) -> Result<()> {
    let mut needed = vec![
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/python3", "python3"),
        ("/usr/bin/sudo", "sudo"),
    ];
    let mut programs = vec![
        ("ip", "iproute2"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
        ("setsid", "util-linux"),
    ];
    if spec.with_db {
        needed.push(("/usr/sbin/mariadbd", "mariadb-server"));
        programs.push(("mariadb-install-db", "mariadb-server"));
        programs.push(("mariadb", "mariadb-client"));
    }
    if spec.password_login {
        programs.push(("openssl", "openssl"));
    }
    let on_path = |program: &str| {
        crate::run::SYSTEM_PATH
            .split(':')
            .any(|dir| Path::new(dir).join(program).exists())
    };
    let missing: Vec<String> = needed
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(path, package)| format!("{path} (package {package})"))
        .chain(
            programs
                .iter()
                .filter(|(program, _)| !on_path(program))
                .map(|(program, package)| format!("{program} (package {package})")),
        )
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LabError::MissingTools {
            missing: missing.join(", "),
        })
    }
}

/// Another lab (other state dir) already using this prefix would share routes and names.
fn ensure_prefix_free(spec: &LabSpec) -> Result<()> {
    let links = net::lab_links(spec)?;
    let netns = net::lab_netns(spec);
    if links.is_empty() && netns.is_empty() {
        return Ok(());
    }
    Err(LabError::State {
        path: spec.state_dir.clone(),
        problem: format!(
            "prefix {} (tag {}) is in use by another lab (links {links:?}, netns {netns:?}): \
             run `apim-deploy lab down` with that lab's --state-dir, or pick another --prefix",
            spec.prefix, spec.tag
        ),
    })
}

/// Creates a directory a host binds its own copy over, if the controller lacks it (a
/// machine without any JDK has no /usr/lib/jvm). An existing one is left as it is.
fn ensure_mount_point(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(LabError::io(dir))
}

fn mkdir_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).map_err(LabError::io(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(LabError::io(dir))
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_none())
}

fn write_state(spec: &LabSpec, hosts: &[Host], user: &DeployUser) -> Result<()> {
    let state = State {
        spec: spec.clone(),
        hosts: hosts.to_vec(),
        deploy_uid: user.uid,
        deploy_gid: user.gid,
    };
    let path = spec.state_dir.join(STATE_FILE);
    let text = serde_json::to_string_pretty(&state).expect("state serializes");
    host::write(&path, &text, 0o600)
}

fn read_state(state_dir: &Path) -> Result<Option<State>> {
    let path = state_dir.join(STATE_FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| LabError::State {
            path,
            problem: format!("unreadable lab.json: {err}"),
        })
}
