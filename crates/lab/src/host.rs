//! One lab host: its files on the controller, its namespaces, and the processes in it.
//!
//! A host is a mount, UTS and PID namespace (plus the network namespace from `net`), created
//! by `unshare` with persistent handles in `<state>/ns`. Its boot script mounts an overlay over
//! `/etc` (so rename-based edits such as `sed -i` work and `/etc/passwd` is private), binds its
//! private `/opt /root /home /tmp /var/tmp /var/log /run /usr/lib/jvm` (and the db's
//! `/var/lib/mysql`), and
//! execs a small reaping init as the host's pid 1. Daemons are started with `nsenter ... setsid -f`
//! so they are re-parented to that init. Everything the host writes is readable on the
//! controller under `<state>/hosts/<name>/fs`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::net::netns_path;
use crate::run::{SYSTEM_PATH, command, describe};
use crate::spec::{Host, LabSpec};

/// The host's pid 1: reaps every orphan (daemons started with nohup, killed sessions) at once,
/// so `kill -0` never reports a dead process as alive; exits on SIGTERM, which ends the host.
const INIT_PY: &str = r#"import os, signal, sys
# apim-lab host init: pid 1 of a lab host. Reaps orphans, exits on TERM/INT.
wanted = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
while True:
    info = signal.sigwaitinfo(wanted)
    if info.si_signo != signal.SIGCHLD:
        sys.exit(0)
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
"#;

/// Runs inside the new namespaces before the init. Arguments: state dir, host dir, name,
/// address, prefix, is_db.
const BOOT_SH: &str = r#"
lab=$1 h=$2 name=$3 addr=$4 prefix=$5 db=$6
# Drop this mount namespace's copies of every namespace handle (this lab's, other labs',
# ip-netns'): a copy would keep that namespace alive after its lab is down. Detaching a
# handle dir (a lab's <state>/ns, /run/netns) drops all handles in it with one umount.
nsfs_mounts() { grep ' - nsfs ' /proc/self/mountinfo | cut -d' ' -f5; }
is_mount_point() { cut -d' ' -f5 /proc/self/mountinfo | grep -qxF "$1"; }
for d in "$lab/ns" /run/netns $(nsfs_mounts | sed -n 's|/[^/]*$||p' | grep '/ns$' | sort -u); do
  if is_mount_point "$d"; then umount -l "$d" 2>/dev/null || true; fi
done
nsfs_mounts | while read -r m; do umount -l "$m" 2>/dev/null || true; done
mount -t overlay "apimlab-etc-$name" -o "lowerdir=/etc,upperdir=$h/etc.upper,workdir=$h/etc.work" /etc
mount --bind "$h/fs/opt" /opt
# The host's own JDKs only: the controller's (whatever the machine has installed) must
# not make a host look provisioned that is not.
mount --bind "$h/fs/jvm" /usr/lib/jvm
mount --bind "$h/fs/root" /root
mount --bind "$h/fs/home" /home
mount --bind "$h/fs/vartmp" /var/tmp
mount --bind "$h/fs/varlog" /var/log
# The db's datadir lives in memory: deleting tens of MB of InnoDB files cost up to a
# second of every down on this disk; a tmpfs goes with the host's mount namespace.
if [ "$db" = 1 ]; then
  mount -t tmpfs -o mode=0755,size=4g apimlab-mysql /var/lib/mysql
  chown "$(id -u mysql):$(id -g mysql)" /var/lib/mysql
fi
mount --bind "$h/fs/run" /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
hostname "$name"
ip link set lo up
echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet
if [ -e /proc/sys/net/ipv6/conf/eth0/disable_ipv6 ]; then echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6; fi
ip addr add "$addr/24" dev eth0
ip link set eth0 up
ip route add table local "$prefix.0/24" dev eth0 src "$addr"
# Last: the state dir itself lives under /tmp.
mount --bind "$h/fs/tmp" /tmp
: > /run/apimlab-ready
exec /usr/bin/python3 /run/apimlab-init.py
"#;

/// Paths of one host on the controller.
#[derive(Debug, Clone)]
pub(crate) struct HostPaths {
    pub dir: PathBuf,
    pub ns_dir: PathBuf,
    pub name: String,
}

