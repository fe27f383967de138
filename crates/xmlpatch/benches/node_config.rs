//! Benchmark: patch a whole node's config set (six files, 32 ops) from the test fixtures.
//!
//! Measures, per iteration, parse of all six files + apply + encode, for a first apply
//! (everything changes) and a re-apply to the output (everything is a no-op). No criterion:
//! a plain timing loop that prints min / median / p95.
//!
//! Run: `cargo bench -p apim-xmlpatch --bench node_config` (optionally `-- 2000` iterations).

use std::time::{Duration, Instant};

use apim_xmlpatch::{Document, Op, Position};

/// One file of the set: its name, bytes and ops.
type FileJob = (&'static str, Vec<u8>, Vec<Op>);

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn datasource(name: &str, db: &str) -> String {
    format!(
        "<datasource>\n    <name>{name}</name>\n    <jndiConfig>\n        <name>jdbc/{name}</name>\n    </jndiConfig>\n    \
         <definition type=\"RDBMS\">\n        <configuration>\n            \
         <url>jdbc:mysql://db.example:3306/{db}?autoReconnect=true&amp;useSSL=false</url>\n            \
         <username>wso2</username>\n            <password>pw</password>\n        </configuration>\n    </definition>\n</datasource>"
    )
}

fn node_ops() -> Vec<(&'static str, Vec<Op>)> {
    let cl = "/axisconfig/clustering";
    let ds = "/datasources-configuration/datasources";
    let am = "/datasources-configuration/datasources/datasource[name='WSO2AM_DB']/definition/configuration";
    let env =
        "/APIManager/APIGateway/Environments/Environment[@type='hybrid'][@api-console='true']";
    let kv = "/APIManager/APIKeyValidator";
    let members = "<member>\n  <hostName>10.0.0.2</hostName>\n  <port>4000</port>\n</member>\n\
                   <member>\n  <hostName>10.0.0.3</hostName>\n  <port>4000</port>\n</member>";
    vec![
        ("carbon.xml", vec![
            Op::set_text("/Server/Ports/Offset", "1"),
            Op::ensure("/Server", "HostName", "<HostName>km.example.org</HostName>").at(Position::After("ServerKey".into())),
            Op::ensure("/Server", "MgtHostName", "<MgtHostName>km.example.org</MgtHostName>").at(Position::After("HostName".into())),
        ]),
        ("registry.xml", vec![
            Op::ensure("/wso2registry", "dbConfig[@name='shared']", "<dbConfig name=\"shared\">\n  <dataSource>jdbc/WSO2REG_DB</dataSource>\n</dbConfig>")
                .at(Position::After("dbConfig".into())),
            Op::ensure("/wso2registry", "remoteInstance[@url='https://10.0.0.9:9443/registry']",
                "<remoteInstance url=\"https://10.0.0.9:9443/registry\">\n  <id>gov</id>\n  <dbConfig>shared</dbConfig>\n</remoteInstance>")
                .at(Position::After("dbConfig[@name='shared']".into())),
            Op::ensure("/wso2registry", "mount[@path='/_system/config']",
                "<mount path=\"/_system/config\" overwrite=\"true\">\n  <instanceId>gov</instanceId>\n</mount>")
                .at(Position::After("remoteInstance".into())),
            Op::set_text("/wso2registry/readOnly", "false"),
        ]),
        ("axis2.xml", vec![
            Op::set_attr(format!("{cl}/@enable"), "true"),
            Op::set_text(format!("{cl}/parameter[@name='membershipScheme']"), "wka"),
            Op::set_text(format!("{cl}/parameter[@name='domain']"), "wso2.apim.domain"),
            Op::set_text(format!("{cl}/parameter[@name='localMemberHost']"), "10.0.0.3"),
            Op::set_text(format!("{cl}/parameter[@name='localMemberPort']"), "4100"),
            Op::replace_content(format!("{cl}/members"), members),
            Op::set_text("/axisconfig/transportReceiver[@name='http']/parameter[@name='port']", "8281"),
        ]),
        ("master-datasources.xml", vec![
            Op::set_text(format!("{am}/url"), "jdbc:mysql://db.example:3306/apimgtdb?autoReconnect=true&useSSL=false"),
            Op::set_text(format!("{am}/username"), "wso2"),
            Op::set_text(format!("{am}/password"), "pw").secret(),
            Op::set_text(format!("{am}/driverClassName"), "com.mysql.jdbc.Driver"),
            Op::ensure(ds, "datasource[name='WSO2UM_DB']", datasource("WSO2UM_DB", "userdb"))
                .at(Position::After("datasource[name='WSO2AM_DB']".into())),
            Op::ensure(ds, "datasource[name='WSO2REG_DB']", datasource("WSO2REG_DB", "regdb"))
                .at(Position::After("datasource[name='WSO2UM_DB']".into())),
        ]),
        ("user-mgt.xml", vec![
            Op::set_text("/UserManager/Realm/Configuration/Property[@name='dataSource']", "jdbc/WSO2UM_DB"),
            Op::set_text("/UserManager/Realm/Configuration/AdminUser/UserName", "root"),
            Op::set_text("/UserManager/Realm/Configuration/AdminUser/Password", "Adm1n").secret(),
        ]),
        ("api-manager.xml", vec![
            Op::set_text(format!("{env}/ServerURL"), "https://10.0.0.2:9443/services/"),
            Op::set_text(format!("{env}/GatewayEndpoint"), "http://10.0.0.2:8280,https://10.0.0.2:8243"),
            Op::set_text(format!("{kv}/ServerURL"), "https://10.0.0.3:9443/services/"),
            Op::set_text(format!("{kv}/RevokeAPIURL"), "https://10.0.0.2:8243/revoke"),
            Op::set_text(format!("{kv}/EnableThriftServer"), "false"),
            Op::ensure(kv, "ThriftServerHost", "<ThriftServerHost>10.0.0.3</ThriftServerHost>")
                .at(Position::After("ThriftServerPort".into())),
            Op::set_text("/APIManager/AuthManager/ServerURL", "https://10.0.0.3:9443/services/"),
            Op::set_text("/APIManager/APIStore/URL", "https://store.example:9443/store"),
            Op::set_text("/APIManager/APIStore/DisplayURL", "true"),
        ]),
    ]
}

/// Parses, patches and encodes every file once; returns the outputs.
fn patch_all(inputs: &[FileJob]) -> Vec<Vec<u8>> {
    inputs
        .iter()
        .map(|(name, bytes, ops)| {
            let doc = Document::parse_named(name, bytes).unwrap();
            doc.apply(ops).unwrap().text
        })
        .collect()
}

fn measure(label: &str, iterations: usize, inputs: &[FileJob]) {
    for _ in 0..iterations / 10 {
        std::hint::black_box(patch_all(inputs));
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(patch_all(std::hint::black_box(inputs)));
            t.elapsed()
        })
        .collect();
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    println!(
        "{label:<28} min {:>8.3} ms   median {:>8.3} ms   p95 {:>8.3} ms   ({iterations} iterations)",
        times[0].as_secs_f64() * 1e3,
        pct(50).as_secs_f64() * 1e3,
        pct(95).as_secs_f64() * 1e3,
    );
}

