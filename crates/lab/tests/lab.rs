//! End-to-end tests of the lab: real namespaces, sshd and MariaDB (root; APIM_LAB_TESTS=1).
//! They check the hosts themselves (over SSH with the OpenSSH client, or inside the host),
//! never only what the lab's API reports.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use apim_lab::testing::{TestLab, lab_tests_enabled, lease, test_spec};
use apim_lab::{JVM_DIR, JdkVersion, KillScope, Lab, LabSpec};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Runs `script` on `host` over SSH as `user`; panics if ssh itself does not return in 20 s.
fn ssh_as(lab: &Lab, host: &str, user: &str, timeout: u64, script: &str) -> Output {
    let mut cmd = lab.ssh_command(host, user, timeout).unwrap();
    cmd.arg(script).stdin(Stdio::null());
    let output = run_bounded(cmd, Duration::from_secs(20));
    output.unwrap_or_else(|| panic!("ssh {host} `{script}` did not return within 20 s"))
}

fn ssh(lab: &Lab, host: &str, script: &str) -> Output {
    ssh_as(lab, host, "root", 5, script)
}

fn ssh_ok(lab: &Lab, host: &str, script: &str) -> String {
    let out = ssh(lab, host, script);
    assert!(
        out.status.success(),
        "ssh {host} `{script}`: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Like `Command::output`, but gives up (and kills the child) after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Option<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}

fn exec_ok(lab: &Lab, host: &str, script: &str) -> String {
    let out = lab.exec(host, &["sh", "-c", script]).unwrap();
    assert!(
        out.status.success(),
        "exec {host} `{script}`: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn apps_only(hosts: usize) -> impl FnOnce(&mut LabSpec) {
    move |spec| {
        spec.app_hosts = hosts;
        spec.with_db = false;
    }
}

#[test]
fn up_gives_each_host_its_own_name_and_address() {
    // should: boot every planned host with its own hostname and eth0 address, reachable over SSH
    if !lab_tests_enabled("up_gives_each_host_its_own_name_and_address") {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
    for host in lab.hosts() {
        let out = ssh_ok(&lab, &host.name, "hostname; ip -4 -o addr show dev eth0");
        assert!(out.starts_with(&host.name), "{out}");
        assert!(out.contains(&format!("inet {}/24", host.address)), "{out}");
    }
}

#[test]
fn ssh_refuses_a_client_that_does_not_know_the_host_key() {
    // should: make clients check host keys: an empty known_hosts is rejected
    if !lab_tests_enabled("ssh_refuses_a_client_that_does_not_know_the_host_key") {
        return;
    }
    let lab = TestLab::up(apps_only(1)).unwrap();
    let empty = lab.state_dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let mut cmd = lab.ssh_command("app1", "root", 5).unwrap();
    cmd.arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.display()));
    // The first -o for an option wins in OpenSSH, so put ours before the lab's.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut strict = Command::new("ssh");
    strict
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", empty.display()))
        .args(args)
        .arg("true");
    let out = run_bounded(strict, Duration::from_secs(20)).unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Host key verification failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn deploy_user_logs_in_with_the_lab_key_and_has_passwordless_sudo() {
    // should: let the non-root deploy user log in by key and become root with sudo -n
    if !lab_tests_enabled("deploy_user_logs_in_with_the_lab_key_and_has_passwordless_sudo") {
        return;
    }
    let lab = TestLab::up(apps_only(1)).unwrap();
    let out = ssh_as(&lab, "app1", lab.deploy_user(), 5, "id -un; sudo -n id -u");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n0", lab.deploy_user()));
}

#[test]
fn password_login_admits_the_deploy_user_by_password_and_never_root() {
    // should: with password_login, accept the deploy user's generated password and still refuse root's
    if !lab_tests_enabled("password_login_admits_the_deploy_user_by_password_and_never_root") {
        return;
    }
    let lab = TestLab::up(|spec| {
        spec.app_hosts = 1;
        spec.with_db = false;
        spec.password_login = true;
    })
    .unwrap();
    let password_file = lab
        .deploy_password_file()
        .expect("password login was asked for");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // OpenSSH reads the password from an askpass program (never from its arguments).
    let askpass = lab.state_dir().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\ncat '{}'\n", password_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let by_password = |user: &str| {
        let address = lab.host("app1").unwrap().address;
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=no",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args([
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            lab.known_hosts_path().display()
        ))
        .arg(format!("{user}@{address}"))
        .arg("id -un")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null());
        run_bounded(cmd, Duration::from_secs(20)).expect("ssh returned")
    };
    let deploy = by_password(lab.deploy_user());
    assert!(deploy.status.success(), "{}", text(&deploy.stderr));
    assert_eq!(text(&deploy.stdout), lab.deploy_user());
    let root = by_password("root");
    assert_eq!(root.status.code(), Some(255));
    assert!(
        text(&root.stderr).contains("Permission denied"),
        "{}",
        text(&root.stderr)
    );
}