impl HostPaths {
    pub fn new(state_dir: &Path, name: &str) -> HostPaths {
        HostPaths {
            dir: state_dir.join("hosts").join(name),
            ns_dir: state_dir.join("ns"),
            name: name.to_string(),
        }
    }
    pub fn etc_upper(&self) -> PathBuf {
        self.dir.join("etc.upper")
    }
    pub fn fs(&self) -> PathBuf {
        self.dir.join("fs")
    }
    pub fn log(&self, file: &str) -> PathBuf {
        self.dir.join("log").join(file)
    }
    pub fn handle(&self, kind: &str) -> PathBuf {
        self.ns_dir.join(format!("{}.{kind}", self.name))
    }
    pub fn anchor_file(&self) -> PathBuf {
        self.dir.join("anchor.pid")
    }
    /// A path inside the host (absolute, e.g. `/run/sshd.pid`) as seen from the controller;
    /// None unless it is in one of the host's private dirs. For `/etc` that is the host's
    /// own changes (the overlay's upper dir), not the files it shares with the controller.
    pub fn private_path(&self, inside: &str) -> Option<PathBuf> {
        let fs = self.fs();
        for (mount, sub) in [
            ("/var/tmp", "vartmp"),
            ("/var/log", "varlog"),
            ("/opt", "opt"),
            ("/usr/lib/jvm", "jvm"),
            ("/root", "root"),
            ("/home", "home"),
            ("/tmp", "tmp"),
            ("/run", "run"),
        ] {
            if inside == mount
                || inside
                    .strip_prefix(mount)
                    .is_some_and(|r| r.starts_with('/'))
            {
                let rest = &inside[mount.len()..];
                return Some(fs.join(sub).join(rest.trim_start_matches('/')));
            }
        }
        if inside == "/etc" || inside.starts_with("/etc/") {
            return Some(
                self.etc_upper()
                    .join(inside["/etc".len()..].trim_start_matches('/')),
            );
        }
        None
    }

    /// [`HostPaths::private_path`] for paths the lab itself keeps in private dirs.
    pub fn private(&self, inside: &str) -> PathBuf {
        self.private_path(inside)
            .unwrap_or_else(|| panic!("{inside} is not in a private dir of a lab host"))
    }
}

/// The non-root login user, the same on every host.
#[derive(Debug, Clone)]
pub(crate) struct DeployUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// crypt(3) hash for /etc/shadow when password login is on; else no password (`*`).
    pub password_hash: Option<String>,
}

/// Picks the deploy user's ids: the controller's own entry if it has one, else a free id.
pub(crate) fn deploy_user(name: &str) -> Result<DeployUser> {
    let passwd = read("/etc/passwd")?;
    if let Some(fields) = passwd_entry(&passwd, name) {
        return Ok(DeployUser {
            name: name.to_string(),
            uid: fields.0,
            gid: fields.1,
            password_hash: None,
        });
    }
    let group = read("/etc/group")?;
    let used = |text: &str, id: u32| {
        text.lines()
            .any(|l| l.split(':').nth(2) == Some(&id.to_string()))
    };
    let id = (1500..60000)
        .find(|&id| !used(&passwd, id) && !used(&group, id))
        .expect("a free id below 60000");
    Ok(DeployUser {
        name: name.to_string(),
        uid: id,
        gid: id,
        password_hash: None,
    })
}