/// The same ops against the real 1.9.0 files (larger: ~110 KB), when the study copy exists
/// in `shared/` beside the checkout (the workspace root's `../shared`).
fn real_files(ops: &[(&'static str, Vec<Op>)]) -> Option<Vec<FileJob>> {
    let base = format!(
        "{}/../../../shared/reference/wso2am-1.9.0/repository/conf",
        env!("CARGO_MANIFEST_DIR")
    );
    let path = |n: &str| match n {
        "axis2.xml" => format!("{base}/axis2/axis2.xml"),
        "master-datasources.xml" => format!("{base}/datasources/master-datasources.xml"),
        other => format!("{base}/{other}"),
    };
    ops.iter()
        .map(|(n, o)| Some((*n, std::fs::read(path(n)).ok()?, o.clone())))
        .collect()
}

fn main() {
    let iterations = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let first: Vec<FileJob> = node_ops()
        .into_iter()
        .map(|(n, ops)| (n, fixture(n), ops))
        .collect();
    let op_count: usize = first.iter().map(|f| f.2.len()).sum();
    let bytes: usize = first.iter().map(|f| f.1.len()).sum();
    let outputs = patch_all(&first);
    let again: Vec<FileJob> = first
        .iter()
        .zip(outputs)
        .map(|((n, _, ops), out)| (*n, out, ops.clone()))
        .collect();
    assert_eq!(
        patch_all(&again),
        again.iter().map(|a| a.1.clone()).collect::<Vec<_>>()
    );
    println!(
        "node config set: {} files, {bytes} bytes, {op_count} ops",
        first.len()
    );
    measure("first apply (all change)", iterations, &first);
    measure("re-apply (all no-op)", iterations, &again);
    match real_files(&node_ops()) {
        Some(real) => {
            let bytes: usize = real.iter().map(|f| f.1.len()).sum();
            println!(
                "real 1.9.0 files: {} files, {bytes} bytes, {op_count} ops",
                real.len()
            );
            measure("real files, first apply", iterations, &real);
            let outputs = patch_all(&real);
            let real_again: Vec<FileJob> = real
                .iter()
                .zip(outputs)
                .map(|((n, _, ops), out)| (*n, out, ops.clone()))
                .collect();
            measure("real files, re-apply", iterations, &real_again);
        }
        None => println!("real 1.9.0 files not in ../shared beside the checkout: skipped"),
    }
}
