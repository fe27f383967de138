//! End-to-end: the stand-in server on real lab hosts (namespaces, MariaDB on the db
//! host), started and stopped through `bin/wso2server.sh` exactly as apim-deploy will.
//! Each test shows one group of behaviours; every failure must produce ERROR lines and
//! no "WSO2 Carbon started" line. Runs only with APIM_LAB_TESTS=1 (root).

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use apim_lab::testing::{TestLab, lab_tests_enabled};
use apim_lab::{JdkVersion, Lab};
use apim_standin::{
    DistOptions, EXIT_EARLY_FILE, JDBC_JAR_NAME, REFUSE_START_FILE, STARTED_MARKER, pidfile,
};

/// The app user's password: quotes and a backslash, to prove the defaults-file quoting.
const APP_PASSWORD: &str = "Wso2'app\"pw\\1";
const APP_USER: &str = "wso2";
const WAIT: Duration = Duration::from_secs(40);

// ------------------------------------------------------------------ helpers

/// One unpacked distribution on one lab host.
struct Node<'a> {
    lab: &'a Lab,
    host: String,
    /// CARBON_HOME as the host sees it.
    home: String,
    address: Ipv4Addr,
    /// The JAVA_HOME `script` runs with (the host's stand-in JDK); None: unset.
    java_home: Option<String>,
}