/// (uid, gid) of `name` in passwd text.
pub(crate) fn passwd_entry(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// Writes everything a host needs before it boots: private dirs, /etc overrides
/// (hosts, hostname, sshd_config, users, sudoers, MariaDB config), authorized keys, init,
/// and on an app host the spec's stand-in JDK.
pub(crate) fn prepare(
    paths: &HostPaths,
    host: &Host,
    all: &[Host],
    spec: &LabSpec,
    lab_pubkey: &str,
    user: &DeployUser,
) -> Result<()> {
    let fs_dir = paths.fs();
    for sub in ["opt", "jvm", "home", "varlog", "run/sshd"] {
        mkdir(&fs_dir.join(sub), 0o755)?;
    }
    if let Some(jdk) = spec.jdk.filter(|_| !host.is_db) {
        apim_standin::jdk::install_jdk_tree(&fs_dir.join("jvm"), jdk).map_err(LabError::Jdk)?;
    }
    mkdir(&fs_dir.join("root"), 0o700)?;
    mkdir(&fs_dir.join("tmp"), 0o1777)?;
    mkdir(&fs_dir.join("vartmp"), 0o1777)?;
    mkdir(&paths.dir.join("etc.work"), 0o755)?;
    mkdir(&paths.dir.join("log"), 0o755)?;
    let etc = paths.etc_upper();
    mkdir(&etc.join("ssh"), 0o755)?;
    mkdir(&etc.join("sudoers.d"), 0o755)?;

    write(&etc.join("hosts"), &hosts_file(host, all, spec), 0o644)?;
    write(&etc.join("hostname"), &format!("{}\n", host.name), 0o644)?;
    write(&etc.join("ssh/sshd_config"), &sshd_config(spec), 0o644)?;
    write_users(&etc, user)?;
    write(
        &etc.join(format!("sudoers.d/apimlab-{}", user.name)),
        &format!("{} ALL=(ALL:ALL) NOPASSWD: ALL\n", user.name),
        0o440,
    )?;

    // Private /root/.ssh keeps sshd's StrictModes on (a key under /tmp would fail it).
    let authorized = format!("{lab_pubkey}\n");
    mkdir(&fs_dir.join("root/.ssh"), 0o700)?;
    write(
        &fs_dir.join("root/.ssh/authorized_keys"),
        &authorized,
        0o600,
    )?;
    let home = fs_dir.join("home").join(&user.name);
    mkdir(&home.join(".ssh"), 0o700)?;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).map_err(LabError::io(&home))?;
    write(&home.join(".ssh/authorized_keys"), &authorized, 0o600)?;
    for path in [
        home.clone(),
        home.join(".ssh"),
        home.join(".ssh/authorized_keys"),
    ] {
        chown(&path, Some(user.uid), Some(user.gid)).map_err(LabError::io(&path))?;
    }

    // An empty /var/log makes sshd log "lastlog_openseek: Couldn't stat" on tty logins.
    for file in ["varlog/lastlog", "varlog/wtmp", "varlog/btmp", "run/utmp"] {
        write(&fs_dir.join(file), "", 0o664)?;
    }
    write(&fs_dir.join("run/apimlab-init.py"), INIT_PY, 0o755)?;
    if host.is_db {
        prepare_db_files(paths)?;
    }
    Ok(())
}

fn prepare_db_files(paths: &HostPaths) -> Result<()> {
    let passwd = read("/etc/passwd")?;
    let (uid, gid) = passwd_entry(&passwd, "mysql").ok_or_else(|| LabError::State {
        path: "/etc/passwd".into(),
        problem: "no `mysql` user: is mariadb-server installed (scripts/install-deps.sh)?".into(),
    })?;
    let fs_dir = paths.fs();
    for sub in ["run/mysqld", "varlog/mysql"] {
        let dir = fs_dir.join(sub);
        mkdir(&dir, 0o755)?;
        chown(&dir, Some(uid), Some(gid)).map_err(LabError::io(&dir))?;
    }
    let conf = paths.etc_upper().join("mysql/mariadb.conf.d");
    mkdir(&conf, 0o755)?;
    write(&conf.join("99-apimlab.cnf"), MARIADB_CNF, 0o644)
}

// A small redo log: the lab's databases are tiny, and each `up` copies and each `down`
// deletes the datadir. (A smaller ibdata1 backfires: it autoextends by 64M at once.)
pub(crate) const MARIADB_CNF: &str = "# apim-lab: the db host's MariaDB (private datadir, reachable from the lab hosts)\n\
[mysqld]\n\
bind-address = 0.0.0.0\n\
port = 3306\n\
datadir = /var/lib/mysql\n\
socket = /run/mysqld/mysqld.sock\n\
pid-file = /run/mysqld/mysqld.pid\n\
skip-name-resolve\n\
performance_schema = OFF\n\
innodb_buffer_pool_size = 64M\n\
innodb_log_file_size = 4M\n";

/// /etc/hosts of a host: localhost plus every lab name (stands in for DNS).
fn hosts_file(host: &Host, all: &[Host], spec: &LabSpec) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    text.push_str(&format!(
        "# apim-lab {} (this host: {})\n",
        spec.prefix, host.name
    ));
    for h in all {
        text.push_str(&format!("{}\t{}\n", h.address, h.name));
    }
    text.push_str(&format!("{}\tcontroller\n", spec.controller_address()));
    text
}