#[test]
fn files_in_opt_and_etc_hosts_edits_stay_on_their_host() {
    // should: keep /opt and /etc private per host, with rename-based edits (sed -i) working
    if !lab_tests_enabled("files_in_opt_and_etc_hosts_edits_stay_on_their_host") {
        return;
    }
    let lab = TestLab::up(apps_only(2)).unwrap();
    ssh_ok(
        &lab,
        "app1",
        "echo only-app1 > /opt/marker; sed -i '$a 127.0.0.9 only-app1.example' /etc/hosts",
    );
    assert_eq!(exec_ok(&lab, "app1", "cat /opt/marker"), "only-app1");
    assert!(exec_ok(&lab, "app1", "cat /etc/hosts").contains("only-app1.example"));
    assert_eq!(exec_ok(&lab, "app2", "ls -A /opt"), "");
    assert!(!exec_ok(&lab, "app2", "cat /etc/hosts").contains("only-app1.example"));
    assert!(!Path::new("/opt/marker").exists());
    assert!(
        !std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .contains("only-app1.example")
    );
}

#[test]
fn each_host_sees_only_its_own_jdks_and_no_java_home() {
    // should: give app hosts the spec's stand-in JDK under their own /usr/lib/jvm, the db
    // host an empty one, never the controller's JDKs, and no JAVA_HOME in SSH sessions
    if !lab_tests_enabled("each_host_sees_only_its_own_jdks_and_no_java_home") {
        return;
    }
    let controller_jdks: Vec<String> = std::fs::read_dir(JVM_DIR)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
    assert_eq!(lab.spec().jdk, Some(JdkVersion::V1_7), "the default JDK");
    let java_home = lab.java_home("app1").unwrap().expect("app1 has a JDK");
    assert_eq!(java_home, "/usr/lib/jvm/jdk1.7.0_80");
    assert_eq!(lab.java_home("db").unwrap(), None);

    for app in ["app1", "app2"] {
        assert_eq!(exec_ok(&lab, app, "ls -A /usr/lib/jvm"), "jdk1.7.0_80");
        let out = ssh_ok(&lab, app, &format!("{java_home}/bin/java -version 2>&1"));
        assert!(out.starts_with("java version \"1.7.0_80\""), "{out}");
    }
    assert_eq!(exec_ok(&lab, "db", "ls -A /usr/lib/jvm"), "");
    for name in &controller_jdks {
        assert!(
            !exec_ok(&lab, "app1", "ls -A /usr/lib/jvm").contains(name.as_str()),
            "app1 sees the controller's {name}"
        );
    }

    // A non-interactive login has no JAVA_HOME and no java on its PATH, as on a fresh host.
    let probe = "echo \"${JAVA_HOME-unset}\"; command -v java || echo no-java";
    for user in ["root", lab.deploy_user()] {
        let out = ssh_as(&lab, "app1", user, 5, probe);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "unset\nno-java", "as {user}");
    }

    // A JDK installed on one running host shows there only, and goes again.
    let home17 = lab.install_jdk("app2", JdkVersion::V17).unwrap();
    assert_eq!(home17, "/usr/lib/jvm/jdk-17.0.2");
    let out = ssh_ok(&lab, "app2", &format!("{home17}/bin/java -version 2>&1"));
    assert!(out.starts_with("openjdk version \"17.0.2\""), "{out}");
    assert_eq!(exec_ok(&lab, "app1", "ls -A /usr/lib/jvm"), "jdk1.7.0_80");
    lab.remove_jdk("app2", JdkVersion::V17).unwrap();
    lab.remove_jdk("app2", JdkVersion::V17).unwrap();
    assert_eq!(exec_ok(&lab, "app2", "ls -A /usr/lib/jvm"), "jdk1.7.0_80");
    lab.remove_jdk("app1", JdkVersion::V1_7).unwrap();
    assert_eq!(exec_ok(&lab, "app1", "ls -A /usr/lib/jvm"), "");

    // The controller's own JDK directory is untouched.
    lab.down().unwrap();
    let after: Vec<String> = std::fs::read_dir(JVM_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let (mut before, mut after) = (controller_jdks, after);
    before.sort();
    after.sort();
    assert_eq!(before, after);
}