impl<'a> Node<'a> {
    /// Unpacks the stand-in zip into the host's `parent` (e.g. /opt) and, when asked,
    /// puts the JDBC jar into repository/components/lib as apim-deploy does.
    fn install(lab: &'a Lab, host: &str, parent: &str, dist: &Path, with_jar: bool) -> Node<'a> {
        let target = lab.host_path(host, parent).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        let zip = std::fs::File::open(dist.join(apim_standin::DIST_ZIP_NAME)).unwrap();
        zip::ZipArchive::new(zip).unwrap().extract(&target).unwrap();
        let node = Node {
            lab,
            host: host.to_string(),
            home: format!("{parent}/{}", apim_standin::TOP_DIR),
            address: lab.host(host).unwrap().address,
            java_home: lab.java_home(host).unwrap(),
        };
        if with_jar {
            std::fs::copy(
                dist.join(JDBC_JAR_NAME),
                node.file(&format!("repository/components/lib/{JDBC_JAR_NAME}")),
            )
            .unwrap();
        }
        node
    }

    /// A file of this node, as the controller sees it.
    fn file(&self, relative: &str) -> PathBuf {
        self.lab
            .host_path(&self.host, &format!("{}/{relative}", self.home))
            .unwrap()
    }

    /// Replaces the single occurrence of `from` in a config file.
    fn edit(&self, relative: &str, from: &str, to: &str) {
        let path = self.file(relative);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{relative}: {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// `bin/wso2server.sh ARGS` inside the host (env: extra VAR=value pairs first), with
    /// JAVA_HOME set to the node's `java_home` and nothing else Java-related inherited.
    fn script(&self, env: &[&str], args: &[&str]) -> Output {
        let script = format!("{}/bin/wso2server.sh", self.home);
        let java_home = self.java_home.as_ref().map(|j| format!("JAVA_HOME={j}"));
        let mut argv = vec!["env", "-u", "JAVA_HOME", "-u", "JAVACMD"];
        argv.extend(java_home.as_deref());
        argv.extend_from_slice(env);
        argv.push(&script);
        argv.extend_from_slice(args);
        self.lab.exec(&self.host, &argv).unwrap()
    }

    fn start(&self) {
        let out = self.script(&[], &["start"]);
        assert!(out.status.success(), "start: {out:?}");
    }

    fn stop(&self) {
        let out = self.script(&[], &["stop"]);
        assert!(out.status.success(), "stop: {out:?}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.file("repository/logs/wso2carbon.log")).unwrap_or_default()
    }

    /// Log lines written since `mark` (a previous `log().len()`).
    fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or_default().to_string()
    }

    fn wait_for_log(&self, mark: usize, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log_since(mark);
            if log.contains(needle) {
                return log;
            }
            assert!(
                start.elapsed() < WAIT,
                "{}: no {needle:?} in the log:\n{log}",
                self.host
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self) -> u32 {
        let bytes = std::fs::read(self.file("wso2carbon.pid")).unwrap();
        pidfile::parse(&bytes).expect("a pid in wso2carbon.pid")
    }

    /// Is `pid` (as the host sees it) a live process of this host?
    fn alive(&self, pid: u32) -> bool {
        let pid = pid.to_string();
        // kill -0 on a zombie succeeds; the host's init reaps quickly, so a few tries settle it.
        self.lab
            .exec(&self.host, &["kill", "-0", &pid])
            .unwrap()
            .status
            .success()
    }

    fn wait_until_gone(&self, pid: u32) {
        let start = Instant::now();
        while self.alive(pid) {
            assert!(
                start.elapsed() < WAIT,
                "{}: pid {pid} still alive",
                self.host
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn accepts(&self, port: u16) -> bool {
        let addr = SocketAddr::from((self.address, port));
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
    }

    /// Starts, waits for the first ERROR line, then waits past the start delay to make
    /// sure the server never reports itself started; returns the new log lines.
    fn start_expecting_failure(&self, needle: &str) -> String {
        let mark = self.log().len();
        self.start();
        self.wait_for_log(mark, needle);
        std::thread::sleep(Duration::from_secs(3));
        let log = self.log_since(mark);
        assert!(log.contains("] ERROR {"), "no ERROR line:\n{log}");
        assert!(
            !log.contains(STARTED_MARKER),
            "started despite {needle:?}:\n{log}"
        );
        assert!(
            !log.contains(APP_PASSWORD),
            "the password leaked into the log"
        );
        log
    }

    fn stop_and_wait(&self) {
        let pid = self.pid();
        self.stop();
        self.wait_until_gone(pid);
    }
}

fn write_test_dist() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let opts = DistOptions {
        start_delay_secs: 0.5,
        ..DistOptions::default()
    };
    apim_standin::write_dist(dir.path(), &opts).unwrap();
    dir
}

fn sql(lab: &Lab, database: Option<&str>, statements: &[u8]) {
    let mut argv = vec!["mariadb", "--batch"];
    if let Some(db) = database {
        argv.push(db);
    }
    let out = lab.exec_with_stdin("db", &argv, Some(statements)).unwrap();
    assert!(
        out.status.success(),
        "sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The three databases seeded from the distribution's own scripts, an empty one, and
/// the application user, on the lab's db host.
fn prepare_databases(lab: &Lab, dist: &Path) {
    let password = APP_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
    let setup = format!(
        "CREATE DATABASE apimgtdb CHARACTER SET latin1;\n\
         CREATE DATABASE userdb CHARACTER SET latin1;\n\
         CREATE DATABASE regdb CHARACTER SET latin1;\n\
         CREATE DATABASE emptydb CHARACTER SET latin1;\n\
         CREATE USER '{APP_USER}'@'%' IDENTIFIED BY '{password}';\n\
         GRANT ALL ON apimgtdb.* TO '{APP_USER}'@'%';\n\
         GRANT ALL ON userdb.* TO '{APP_USER}'@'%';\n\
         GRANT ALL ON regdb.* TO '{APP_USER}'@'%';\n\
         GRANT ALL ON emptydb.* TO '{APP_USER}'@'%';\n"
    );
    sql(lab, None, setup.as_bytes());
    let zip = std::fs::File::open(dist.join(apim_standin::DIST_ZIP_NAME)).unwrap();
    let mut archive = zip::ZipArchive::new(zip).unwrap();
    let mut script = |name: &str| {
        let mut text = Vec::new();
        archive
            .by_name(&format!("{}/{name}", apim_standin::TOP_DIR))
            .unwrap()
            .read_to_end(&mut text)
            .unwrap();
        text
    };
    let registry = script("dbscripts/mysql.sql");
    let apimgt = script("dbscripts/apimgt/mysql.sql");
    sql(lab, Some("apimgtdb"), &apimgt);
    sql(lab, Some("userdb"), &registry);
    sql(lab, Some("regdb"), &registry);
}

/// Maps the seed's database host names to the db host in `host`'s own /etc/hosts.
fn add_db_hostnames(lab: &Lab, host: &str) {
    let db = lab.host("db").unwrap().address;
    let line = format!("{db} apimgtdb.mysql-wso2.com userdb.mysql-wso2.com regdb.mysql-wso2.com\n");
    let out = lab
        .exec_with_stdin(host, &["tee", "-a", "/etc/hosts"], Some(line.as_bytes()))
        .unwrap();
    assert!(out.status.success());
}

fn mysql_datasource(name: &str, db_host: &str, database: &str, password: &str) -> String {
    format!(
        "        <datasource>\n\
         \x20           <name>{name}</name>\n\
         \x20           <jndiConfig>\n\
         \x20               <name>jdbc/{name}</name>\n\
         \x20           </jndiConfig>\n\
         \x20           <definition type=\"RDBMS\">\n\
         \x20               <configuration>\n\
         \x20                   <url>jdbc:mysql://{db_host}:3306/{database}?autoReconnect=true&amp;useSSL=false</url>\n\
         \x20                   <username>{APP_USER}</username>\n\
         \x20                   <password>{}</password>\n\
         \x20                   <driverClassName>com.mysql.jdbc.Driver</driverClassName>\n\
         \x20               </configuration>\n\
         \x20           </definition>\n\
         \x20       </datasource>\n",
        apim_xmlpatch::escape_markup(password)
    )
}

/// What the seed's database steps produce: WSO2AM_DB, WSO2UM_DB and WSO2REG_DB on MySQL,
/// user-mgt.xml and a govregistry dbConfig pointing at them.
struct DbConfig<'s> {
    am: (&'s str, &'s str, &'s str),
    um: (&'s str, &'s str, &'s str),
    reg: (&'s str, &'s str, &'s str),
    user_store_jndi: &'s str,
    /// The `instanceId` the two registry mounts name (the remoteInstance's id is "gov").
    mount_instance: &'s str,
}

const GOOD_DB: DbConfig<'static> = DbConfig {
    am: ("apimgtdb.mysql-wso2.com", "apimgtdb", APP_PASSWORD),
    um: ("userdb.mysql-wso2.com", "userdb", APP_PASSWORD),
    reg: ("regdb.mysql-wso2.com", "regdb", APP_PASSWORD),
    user_store_jndi: "jdbc/WSO2UM_DB",
    mount_instance: "gov",
};

fn configure_databases(node: &Node, db: &DbConfig) {
    let datasources = format!(
        "<datasources-configuration xmlns:svns=\"http://org.wso2.securevault/configuration\">\n\
         \x20   <providers>\n\
         \x20       <provider>org.wso2.carbon.ndatasource.rdbms.RDBMSDataSourceReader</provider>\n\
         \x20   </providers>\n\
         \x20   <datasources>\n\
         \x20       <datasource>\n\
         \x20           <name>WSO2_CARBON_DB</name>\n\
         \x20           <jndiConfig><name>jdbc/WSO2CarbonDB</name></jndiConfig>\n\
         \x20           <definition type=\"RDBMS\"><configuration>\n\
         \x20               <url>jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE</url>\n\
         \x20               <username>wso2carbon</username><password>wso2carbon</password>\n\
         \x20               <driverClassName>org.h2.Driver</driverClassName>\n\
         \x20           </configuration></definition>\n\
         \x20       </datasource>\n{}{}{}    </datasources>\n</datasources-configuration>\n",
        mysql_datasource("WSO2AM_DB", db.am.0, db.am.1, db.am.2),
        mysql_datasource("WSO2UM_DB", db.um.0, db.um.1, db.um.2),
        mysql_datasource("WSO2REG_DB", db.reg.0, db.reg.1, db.reg.2),
    );
    std::fs::write(
        node.file("repository/conf/datasources/master-datasources.xml"),
        datasources,
    )
    .unwrap();
    let user_mgt = node.file("repository/conf/user-mgt.xml");
    let text = std::fs::read_to_string(&user_mgt).unwrap();
    let text = text.replace(
        "<Property name=\"dataSource\">jdbc/WSO2CarbonDB</Property>",
        &format!(
            "<Property name=\"dataSource\">{}</Property>",
            db.user_store_jndi
        ),
    );
    std::fs::write(&user_mgt, text).unwrap();
    let registry = node.file("repository/conf/registry.xml");
    let text = std::fs::read_to_string(&registry).unwrap();
    if !text.contains("govregistry") {
        // The seed's shared governance registry: a dbConfig, a JDBC remoteInstance, two mounts.
        let mut gov = String::from(
            "    </dbConfig>\n\n    <dbConfig name=\"govregistry\">\n        \
             <dataSource>jdbc/WSO2REG_DB</dataSource>\n    </dbConfig>\n\n    \
             <remoteInstance url=\"https://localhost:9443/registry\">\n        \
             <id>gov</id>\n        <dbConfig>govregistry</dbConfig>\n        \
             <readOnly>false</readOnly>\n        <enableCache>true</enableCache>\n        \
             <registryRoot>/</registryRoot>\n    </remoteInstance>\n",
        );
        for path in ["/_system/config", "/_system/governance"] {
            gov.push_str(&format!(
                "\n    <mount path=\"{path}\" overwrite=\"true\">\n        \
                 <instanceId>{}</instanceId>\n        <targetPath>{path}</targetPath>\n    \
                 </mount>\n",
                db.mount_instance
            ));
        }
        let gov = gov.replace('\n', "\r\n");
        std::fs::write(&registry, text.replacen("    </dbConfig>\r\n", &gov, 1)).unwrap();
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn healthy_node_starts_stops_restarts_and_keeps_its_pid_file() {
    // should: start in the background, report started with the Mgt Console URL, answer on
    // its ports, stop gracefully after `stop` returned, leave the pid file, honour restart
    if !lab_tests_enabled("healthy_node_starts_stops_restarts_and_keeps_its_pid_file") {
        return;
    }
    let dist = write_test_dist();
    let lab = TestLab::up(|spec| spec.app_hosts = 1).unwrap();
    prepare_databases(&lab, dist.path());
    add_db_hostnames(&lab, "app1");
    let node = Node::install(&lab, "app1", "/opt", dist.path(), true);
    configure_databases(&node, &GOOD_DB);

    // `start` returns before the server is up (3 s start delay for this run).
    let mark = node.log().len();
    let out = node.script(&["STANDIN_START_DELAY=3"], &["start"]);
    assert!(out.status.success());
    assert!(
        !node.log_since(mark).contains(STARTED_MARKER),
        "start waited for the server"
    );
    let log = node.wait_for_log(mark, STARTED_MARKER);
    assert!(
        !log.contains("] ERROR {"),
        "errors in a healthy start:\n{log}"
    );
    assert!(
        !log.contains(APP_PASSWORD),
        "the password leaked into the log"
    );
    let console = format!("Mgt Console URL  : https://{}:9443/carbon/", node.address);
    let log = node.wait_for_log(mark, &console);
    assert!(log.contains("Started thrift key mgt service at port:10397"));
    assert!(
        log.lines().all(|l| l.starts_with("TID: [0] [AM] [")),
        "{log}"
    );

    // The pid file: the pid, a newline, NUL padding to 100 bytes.
    let bytes = std::fs::read(node.file("wso2carbon.pid")).unwrap();
    assert_eq!(bytes.len(), 100);
    let pid = node.pid();
    assert!(bytes.starts_with(format!("{pid}\n").as_bytes()));
    assert!(bytes[pid.to_string().len() + 1..].iter().all(|b| *b == 0));
    assert!(node.alive(pid));
    for port in [9443, 9763, 8280, 8243, 10397] {
        assert!(node.accepts(port), "port {port} closed on a started node");
    }

    // A second `start` sees the live pid and starts nothing.
    let out = node.script(&[], &["start"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Process is already running"));
    assert_eq!(node.pid(), pid);

    // `stop` returns at once; the server logs its shutdown, exits, leaves the pid file.
    let mark = node.log().len();
    node.stop();
    assert!(node.alive(pid), "stop waited for the process");
    node.wait_until_gone(pid);
    let log = node.log_since(mark);
    for line in [
        "Shutdown hook triggered....",
        "Shutdown complete",
        "Halting JVM",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
    assert!(
        node.file("wso2carbon.pid").exists(),
        "pid file removed on stop"
    );
    assert!(!node.accepts(9443));

    // `start` drops extra arguments: carbon.xml's offset 2 applies, -DportOffset=3 does not.
    node.edit(
        "repository/conf/carbon.xml",
        "<Offset>0</Offset>",
        "<Offset>2</Offset>",
    );
    let mark = node.log().len();
    let out = node.script(&[], &["start", "-DportOffset=3"]);
    assert!(out.status.success());
    let log = node.wait_for_log(mark, "Mgt Console URL");
    assert!(
        log.contains(&format!("https://{}:9445/carbon/", node.address)),
        "{log}"
    );
    assert!(node.accepts(9445) && node.accepts(8282) && !node.accepts(9443));

    // `restart` waits for the old process, then starts a new one.
    let old = node.pid();
    let mark = node.log().len();
    let out = node.script(&[], &["restart"]);
    assert!(out.status.success());
    assert!(
        !node.alive(old),
        "restart returned before the old server exited"
    );
    node.wait_for_log(mark, STARTED_MARKER);
    assert_ne!(node.pid(), old);
    node.stop_and_wait();

    // Any other word runs the server in the foreground, and there -DportOffset counts.
    let mark = node.log().len();
    let script = format!("{}/bin/wso2server.sh", node.home);
    let background = "exec \"$0\" \"$@\" </dev/null >/dev/null 2>&1 &";
    let java_home = format!("JAVA_HOME={}", node.java_home.as_ref().unwrap());
    let out = lab
        .exec(
            "app1",
            &[
                "env",
                &java_home,
                "sh",
                "-c",
                background,
                &script,
                "-DportOffset=1",
            ],
        )
        .unwrap();
    assert!(out.status.success());
    let log = node.wait_for_log(mark, "Mgt Console URL");
    assert!(
        log.contains(&format!("https://{}:9444/carbon/", node.address)),
        "{log}"
    );
    node.stop_and_wait();

    let out = node.script(&[], &["version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WSO2 API Manager v1.9.0") && text.contains("Carbon Framework v4.2.0"));
}

#[test]
fn each_database_fault_logs_errors_and_never_reports_started() {
    // should: refuse to start, with ERROR lines naming the cause, on a wrong password, a
    // host name that does not resolve, missing tables, an undefined JNDI name, no driver jar
    if !lab_tests_enabled("each_database_fault_logs_errors_and_never_reports_started") {
        return;
    }
    let dist = write_test_dist();
    let lab = TestLab::up(|spec| spec.app_hosts = 1).unwrap();
    prepare_databases(&lab, dist.path());
    add_db_hostnames(&lab, "app1");

    let faults: [(&str, DbConfig, &str); 5] = [
        (
            "wrong password",
            DbConfig {
                am: ("apimgtdb.mysql-wso2.com", "apimgtdb", "not-the-password"),
                ..GOOD_DB
            },
            "Access denied for user 'wso2'",
        ),
        (
            "unresolvable host",
            DbConfig {
                um: ("userdb.nowhere.mysql-wso2.com", "userdb", APP_PASSWORD),
                ..GOOD_DB
            },
            "java.net.UnknownHostException: userdb.nowhere.mysql-wso2.com",
        ),
        (
            "missing tables",
            DbConfig {
                reg: ("regdb.mysql-wso2.com", "emptydb", APP_PASSWORD),
                ..GOOD_DB
            },
            "Table 'emptydb.REG_RESOURCE' doesn't exist",
        ),
        (
            "undefined JNDI name",
            DbConfig {
                user_store_jndi: "jdbc/WSO2_UM_DB",
                ..GOOD_DB
            },
            "Name [jdbc/WSO2_UM_DB] is not bound in this Context",
        ),
        (
            "mount naming no remoteInstance",
            DbConfig {
                mount_instance: "governance",
                ..GOOD_DB
            },
            "mount '/_system/config' uses instanceId 'governance', which no remoteInstance has",
        ),
    ];
    for (fault, config, needle) in &faults {
        let node = Node::install(&lab, "app1", "/opt", dist.path(), true);
        configure_databases(&node, config);
        let log = node.start_expecting_failure(needle);
        assert!(
            node.alive(node.pid()),
            "{fault}: the server should hang, not exit"
        );
        assert!(
            !node.accepts(9443),
            "{fault}: 9443 open on a failed node:\n{log}"
        );
        node.stop_and_wait();
    }

    // No JDBC driver in repository/components/lib (a fresh copy, otherwise correct).
    let node = Node::install(&lab, "app1", "/opt/nodriver", dist.path(), false);
    configure_databases(&node, &GOOD_DB);
    node.start_expecting_failure("java.lang.ClassNotFoundException: com.mysql.jdbc.Driver");
    node.stop_and_wait();

    // The same node with the driver back starts: the faults above were the only cause.
    std::fs::copy(
        dist.path().join(JDBC_JAR_NAME),
        node.file(&format!("repository/components/lib/{JDBC_JAR_NAME}")),
    )
    .unwrap();
    let mark = node.log().len();
    node.start();
    node.wait_for_log(mark, STARTED_MARKER);
    node.stop_and_wait();

    // -Dsetup (through JAVA_OPTS: `start` drops arguments) creates missing tables once.
    let node = Node::install(&lab, "app1", "/opt/setup", dist.path(), true);
    configure_databases(
        &node,
        &DbConfig {
            reg: ("regdb.mysql-wso2.com", "emptydb", APP_PASSWORD),
            ..GOOD_DB
        },
    );
    let mark = node.log().len();
    let out = node.script(&["JAVA_OPTS=-Dsetup"], &["start"]);
    assert!(out.status.success());
    let log = node.wait_for_log(mark, STARTED_MARKER);
    assert!(log.contains("Creating the tables of emptydb"), "{log}");
    assert!(log.contains("APIManager database already exists"), "{log}");
    node.stop_and_wait();
}

#[test]
fn taken_port_unreachable_key_manager_and_refuse_switch_block_the_start() {
    // should: log an ERROR per taken port and hang unstarted; hang with an ERROR while the
    // Key Manager is down and start once it is up; stay unhealthy while the refuse switch is set
    if !lab_tests_enabled("taken_port_unreachable_key_manager_and_refuse_switch_block_the_start") {
        return;
    }
    let dist = write_test_dist();
    let lab = TestLab::up(|spec| {
        spec.app_hosts = 2;
        spec.with_db = false;
    })
    .unwrap();
    let km = Node::install(&lab, "app1", "/opt", dist.path(), false);
    let gw = Node::install(&lab, "app2", "/opt", dist.path(), false);

    // Gateway first (wrong order): its Key Manager does not answer.
    gw.edit(
        "repository/conf/api-manager.xml",
        "<EnableThriftServer>true</EnableThriftServer>",
        "<EnableThriftServer>false</EnableThriftServer>",
    );
    let validator = "<ServerURL>https://${carbon.local.ip}:${mgt.transport.https.port}${carbon.context}/services/</ServerURL> <!-- the Key Manager -->";
    gw.edit(
        "repository/conf/api-manager.xml",
        validator,
        &validator.replace(
            "${carbon.local.ip}:${mgt.transport.https.port}${carbon.context}",
            "app1:9443",
        ),
    );
    let log = gw.start_expecting_failure("Cannot reach the Key Manager");
    assert!(log.contains("https://app1:9443/services/"), "{log}");
    gw.stop_and_wait();

    // Key Manager up, then the Gateway (clustering on) starts.
    gw.edit(
        "repository/conf/axis2/axis2.xml",
        "                enable=\"false\">",
        "                enable=\"true\">",
    );
    let mark = km.log().len();
    km.start();
    km.wait_for_log(mark, STARTED_MARKER);
    let mark = gw.log().len();
    gw.start();
    let log = gw.wait_for_log(mark, STARTED_MARKER);
    assert!(!log.contains("Clustering has been disabled"), "{log}");
    // Thrift only where EnableThriftServer is true, Hazelcast only where clustering is on.
    assert!(km.accepts(10397) && !km.accepts(4000));
    assert!(gw.accepts(4000) && !gw.accepts(10397));

    // A second node on the Key Manager's host with the same offset: every taken port is
    // an ERROR, and the process stays up without ever starting, as Carbon does.
    let twin = Node::install(&lab, "app1", "/opt/twin", dist.path(), false);
    let log = twin.start_expecting_failure("java.net.BindException");
    for port in [8243, 8280, 9763, 9443, 10397] {
        assert!(
            log.contains(&format!(
                ":{port}: java.net.BindException: Address already in use"
            )),
            "{port}: {log}"
        );
    }
    assert!(twin.alive(twin.pid()), "the twin should linger, not exit");
    assert!(km.accepts(9443), "the first node lost its port");
    twin.stop_and_wait();
    assert!(
        km.accepts(9443),
        "stopping the twin closed the first node's port"
    );

    // The refuse switch keeps a restarted Gateway unhealthy until it is removed.
    gw.stop_and_wait();
    std::fs::write(gw.file(REFUSE_START_FILE), b"").unwrap();
    let log = gw.start_expecting_failure("Refusing to finish start-up");
    assert!(!gw.accepts(9443), "{log}");
    gw.stop_and_wait();
    std::fs::remove_file(gw.file(REFUSE_START_FILE)).unwrap();
    let mark = gw.log().len();
    gw.start();
    gw.wait_for_log(mark, STARTED_MARKER);
    gw.stop_and_wait();
    km.stop_and_wait();

    // As a non-root service user owning CARBON_HOME (the inventory's service_user).
    let user = lab.deploy_user().to_string();
    let node = Node::install(&lab, "app2", "/opt/asuser", dist.path(), false);
    let owner = format!("{user}:{user}");
    let chown = lab
        .exec("app2", &["chown", "-R", &owner, &node.home])
        .unwrap();
    assert!(chown.status.success(), "{chown:?}");
    let script = format!("{}/bin/wso2server.sh", node.home);
    let mark = node.log().len();
    // JAVA_HOME as a deployment passes it: on the command line (the login sets none).
    let java_home = format!("JAVA_HOME={}", node.java_home.as_ref().unwrap());
    let as_user = |command: &str| {
        lab.exec(
            "app2",
            &[
                "runuser", "-u", &user, "--", "env", &java_home, &script, command,
            ],
        )
        .unwrap()
    };
    let out = as_user("start");
    assert!(out.status.success(), "{out:?}");
    node.wait_for_log(mark, STARTED_MARKER);
    let pid = node.pid().to_string();
    let owner_of_pid = lab
        .exec("app2", &["ps", "-o", "user=", "-p", &pid])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&owner_of_pid.stdout).trim(), user);
    let out = as_user("stop");
    assert!(out.status.success(), "{out:?}");
    node.wait_until_gone(node.pid());
}

/// The stand-in server processes of a host (pids as the host sees them).
fn server_pids(lab: &Lab, host: &str) -> Vec<String> {
    let out = lab
        .exec(host, &["pgrep", "-f", "bin/standin-carbon.py"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A file of /proc/<pid> inside the host, NUL separators turned into newlines.
fn proc_file(lab: &Lab, host: &str, pid: u32, file: &str) -> String {
    let out = lab
        .exec(host, &["cat", &format!("/proc/{pid}/{file}")])
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\0', "\n")
}

/// Runs the script in the foreground, in the background of the host, with its stdout
/// and stderr going to `output` (a path inside the host).
fn foreground_in_background(node: &Node, java_home: &str, output: &str) {
    let script = format!("{}/bin/wso2server.sh", node.home);
    let java_home = format!("JAVA_HOME={java_home}");
    let background = "out=$1; shift; exec \"$0\" \"$@\" </dev/null >\"$out\" 2>&1 &";
    let out = node
        .lab
        .exec(
            &node.host,
            &["env", &java_home, "sh", "-c", background, &script, output],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_start_script_is_as_strict_about_java_as_the_real_one() {
    // should: refuse to start without a usable JAVA_HOME (also over a plain SSH login),
    // warn but start on 1.8, die at once on 17, start on 1.7 with JAVA_HOME in the
    // server's environment and -Dcarbon.home on its command line
    if !lab_tests_enabled("the_start_script_is_as_strict_about_java_as_the_real_one") {
        return;
    }
    let dist = write_test_dist();
    let lab = TestLab::up(|spec| {
        spec.app_hosts = 1;
        spec.with_db = false;
    })
    .unwrap();
    let jdk7 = lab.java_home("app1").unwrap().unwrap();
    assert_eq!(jdk7, "/usr/lib/jvm/jdk1.7.0_80");
    let mut node = Node::install(&lab, "app1", "/opt", dist.path(), false);
    let script = format!("{}/bin/wso2server.sh", node.home);

    // No JAVA_HOME: `start` fails in the caller, before daemonising.
    node.java_home = None;
    let out = node.script(&[], &["start"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Error: JAVA_HOME is not defined correctly.\n CARBON cannot execute java\n"
    );
    // The same over SSH, as a deployment tool that forgets JAVA_HOME would see it.
    let mut ssh = lab.ssh_command("app1", "root", 5).unwrap();
    let out = ssh.arg(format!("{script} start")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Error: JAVA_HOME is not defined correctly."),
        "{out:?}"
    );
    // An executable JAVACMD without JAVA_HOME meets the second check.
    let javacmd = format!("JAVACMD={jdk7}/bin/java");
    let out = node.script(&[&javacmd], &["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "You must set the JAVA_HOME variable before running CARBON.\n"
    );
    // A JAVA_HOME that holds no JDK (stop and version are refused too).
    node.java_home = Some("/usr/lib/jvm/jdk1.6.0_45".into());
    for command in ["start", "stop", "version"] {
        let out = node.script(&[], &[command]);
        assert_eq!(out.status.code(), Some(1), "{command}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Error: JAVA_HOME is not defined correctly.\n \
             CARBON cannot execute /usr/lib/jvm/jdk1.6.0_45/bin/java\n",
            "{command}"
        );
    }
    assert!(!node.file("wso2carbon.pid").exists(), "a server ran");
    assert_eq!(node.log(), "", "a server logged");

    // JDK 17: `start` returns 0 (the JVM dies in the background, its output in
    // /dev/null), and no server ever runs or logs.
    let jdk17 = lab.install_jdk("app1", JdkVersion::V17).unwrap();
    node.java_home = Some(jdk17.clone());
    node.start();
    std::thread::sleep(Duration::from_secs(2));
    assert!(server_pids(&lab, "app1").is_empty(), "a server runs on 17");
    assert!(!node.file("wso2carbon.pid").exists());
    assert_eq!(node.log(), "");
    // In the foreground the JVM's refusal is visible, and the exit status is 1.
    let out = node.script(&[], &["-DportOffset=1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(" [ERROR] CARBON is supported only on JDK 1.6 and 1.7"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with(
            "Unrecognized VM option 'MaxPermSize=256m'\n\
             Error: Could not create the Java Virtual Machine.\n"
        ),
        "{out:?}"
    );
    lab.remove_jdk("app1", JdkVersion::V17).unwrap();

    // JDK 1.8: the unsupported-JDK error and the JVM's PermGen warning, then it starts.
    let jdk8 = lab.install_jdk("app1", JdkVersion::V1_8).unwrap();
    node.java_home = Some(jdk8.clone());
    let mark = node.log().len();
    foreground_in_background(&node, &jdk8, "/tmp/fg-1.8.out");
    let log = node.wait_for_log(mark, STARTED_MARKER);
    assert!(log.contains("Java Version     : 1.8.0_202"), "{log}");
    let console =
        std::fs::read_to_string(lab.host_path("app1", "/tmp/fg-1.8.out").unwrap()).unwrap();
    assert!(
        console.starts_with(
            " Starting WSO2 Carbon (in unsupported JDK)\n [ERROR] CARBON is supported only on JDK 1.6 and 1.7\n"
        ),
        "{console}"
    );
    assert!(
        console.contains("warning: ignoring option MaxPermSize=256m; support was removed in 8.0"),
        "{console}"
    );
    node.stop_and_wait();

    // JDK 1.7 through `start`: the server is the JVM's process, with JAVA_HOME in its
    // environment and the JVM's command line, and no unsupported-JDK line.
    node.java_home = Some(jdk7.clone());
    let mark = node.log().len();
    node.start();
    let log = node.wait_for_log(mark, STARTED_MARKER);
    assert!(
        log.contains(&format!("Java Home        : {jdk7}/jre")),
        "{log}"
    );
    assert!(log.contains("Java Version     : 1.7.0_80"), "{log}");
    let pid = node.pid();
    assert_eq!(server_pids(&lab, "app1"), [pid.to_string()]);
    let environ = proc_file(&lab, "app1", pid, "environ");
    assert!(
        environ.lines().any(|l| l == format!("JAVA_HOME={jdk7}")),
        "{environ}"
    );
    let cmdline = proc_file(&lab, "app1", pid, "cmdline");
    for arg in [
        "-Dcarbon.home=/opt/wso2am-1.9.0",
        "-XX:MaxPermSize=256m",
        "org.wso2.carbon.bootstrap.Bootstrap",
    ] {
        assert!(
            cmdline.lines().any(|l| l == arg),
            "{arg} not in:\n{cmdline}"
        );
    }
    node.stop_and_wait();
    let mark = node.log().len();
    foreground_in_background(&node, &jdk7, "/tmp/fg-1.7.out");
    node.wait_for_log(mark, STARTED_MARKER);
    let console =
        std::fs::read_to_string(lab.host_path("app1", "/tmp/fg-1.7.out").unwrap()).unwrap();
    assert!(!console.contains("unsupported JDK"), "{console}");
    assert!(
        console.contains(&format!("JAVA_HOME environment variable is set to {jdk7}")),
        "{console}"
    );
    node.stop_and_wait();
}

#[test]
fn the_exit_switch_makes_the_server_exit_before_it_is_healthy() {
    // should: with the exit switch (file or env), log an ERROR and exit before the
    // started line; without it, start normally
    if !lab_tests_enabled("the_exit_switch_makes_the_server_exit_before_it_is_healthy") {
        return;
    }
    let dist = write_test_dist();
    let lab = TestLab::up(|spec| {
        spec.app_hosts = 1;
        spec.with_db = false;
    })
    .unwrap();
    let node = Node::install(&lab, "app1", "/opt", dist.path(), false);

    std::fs::write(node.file(EXIT_EARLY_FILE), b"").unwrap();
    let mark = node.log().len();
    node.start();
    let log = node.wait_for_log(mark, "WSO2 Carbon initialization Failed");
    assert!(log.contains("] ERROR {org.wso2.carbon.core.init.CarbonServerManager} -  WSO2 Carbon initialization Failed"), "{log}");
    node.wait_until_gone(node.pid());
    assert!(!node.log_since(mark).contains(STARTED_MARKER));
    assert!(!node.accepts(9443));
    std::fs::remove_file(node.file(EXIT_EARLY_FILE)).unwrap();

    let mark = node.log().len();
    let out = node.script(&["STANDIN_EXIT_EARLY=1"], &["start"]);
    assert!(out.status.success());
    node.wait_for_log(mark, "WSO2 Carbon initialization Failed");
    node.wait_until_gone(node.pid());

    let mark = node.log().len();
    node.start();
    node.wait_for_log(mark, STARTED_MARKER);
    node.stop_and_wait();
}