fn sshd_config(spec: &LabSpec) -> String {
    let host_keys: String = spec
        .host_key_types
        .iter()
        .map(|k| format!("HostKey /etc/ssh/ssh_host_{}_key\n", k.as_str()))
        .collect();
    // MaxStartups/MaxSessions: parallel deploys must not hit the default 10:30:100 drop.
    // sshd 9.2 has no PerSourcePenalties; on >= 9.8 it would need `PerSourcePenalties no`.
    "# apim-lab host sshd\n\
     Port 22\n\
     ListenAddress 0.0.0.0\n"
        .to_string()
        + &host_keys
        + "\
     PidFile /run/sshd.pid\n\
     PermitRootLogin prohibit-password\n\
     AuthorizedKeysFile .ssh/authorized_keys\n\
     PasswordAuthentication no\n\
     KbdInteractiveAuthentication no\n\
     UsePAM no\n\
     UseDNS no\n\
     PrintMotd no\n\
     PrintLastLog no\n\
     MaxStartups 256\n\
     MaxSessions 64\n\
     Subsystem sftp /usr/lib/openssh/sftp-server\n"
        + &password_login(spec)
}

/// A `Match` block (it must come last) that lets only the deploy user use a password.
fn password_login(spec: &LabSpec) -> String {
    if spec.password_login {
        format!(
            "Match User {}\n  PasswordAuthentication yes\n",
            spec.deploy_user
        )
    } else {
        String::new()
    }
}

/// Copies passwd/group/shadow/gshadow into the upper dir with the deploy user added (and
/// its password hash set in shadow when it has one).
fn write_users(etc: &Path, user: &DeployUser) -> Result<()> {
    let n = &user.name;
    // `*`: no password, but not locked (`!` would make sshd refuse key logins without PAM).
    let hash = user.password_hash.as_deref().unwrap_or("*");
    let entries = [
        (
            "passwd",
            format!(
                "{n}:x:{}:{}:apim lab deploy user:/home/{n}:/bin/bash",
                user.uid, user.gid
            ),
        ),
        ("group", format!("{n}:x:{}:", user.gid)),
        ("shadow", format!("{n}:{hash}:20000:0:99999:7:::")),
        ("gshadow", format!("{n}:!::")),
    ];
    for (file, line) in entries {
        let real = Path::new("/etc").join(file);
        let Ok(text) = fs::read_to_string(&real) else {
            continue;
        };
        let text = with_entry(
            &text,
            n,
            &line,
            file == "shadow" && user.password_hash.is_some(),
        );
        let meta = fs::metadata(&real).map_err(LabError::io(&real))?;
        let dest = etc.join(file);
        write(&dest, &text, meta.permissions().mode() & 0o7777)?;
        use std::os::unix::fs::MetadataExt;
        chown(&dest, Some(meta.uid()), Some(meta.gid())).map_err(LabError::io(&dest))?;
    }
    Ok(())
}