#[test]
fn jdk_none_leaves_every_jvm_dir_empty() {
    // should: with `jdk: None`, give no host a JDK (still hiding the controller's)
    if !lab_tests_enabled("jdk_none_leaves_every_jvm_dir_empty") {
        return;
    }
    let lab = TestLab::up(|spec| {
        spec.app_hosts = 1;
        spec.with_db = false;
        spec.jdk = None;
    })
    .unwrap();
    assert_eq!(lab.java_home("app1").unwrap(), None);
    assert_eq!(exec_ok(&lab, "app1", "ls -A /usr/lib/jvm"), "");
}

#[test]
fn a_process_on_one_host_is_invisible_to_pkill_on_another() {
    // should: give each host its own pid namespace, so pkill on app2 cannot touch app1's process
    if !lab_tests_enabled("a_process_on_one_host_is_invisible_to_pkill_on_another") {
        return;
    }
    let lab = TestLab::up(apps_only(2)).unwrap();
    ssh_ok(
        &lab,
        "app1",
        "nohup sleep 4242 >/dev/null 2>&1 </dev/null &",
    );
    // The bracket keeps pgrep/pkill from matching the remote shell's own command line.
    let pid = ssh_ok(&lab, "app1", "pgrep -f 'sleep 424[2]'");
    assert!(!pid.is_empty());
    let on_app2 = ssh(&lab, "app2", "pkill -f 'sleep 424[2]'");
    assert_eq!(
        on_app2.status.code(),
        Some(1),
        "pkill on app2 matched something"
    );
    assert_eq!(ssh_ok(&lab, "app1", "pgrep -f 'sleep 424[2]'"), pid);
}

/// GET http://addr/path, returning the body; None while nothing answers.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split("\r\n\r\n").nth(1).map(str::to_string)
}

#[test]
fn a_nohup_daemon_started_over_ssh_survives_the_session_and_stays_in_its_host() {
    // should: keep a nohup'd server running after its SSH session ends, parented by the host's init
    if !lab_tests_enabled(
        "a_nohup_daemon_started_over_ssh_survives_the_session_and_stays_in_its_host",
    ) {
        return;
    }
    let lab = TestLab::up(apps_only(2)).unwrap();
    ssh_ok(
        &lab,
        "app1",
        "echo served-by-app1 > /opt/x; cd /opt; \
         nohup python3 -m http.server 9443 --bind 0.0.0.0 >/tmp/http.log 2>&1 </dev/null &",
    );
    let addr = SocketAddr::from((lab.host("app1").unwrap().address, 9443));
    let start = Instant::now();
    let body = loop {
        if let Some(body) = http_get(addr, "/x") {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server on app1 never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body.trim(), "served-by-app1");
    // Its parent inside the host is pid 1, the host's init; it is in app1's namespaces.
    assert_eq!(
        ssh_ok(
            &lab,
            "app1",
            "ps -o ppid= -p \"$(pgrep -f 'http[.]server')\""
        )
        .trim(),
        "1"
    );
    // app2 has its own port space: nothing listens on its localhost:9443.
    let on_app2 = ssh(
        &lab,
        "app2",
        "curl -s -o /dev/null --max-time 2 http://localhost:9443/x",
    );
    assert_eq!(
        on_app2.status.code(),
        Some(7),
        "curl on app2 should fail to connect"
    );
}

#[test]
fn db_is_reachable_by_a_name_only_that_app_host_maps_and_sees_its_address() {
    // should: let app2 reach MariaDB by a name only its /etc/hosts maps, as apimadmin@<app2's address>
    if !lab_tests_enabled("db_is_reachable_by_a_name_only_that_app_host_maps_and_sees_its_address")
    {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
    let db = lab.db_admin().expect("lab has a db");
    let password = std::fs::read_to_string(&db.password_file).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&db.password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    ssh_ok(
        &lab,
        "app2",
        &format!(
            "echo '{} apimgtdb.mysql-wso2.com' >> /etc/hosts",
            db.address
        ),
    );
    // The password reaches app2 on stdin, into a 0600 client config: never in an argv.
    let mut put = lab.ssh_command("app2", "root", 5).unwrap();
    put.arg("umask 077; cat > /root/.apim-db.cnf")
        .stdin(Stdio::piped());
    let mut child = put.spawn().unwrap();
    write!(
        child.stdin.take().unwrap(),
        "[client]\nuser={}\npassword={password}\n",
        db.user
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    let query = "mariadb --defaults-extra-file=/root/.apim-db.cnf -h apimgtdb.mysql-wso2.com \
                 --connect-timeout=5 -N -e 'SELECT USER()'";
    let app2 = lab.host("app2").unwrap().address;
    assert_eq!(ssh_ok(&lab, "app2", query), format!("{}@{app2}", db.user));
    let on_app1 = ssh(&lab, "app1", "getent hosts apimgtdb.mysql-wso2.com");
    assert_eq!(
        on_app1.status.code(),
        Some(2),
        "the name must not resolve on app1"
    );
}

/// `ssh -o ConnectTimeout=2 app1 true`: (exit code, stderr).
fn probe(lab: &Lab, host: &str) -> (Option<i32>, String) {
    let out = ssh_as(lab, host, "root", 2, "true");
    (out.status.code(), text(&out.stderr))
}

#[test]
fn freeze_makes_ssh_time_out_in_the_banner_exchange_until_thaw() {
    // should: make a frozen host accept TCP but never answer, and work again after thaw
    if !lab_tests_enabled("freeze_makes_ssh_time_out_in_the_banner_exchange_until_thaw") {
        return;
    }
    let lab = TestLab::up(apps_only(1)).unwrap();
    lab.freeze("app1").unwrap();
    let (code, stderr) = probe(&lab, "app1");
    assert_eq!(code, Some(255));
    assert!(
        stderr.contains("Connection timed out during banner exchange"),
        "{stderr}"
    );
    assert!(lab.status().unwrap()[0].frozen);
    lab.thaw("app1").unwrap();
    assert_eq!(probe(&lab, "app1"), (Some(0), String::new()));
}

#[test]
fn kill_makes_ssh_refused_until_revive() {
    // should: refuse connections once sshd is killed (daemons live on), and accept them after revive
    if !lab_tests_enabled("kill_makes_ssh_refused_until_revive") {
        return;
    }
    let lab = TestLab::up(apps_only(1)).unwrap();
    ssh_ok(
        &lab,
        "app1",
        "nohup sleep 4343 >/dev/null 2>&1 </dev/null &",
    );
    lab.kill("app1", KillScope::Sshd).unwrap();
    let (code, stderr) = probe(&lab, "app1");
    assert_eq!(code, Some(255));
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        !exec_ok(&lab, "app1", "pgrep -f 'sleep 434[3]'").is_empty(),
        "the nohup'd daemon died"
    );
    lab.revive("app1").unwrap();
    assert_eq!(probe(&lab, "app1"), (Some(0), String::new()));

    lab.kill("app1", KillScope::All).unwrap();
    assert!(probe(&lab, "app1").1.contains("Connection refused"));
    let left = lab.exec("app1", &["pgrep", "-f", "sleep 434[3]"]).unwrap();
    assert_eq!(
        left.status.code(),
        Some(1),
        "kill --all left the daemon running"
    );
    lab.revive("app1").unwrap();
    assert_eq!(probe(&lab, "app1"), (Some(0), String::new()));
}

#[test]
fn kill_and_revive_the_db_host_restarts_mariadb() {
    // should: stop MariaDB with kill --all on the db host and bring it back with revive
    if !lab_tests_enabled("kill_and_revive_the_db_host_restarts_mariadb") {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 1).unwrap();
    let db = lab.db_admin().unwrap();
    let port = SocketAddr::from((db.address, db.port));
    lab.kill("db", KillScope::All).unwrap();
    assert!(TcpStream::connect_timeout(&port, Duration::from_secs(2)).is_err());
    lab.revive("db").unwrap();
    assert_eq!(exec_ok(&lab, "db", "mariadb -N -e 'SELECT 1'"), "1");
    assert!(TcpStream::connect_timeout(&port, Duration::from_secs(2)).is_ok());
}

#[test]
fn cut_makes_ssh_time_out_and_blocks_the_hosts_own_traffic_until_heal() {
    // should: drop a cut host's traffic both ways (ssh to it times out, it cannot reach the db)
    if !lab_tests_enabled("cut_makes_ssh_time_out_and_blocks_the_hosts_own_traffic_until_heal") {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 1).unwrap();
    let db = lab.db_admin().unwrap();
    let reach_db = format!("timeout 3 bash -c '</dev/tcp/{}/{}'", db.address, db.port);
    exec_ok(&lab, "app1", &reach_db);
    lab.cut("app1").unwrap();
    let (code, stderr) = probe(&lab, "app1");
    assert_eq!(code, Some(255));
    assert!(stderr.contains("Connection timed out"), "{stderr}");
    assert!(!stderr.contains("banner"), "{stderr}");
    assert!(
        !lab.exec("app1", &["sh", "-c", &reach_db])
            .unwrap()
            .status
            .success()
    );
    lab.heal("app1").unwrap();
    assert_eq!(probe(&lab, "app1"), (Some(0), String::new()));
    exec_ok(&lab, "app1", &reach_db);
}

/// Everything of a lab visible on the controller.
fn leftovers(spec: &LabSpec, mntns: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let dir = spec.state_dir.to_string_lossy().to_string();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if line.contains(&dir) {
            found.push(format!("mount: {line}"));
        }
    }
    for name in std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let name = name.file_name().to_string_lossy().to_string();
        if name.starts_with(&spec.netns_prefix()) {
            found.push(format!("netns: {name}"));
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    for line in text(&links.stdout).lines() {
        if line.contains(&spec.veth_prefix()) {
            found.push(format!("link: {line}"));
        }
    }
    let routes = Command::new("ip")
        .args(["route", "show", "table", "local"])
        .output()
        .unwrap();
    for line in text(&routes.stdout).lines() {
        if line.starts_with(&format!("{}.", spec.prefix)) {
            found.push(format!("route: {line}"));
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let link = std::fs::read_link(entry.path().join("ns/mnt")).unwrap_or_default();
        if mntns.contains(&link.to_string_lossy().to_string()) {
            found.push(format!("process: {}", entry.file_name().to_string_lossy()));
        }
    }
    if spec.state_dir.exists() {
        found.push(format!("state dir: {}", spec.state_dir.display()));
    }
    found
}

fn mount_namespaces(lab: &Lab) -> Vec<String> {
    lab.hosts()
        .iter()
        .map(|h| {
            let pid = lab.pids(&h.name).unwrap()[0];
            std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
                .unwrap()
                .to_string_lossy()
                .to_string()
        })
        .collect()
}

#[test]
fn down_leaves_nothing_behind_even_with_a_frozen_and_a_cut_host() {
    // should: remove every mount, netns, link, route, nft rule, process and the state dir
    if !lab_tests_enabled("down_leaves_nothing_behind_even_with_a_frozen_and_a_cut_host") {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
    let spec = lab.spec().clone();
    let namespaces = mount_namespaces(&lab);
    ssh_ok(
        &lab,
        "app1",
        "nohup sleep 4444 >/dev/null 2>&1 </dev/null &",
    );
    lab.freeze("app1").unwrap();
    lab.cut("app2").unwrap();
    assert!(!leftovers(&spec, &namespaces).is_empty());
    lab.down().unwrap();
    assert_eq!(leftovers(&spec, &namespaces), Vec::<String>::new());
    // The addresses fall back to the controller's own lo: refused, not routed anywhere.
    let err = TcpStream::connect_timeout(
        &SocketAddr::from((spec.address(1), 22)),
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn up_twice_down_twice_and_up_after_down_all_work() {
    // should: let up replace a running lab in the same state dir, down be repeatable, and up follow down
    if !lab_tests_enabled("up_twice_down_twice_and_up_after_down_all_work") {
        return;
    }
    let lease = lease().unwrap();
    let mut spec = test_spec(&lease);
    spec.app_hosts = 1;
    spec.with_db = false;
    let first = Lab::up(&spec).unwrap();
    ssh_ok(&first, "app1", "touch /opt/from-the-first-lab");
    let second = Lab::up(&spec).unwrap();
    let namespaces = mount_namespaces(&second);
    assert_eq!(
        ssh_ok(&second, "app1", "ls -A /opt"),
        "",
        "the second up must start fresh hosts"
    );
    second.down().unwrap();
    second.down().unwrap();
    first.down().unwrap();
    let third = Lab::up(&spec).unwrap();
    assert_eq!(ssh_ok(&third, "app1", "hostname"), "app1");
    third.down().unwrap();
    assert_eq!(leftovers(&spec, &namespaces), Vec::<String>::new());
}

#[test]
fn two_labs_run_at_once_with_different_prefixes() {
    // should: run two labs side by side without sharing addresses, files or names
    if !lab_tests_enabled("two_labs_run_at_once_with_different_prefixes") {
        return;
    }
    let a = TestLab::up(apps_only(1)).unwrap();
    let b = TestLab::up(apps_only(1)).unwrap();
    assert_ne!(a.spec().prefix, b.spec().prefix);
    ssh_ok(&a, "app1", "echo lab-a > /opt/which");
    ssh_ok(&b, "app1", "echo lab-b > /opt/which");
    assert_eq!(ssh_ok(&a, "app1", "cat /opt/which"), "lab-a");
    assert_eq!(ssh_ok(&b, "app1", "cat /opt/which"), "lab-b");
    let b_spec = b.spec().clone();
    b.down().unwrap();
    assert_eq!(
        ssh_ok(&a, "app1", "hostname"),
        "app1",
        "lab a must survive lab b's down"
    );
    assert!(!b_spec.state_dir.exists());
}

#[test]
fn up_refuses_a_prefix_outside_loopback_and_a_foreign_state_dir() {
    // should: never build a lab on non-loopback addresses or delete a directory that is not a lab
    if !lab_tests_enabled("up_refuses_a_prefix_outside_loopback_and_a_foreign_state_dir") {
        return;
    }
    let err = Lab::up(&LabSpec::new("10.0.10", "/tmp/apimlab-never")).unwrap_err();
    assert!(err.to_string().contains("only 127.0.0.0/8"), "{err}");
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("precious"), "keep me").unwrap();
    let lease = lease().unwrap();
    let mut spec = test_spec(&lease);
    spec.state_dir = foreign.path().to_path_buf();
    let err = Lab::up(&spec).unwrap_err();
    assert!(err.to_string().contains("not a lab state dir"), "{err}");
    assert!(foreign.path().join("precious").exists());
}