/// `text` with `line` for user `name` appended; an existing entry is kept, or replaced
/// when `replace` (the controller's own `deploy` user getting a lab password).
fn with_entry(text: &str, name: &str, line: &str, replace: bool) -> String {
    let is_entry = |l: &str| l.split(':').next() == Some(name);
    let mut out: Vec<&str> = text.lines().filter(|l| !(replace && is_entry(l))).collect();
    if !out.iter().any(|l| is_entry(l)) {
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// The crypt(3) SHA-512 hash of `password` (`openssl passwd -6`; the password goes on stdin).
pub(crate) fn password_hash(password: &str) -> Result<String> {
    let out = crate::run::run_with_input(
        command("openssl").args(["passwd", "-6", "-stdin"]),
        Some(format!("{password}\n").as_bytes()),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Starts the host: namespaces, mounts, init. Returns the `unshare` anchor process, which
/// stays in the controller's pid namespace as the parent of the host's init.
pub(crate) fn boot(spec: &LabSpec, paths: &HostPaths, host: &Host) -> Result<Child> {
    for kind in ["mnt", "uts", "pid"] {
        let handle = paths.handle(kind);
        File::create(&handle).map_err(LabError::io(&handle))?;
    }
    let log = append(&paths.log("init.log"))?;
    let mut cmd = command("setsid");
    cmd.arg("nsenter")
        .arg(format!("--net={}", netns_path(spec, &host.name)))
        .arg("--")
        .arg("unshare")
        .arg(format!("--mount={}", paths.handle("mnt").display()))
        .arg(format!("--uts={}", paths.handle("uts").display()))
        .arg(format!("--pid={}", paths.handle("pid").display()))
        .args([
            "--fork",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-euc",
            BOOT_SH,
            "sh",
        ])
        .arg(&spec.state_dir)
        .arg(&paths.dir)
        .arg(&host.name)
        .arg(host.address.to_string())
        .arg(&spec.prefix)
        .arg(if host.is_db { "1" } else { "0" })
        .stdout(
            log.try_clone()
                .map_err(LabError::io(paths.log("init.log")))?,
        )
        .stderr(log);
    let child = cmd.spawn().map_err(|source| LabError::Spawn {
        program: describe(&cmd),
        source,
    })?;
    fs::write(paths.anchor_file(), child.id().to_string())
        .map_err(LabError::io(paths.anchor_file()))?;
    Ok(child)
}

/// Waits until the boot script has finished mounting (it touches /run/apimlab-ready).
pub(crate) fn wait_booted(paths: &HostPaths, anchor: &mut Child, timeout: Duration) -> Result<()> {
    let ready = paths.private("/run/apimlab-ready");
    let start = Instant::now();
    loop {
        if ready.exists() {
            return Ok(());
        }
        if let Ok(Some(status)) = anchor.try_wait() {
            return Err(LabError::Host {
                host: paths.name.clone(),
                problem: format!("boot script exited ({status})"),
                log: paths.log("init.log"),
            });
        }
        if start.elapsed() > timeout {
            return Err(LabError::Host {
                host: paths.name.clone(),
                problem: format!("not booted after {} s", timeout.as_secs()),
                log: paths.log("init.log"),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A command that runs `argv` inside the host (all its namespaces, cwd `/`), no SSH involved.
pub(crate) fn enter(spec: &LabSpec, paths: &HostPaths, argv: &[&str]) -> Command {
    let mut cmd = command("nsenter");
    cmd.arg(format!("--mount={}", paths.handle("mnt").display()))
        .arg(format!("--uts={}", paths.handle("uts").display()))
        .arg(format!("--pid={}", paths.handle("pid").display()))
        .arg(format!("--net={}", netns_path(spec, &paths.name)))
        .arg("--wd=/")
        .arg("--")
        .args(argv)
        .env("PATH", SYSTEM_PATH);
    cmd
}

/// Starts a daemon in the host: `setsid -f` forks it off, so it is re-parented to the host's
/// init and holds none of our pipes (output goes to `<host>/log/<log>`).
pub(crate) fn start_daemon(
    spec: &LabSpec,
    paths: &HostPaths,
    argv: &[&str],
    log: &str,
) -> Result<()> {
    let log_path = paths.log(log);
    let file = append(&log_path)?;
    let mut full = vec!["setsid", "-f"];
    full.extend_from_slice(argv);
    let mut cmd = enter(spec, paths, &full);
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().map_err(LabError::io(&log_path))?)
        .stderr(file);
    let status = cmd.status().map_err(|source| LabError::Spawn {
        program: describe(&cmd),
        source,
    })?;
    if !status.success() {
        return Err(LabError::Host {
            host: paths.name.clone(),
            problem: format!("`{}` failed to start ({status})", argv.join(" ")),
            log: log_path,
        });
    }
    Ok(())
}

/// Starts the host's sshd in the foreground mode (-D) under setsid, logging to sshd.log.
pub(crate) fn start_sshd(spec: &LabSpec, paths: &HostPaths) -> Result<()> {
    // A stale pid file would make the liveness check report the dead sshd.
    let _ = fs::remove_file(paths.private("/run/sshd.pid"));
    start_daemon(
        spec,
        paths,
        &["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"],
        "sshd.log",
    )
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).map_err(LabError::io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(LabError::io(path))
}

pub(crate) fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(LabError::io(parent))?;
    }
    // Created owner-only, so a secret is never briefly readable by others; then the exact mode.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(LabError::io(path))?;
    file.write_all(text.as_bytes())
        .map_err(LabError::io(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(LabError::io(path))
}

fn append(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(LabError::io(parent))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(LabError::io(path))
}

pub(crate) fn read(path: &str) -> Result<String> {
    fs::read_to_string(path).map_err(LabError::io(path))
}
