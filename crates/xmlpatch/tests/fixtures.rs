//! Golden tests on fixtures shaped like a WSO2 node's config files (tests/fixtures/, our own
//! text with the real files' structure and traps). Each test asserts that the patched bytes
//! equal the original with exactly the intended substrings replaced or inserted, that
//! roxmltree reads back the intended values, and that re-applying changes nothing.

use apim_xmlpatch::{Document, Op, Position, XmlError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Bytes as chars one to one (valid for the ASCII and ISO-8859-1 fixtures).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn from_latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(c as u32).expect("latin-1 char"))
        .collect()
}

/// Applies `ops` to the fixture and checks the exact result against the original with each
/// `(from, to)` replaced once (every `from` must occur exactly once in the original).
/// Returns the patched text (decoded as Latin-1, which is also right for ASCII).
fn check(name: &str, ops: &[Op], replacements: &[(&str, &str)]) -> String {
    let original = fixture(name);
    let doc = Document::parse_named(name, &original).unwrap();
    let patched = doc.apply(ops).unwrap();
    assert!(
        patched.changes.iter().all(|c| c.changed),
        "{:?}",
        patched.changes
    );

    let mut expected = latin1(&original);
    for (from, to) in replacements {
        assert_eq!(
            expected.matches(from).count(),
            1,
            "{from:?} must be unique in {name}"
        );
        expected = expected.replacen(from, to, 1);
    }
    let got = latin1(&patched.text);
    if let Some((line, (want, have))) = expected
        .lines()
        .zip(got.lines())
        .enumerate()
        .find(|(_, (w, h))| w != h)
    {
        panic!(
            "{name}: patched bytes differ from the expected at line {}:\n- {want}\n+ {have}",
            line + 1
        );
    }
    assert_eq!(patched.text, from_latin1(&expected));

    let again = Document::parse_named(name, &patched.text)
        .unwrap()
        .apply(ops)
        .unwrap();
    assert_eq!(again.text, patched.text, "re-applying must change nothing");
    assert!(!again.changed());
    got
}

/// Texts of all elements with local name `name` whose ancestors' local names end with
/// `parents`, read by roxmltree (the oracle).
fn oracle_texts(xml: &str, parents: &[&str], name: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).expect("roxmltree parses the patched file");
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .filter(|n| {
            let anc: Vec<&str> = n
                .ancestors()
                .skip(1)
                .filter(|a| a.is_element())
                .map(|a| a.tag_name().name())
                .collect();
            parents.iter().rev().zip(&anc).all(|(p, a)| p == a)
        })
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

#[test]
fn carbon_offset_server_url_and_host_name() {
    let ops = [
        Op::set_text("/Server/Ports/Offset", "1"),
        Op::set_text("/Server/ServerURL", "https://10.0.0.5:9443/services/"),
        Op::ensure("/Server", "HostName", "<HostName>km.example.org</HostName>")
            .at(Position::After("ServerKey".into())),
    ];
    let out = check(
        "carbon.xml",
        &ops,
        &[
            ("<Offset>0</Offset>", "<Offset>1</Offset>"),
            (
                "<ServerURL>local:/${carbon.context}/services/</ServerURL>",
                "<ServerURL>https://10.0.0.5:9443/services/</ServerURL>",
            ),
            (
                "<ServerKey>AM</ServerKey>",
                "<ServerKey>AM</ServerKey>\n    <HostName>km.example.org</HostName>",
            ),
        ],
    );
    assert!(out.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n"));
    assert!(out.contains("<!--HostName>node.example.org</HostName-->"));
    assert_eq!(oracle_texts(&out, &["Server", "Ports"], "Offset"), ["1"]);
    assert_eq!(
        oracle_texts(&out, &["Server"], "ServerURL"),
        ["https://10.0.0.5:9443/services/"]
    );
    assert_eq!(
        oracle_texts(&out, &["Server"], "HostName"),
        ["km.example.org"]
    );
}

#[test]
fn registry_crlf_inserts_use_crlf_and_sibling_indent() {
    let ops = [
        Op::ensure(
            "/wso2registry",
            "dbConfig[@name='sharedregistry']",
            "<dbConfig name=\"sharedregistry\">\n    <dataSource>jdbc/WSO2RegistryDB</dataSource>\n</dbConfig>",
        )
        .at(Position::After("dbConfig[@name='wso2registry']".into())),
        Op::ensure(
            "/wso2registry",
            "remoteInstance[@url='https://10.0.0.9:9443/registry']",
            r#"
            <remoteInstance url="https://10.0.0.9:9443/registry">
                <id>gov</id>
                <dbConfig>sharedregistry</dbConfig>
                <readOnly>false</readOnly>
            </remoteInstance>
            "#,
        )
        .at(Position::After("dbConfig[@name='sharedregistry']".into())),
        Op::ensure(
            "/wso2registry",
            "mount[@path='/_system/config']",
            "<mount path=\"/_system/config\" overwrite=\"true\">\n  <instanceId>gov</instanceId>\n  <targetPath>/_system/nodes</targetPath>\n</mount>",
        )
        .at(Position::After("remoteInstance".into())),
    ];
    let out = check(
        "registry.xml",
        &ops,
        &[(
            "<dataSource>jdbc/WSO2CarbonDB</dataSource>\r\n    </dbConfig>",
            "<dataSource>jdbc/WSO2CarbonDB</dataSource>\r\n    </dbConfig>\r\n    \
             <dbConfig name=\"sharedregistry\">\r\n        <dataSource>jdbc/WSO2RegistryDB</dataSource>\r\n    </dbConfig>\r\n    \
             <remoteInstance url=\"https://10.0.0.9:9443/registry\">\r\n        <id>gov</id>\r\n        \
             <dbConfig>sharedregistry</dbConfig>\r\n        <readOnly>false</readOnly>\r\n    </remoteInstance>\r\n    \
             <mount path=\"/_system/config\" overwrite=\"true\">\r\n        <instanceId>gov</instanceId>\r\n        \
             <targetPath>/_system/nodes</targetPath>\r\n    </mount>",
        )],
    );
    assert_eq!(
        out.matches('\n').count(),
        out.matches("\r\n").count(),
        "every line ends in CRLF"
    );
    assert_eq!(
        oracle_texts(&out, &["wso2registry", "mount"], "targetPath"),
        ["/_system/nodes"]
    );
    assert_eq!(
        oracle_texts(&out, &["wso2registry", "remoteInstance"], "id"),
        ["gov"]
    );
}

#[test]
fn api_manager_environment_key_validator_and_thrift_host() {
    let env =
        "/APIManager/APIGateway/Environments/Environment[@type='hybrid'][@api-console='true']";
    let ops = [
        Op::set_text(
            format!("{env}/ServerURL"),
            "https://10.0.0.2:9443/services/",
        ),
        Op::set_text(
            format!("{env}/GatewayEndpoint"),
            "http://10.0.0.2:8280,https://10.0.0.2:8243",
        ),
        Op::set_text(
            "/APIManager/APIKeyValidator/ServerURL",
            "https://10.0.0.3:9443/services/",
        ),
        Op::set_text(
            "/APIManager/APIKeyValidator/RevokeAPIURL",
            "https://10.0.0.2:8243/revoke",
        ),
        Op::set_text("/APIManager/APIKeyValidator/EnableThriftServer", "false"),
        Op::ensure(
            "/APIManager/APIKeyValidator",
            "ThriftServerHost",
            "<ThriftServerHost>10.0.0.3</ThriftServerHost>",
        )
        .at(Position::After("ThriftServerPort".into())),
        Op::set_text("//AuthManager/Password", "p&ss<1>").secret(),
    ];
    let url = "${mgt.transport.https.port}/services/</ServerURL>";
    let out = check(
        "api-manager.xml",
        &ops,
        &[
            (
                &format!("                        <ServerURL>https://${{carbon.local.ip}}:{url}"),
                "                        <ServerURL>https://10.0.0.2:9443/services/</ServerURL>",
            ),
            (
                "<GatewayEndpoint>http://${carbon.local.ip}:${http.nio.port},https://${carbon.local.ip}:8243</GatewayEndpoint>",
                "<GatewayEndpoint>http://10.0.0.2:8280,https://10.0.0.2:8243</GatewayEndpoint>",
            ),
            (
                &format!(
                    "    <APIKeyValidator>\n        <ServerURL>https://${{carbon.local.ip}}:{url}"
                ),
                "    <APIKeyValidator>\n        <ServerURL>https://10.0.0.3:9443/services/</ServerURL>",
            ),
            (
                "<RevokeAPIURL>https://${carbon.local.ip}:8243/revoke</RevokeAPIURL>",
                "<RevokeAPIURL>https://10.0.0.2:8243/revoke</RevokeAPIURL>",
            ),
            ("<EnableThriftServer>true<", "<EnableThriftServer>false<"),
            (
                "<ThriftServerPort>10397</ThriftServerPort>",
                "<ThriftServerPort>10397</ThriftServerPort>\n        <ThriftServerHost>10.0.0.3</ThriftServerHost>",
            ),
            (
                "        <Password>${admin.password}</Password>\n    </AuthManager>",
                "        <Password>p&amp;ss&lt;1&gt;</Password>\n    </AuthManager>",
            ),
        ],
    );
    assert!(
        !out.ends_with('\n'),
        "the missing final newline stays missing"
    );
    assert!(out.contains("<!--ThriftServerHost>localhost</ThriftServerHost-->"));
    assert_eq!(
        oracle_texts(&out, &["APIKeyValidator"], "ThriftServerHost"),
        ["10.0.0.3"]
    );
    assert_eq!(
        oracle_texts(&out, &["AuthManager"], "Password"),
        ["p&ss<1>"]
    );
    assert_eq!(
        oracle_texts(&out, &["Environment"], "ServerURL"),
        ["https://10.0.0.2:9443/services/"]
    );
    assert_eq!(
        oracle_texts(&out, &["APIKeyValidator"], "RevokeAPIURL"),
        ["https://10.0.0.2:8243/revoke"]
    );
    // The commented APIKeyManager block is not an element: addressing it finds nothing.
    let doc = Document::parse_named("api-manager.xml", &fixture("api-manager.xml")).unwrap();
    assert_eq!(
        doc.count("//APIKeyManager/Configuration/ServerURL")
            .unwrap(),
        0
    );
    assert_eq!(doc.count("//ServerURL").unwrap(), 3);
}

#[test]
fn api_manager_secret_and_the_value_it_replaced_are_named_for_masking() {
    let doc = Document::parse_named("api-manager.xml", &fixture("api-manager.xml")).unwrap();
    let p = doc
        .apply(&[Op::set_text("//AuthManager/Password", "p&ss<1>").secret()])
        .unwrap();
    assert_eq!(p.secrets(), ["p&ss<1>", "${admin.password}"]);
    assert!(
        p.new_text()
            .contains("<Password>p&amp;ss&lt;1&gt;</Password>")
    );
}

#[test]
fn axis2_latin1_clustering_members_and_port() {
    let clustering = "/axisconfig/clustering";
    let members = "<member>\n    <hostName>10.0.0.2</hostName>\n    <port>4000</port>\n</member>\n\
                   <member>\n    <hostName>10.0.0.3</hostName>\n    <port>4000</port>\n</member>";
    let ops = [
        Op::set_attr(format!("{clustering}/@enable"), "true"),
        Op::set_text(
            format!("{clustering}/parameter[@name='membershipScheme']"),
            "wka",
        ),
        Op::set_text(
            format!("{clustering}/parameter[@name='domain']"),
            "apim.caf\u{e9}.domain",
        ),
        Op::set_text(
            format!("{clustering}/parameter[@name='localMemberHost']"),
            "10.0.0.3",
        ),
        Op::replace_content(format!("{clustering}/members"), members),
        Op::set_text(
            "/axisconfig/transportReceiver[@name='http']/parameter[@name='port']",
            "8281",
        ),
    ];
    let out = check(
        "axis2.xml",
        &ops,
        &[
            (
                "                enable=\"false\">",
                "                enable=\"true\">",
            ),
            (">multicast<", ">wka<"),
            (">wso2.carbon.domain<", ">apim.caf\u{e9}.domain<"),
            (
                "\"localMemberHost\">127.0.0.1<",
                "\"localMemberHost\">10.0.0.3<",
            ),
            (
                "<members>\n            <member>\n                <hostName>127.0.0.1</hostName>\n",
                "<members>\n            <member>\n                <hostName>10.0.0.2</hostName>\n",
            ),
            (
                "                <port>4000</port>\n            </member>\n        </members>",
                "                <port>4000</port>\n            </member>\n            <member>\n                \
                 <hostName>10.0.0.3</hostName>\n                <port>4000</port>\n            </member>\n        </members>",
            ),
            (
                "PassThroughHttpListener\">\n        <parameter name=\"port\" locked=\"false\">8280<",
                "PassThroughHttpListener\">\n        <parameter name=\"port\" locked=\"false\">8281<",
            ),
        ],
    );
    assert!(
        out.contains("caf\u{e9}."),
        "the Latin-1 comment byte survives"
    );
    let hosts = oracle_texts(&out, &["clustering", "members", "member"], "hostName");
    assert_eq!(hosts, ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(
        oracle_texts(&out, &["axisconfig", "clustering"], "parameter").len(),
        7
    );
}

#[test]
fn axis2_value_outside_latin1_is_refused() {
    let doc = Document::parse_named("axis2.xml", &fixture("axis2.xml")).unwrap();
    let err = doc
        .apply(&[Op::set_text(
            "/axisconfig/clustering/parameter[@name='domain']",
            "euro\u{20ac}",
        )])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "axis2.xml: op #1 at /axisconfig/clustering/parameter[@name='domain']: character '\u{20ac}' \
         (U+20AC) cannot be written in ISO-8859-1; the file was left untouched"
    );
    let domain = "/axisconfig/clustering/parameter[@name='domain']";
    let secret = doc
        .apply(&[Op::set_text(domain, "pw\u{20ac}").secret()])
        .unwrap_err();
    assert!(!secret.to_string().contains('\u{20ac}'), "{secret}");
}

#[test]
fn master_datasources_mysql_url_and_new_datasources() {
    let am = "/datasources-configuration/datasources/datasource[name='WSO2AM_DB']/definition/configuration";
    let um = r#"
        <datasource>
            <name>WSO2UM_DB</name>
            <description>User store</description>
            <jndiConfig>
                <name>jdbc/WSO2UM_DB</name>
            </jndiConfig>
            <definition type="RDBMS">
                <configuration>
                    <url>jdbc:mysql://userdb.example:3306/userdb?autoReconnect=true&amp;useSSL=false</url>
                    <username>wso2</username>
                    <password>pw</password>
                </configuration>
            </definition>
        </datasource>"#;
    let ops = [
        Op::set_text(
            format!("{am}/url"),
            "jdbc:mysql://apimgtdb.example:3306/apimgtdb?autoReconnect=true&useSSL=false",
        ),
        Op::set_text(format!("{am}/username"), "wso2"),
        Op::set_text(format!("{am}/password"), "pw").secret(),
        Op::set_text(format!("{am}/driverClassName"), "com.mysql.jdbc.Driver"),
        Op::ensure(
            "/datasources-configuration/datasources",
            "datasource[name='WSO2UM_DB']",
            um,
        )
        .at(Position::After("datasource[name='WSO2AM_DB']".into())),
    ];
    let um_inserted = um.trim_start();
    let out = check(
        "master-datasources.xml",
        &ops,
        &[
            (
                "<url>jdbc:h2:./db/WSO2AM_DB;DB_CLOSE_ON_EXIT=FALSE</url>\n                    \
                 <username>wso2carbon</username>\n                    <password>wso2carbon</password>\n                    \
                 <defaultAutoCommit>false</defaultAutoCommit>\n                    <driverClassName>org.h2.Driver<",
                "<url>jdbc:mysql://apimgtdb.example:3306/apimgtdb?autoReconnect=true&amp;useSSL=false</url>\n                    \
                 <username>wso2</username>\n                    <password>pw</password>\n                    \
                 <defaultAutoCommit>false</defaultAutoCommit>\n                    <driverClassName>com.mysql.jdbc.Driver<",
            ),
            (
                "        </datasource>\n\n        <!-- Pool",
                &format!("        </datasource>\n        {um_inserted}\n\n        <!-- Pool"),
            ),
        ],
    );
    assert!(out.contains("<password svns:secretAlias=\"Sample.DB.Password\">secret</password>"));
    let urls = oracle_texts(&out, &["configuration"], "url");
    assert_eq!(
        urls[1],
        "jdbc:mysql://apimgtdb.example:3306/apimgtdb?autoReconnect=true&useSSL=false"
    );
    assert_eq!(
        urls[2],
        "jdbc:mysql://userdb.example:3306/userdb?autoReconnect=true&useSSL=false"
    );
    let names = oracle_texts(&out, &["datasources", "datasource"], "name");
    assert_eq!(names, ["WSO2_CARBON_DB", "WSO2AM_DB", "WSO2UM_DB"]);
}

#[test]
fn user_mgt_datasource_and_admin_password() {
    let cfg = "/UserManager/Realm/Configuration";
    let ops = [
        Op::set_text(
            format!("{cfg}/Property[@name='dataSource']"),
            "jdbc/WSO2UM_DB",
        ),
        Op::set_text(format!("{cfg}/AdminUser/Password"), "Adm1n!").secret(),
    ];
    let out = check(
        "user-mgt.xml",
        &ops,
        &[
            (
                "<Property name=\"dataSource\">jdbc/WSO2CarbonDB</Property>",
                "<Property name=\"dataSource\">jdbc/WSO2UM_DB</Property>",
            ),
            ("<Password>admin</Password>", "<Password>Adm1n!</Password>"),
        ],
    );
    assert!(out.contains("<Property name=\"dataSource\">jdbc/NotThisOne</Property>"));
    assert_eq!(oracle_texts(&out, &["AdminUser"], "Password"), ["Adm1n!"]);
}

#[test]
fn user_mgt_wrong_case_names_the_deepest_match() {
    let doc = Document::parse_named("user-mgt.xml", &fixture("user-mgt.xml")).unwrap();
    let err = doc
        .apply(&[Op::set_text(
            "/UserManager/Realm/configuration/Property[@name='dataSource']",
            "x",
        )])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user-mgt.xml: op #1: path /UserManager/Realm/configuration/Property[@name='dataSource'] \
         expected exactly one element, found 0; deepest match: /UserManager/Realm (1 elements); \
         no <configuration> child"
    );
}

#[test]
fn revoke_api_default_namespace_and_one_line_declaration() {
    let ops = [
        Op::set_attr(
            "/api/resource/inSequence/send/endpoint/http/@uri-template",
            "https://10.0.0.3:9443/oauth2/revoke",
        ),
        Op::set_text("//timeout/duration", "30000"),
    ];
    let out = check(
        "_RevokeAPI_.xml",
        &ops,
        &[
            (
                "uri-template=\"https://{uri.var.hostname}:{uri.var.portnum}/token/revoke\"",
                "uri-template=\"https://10.0.0.3:9443/oauth2/revoke\"",
            ),
            ("<duration>60000</duration>", "<duration>30000</duration>"),
        ],
    );
    assert!(out.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><api xmlns=\"http://ws.apache.org/ns/synapse\""
    ));
    assert_eq!(oracle_texts(&out, &["timeout"], "duration"), ["30000"]);
}

#[test]
fn every_fixture_round_trips_unchanged_with_no_ops() {
    for name in [
        "carbon.xml",
        "registry.xml",
        "axis2.xml",
        "master-datasources.xml",
        "user-mgt.xml",
        "api-manager.xml",
        "_RevokeAPI_.xml",
    ] {
        let bytes = fixture(name);
        let doc = Document::parse_named(name, &bytes).unwrap();
        assert_eq!(doc.to_bytes(), bytes, "{name}");
        assert_eq!(doc.apply(&[]).unwrap().text, bytes, "{name}");
    }
}

#[test]
fn malformed_fixture_reports_line_and_column_and_changes_nothing() {
    let mut text = latin1(&fixture("carbon.xml"));
    text = text.replacen("</Offset>", "</Ofset>", 1);
    let err = Document::parse_named("carbon.xml", &from_latin1(&text)).unwrap_err();
    let line = text.lines().position(|l| l.contains("</Ofset>")).unwrap() + 1;
    match err {
        XmlError::Malformed {
            line: l, column, ..
        } => {
            assert_eq!(l, line);
            assert_eq!(
                column,
                text.lines()
                    .nth(line - 1)
                    .unwrap()
                    .find("</Ofset>")
                    .unwrap()
                    + 1
            );
        }
        other => panic!("expected Malformed, got {other}"),
    }
}

/// The study copy of the real 1.9.0 configuration files: `shared/` beside the checkout
/// (the workspace root's `../shared`), where every checkout, CI's included, has it. It
/// is not in the repository, so a missing copy fails the tests that need it rather than
/// letting them pass without ever seeing a real file.
fn reference_conf() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/wso2am-1.9.0/repository/conf");
    assert!(
        dir.is_dir(),
        "{} is missing: these tests need the study copy of the real 1.9.0 files in the \
         `shared/` folder beside the checkout",
        dir.display()
    );
    dir.to_str().expect("a UTF-8 path").to_string()
}

/// Real 1.9.0 files: they parse, round-trip byte-identically, and the commented
/// lookalikes stay invisible.
#[test]
fn real_reference_files_round_trip() {
    let base = reference_conf();
    for name in [
        "carbon.xml",
        "registry.xml",
        "axis2/axis2.xml",
        "datasources/master-datasources.xml",
        "user-mgt.xml",
        "api-manager.xml",
        "tomcat/catalina-server.xml",
        "etc/jmx.xml",
    ] {
        let bytes = std::fs::read(format!("{base}/{name}")).unwrap();
        let doc = Document::parse_named(name, &bytes).unwrap();
        assert_eq!(doc.apply(&[]).unwrap().text, bytes, "{name}");
    }
    let carbon = Document::parse_named(
        "carbon.xml",
        &std::fs::read(format!("{base}/carbon.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(carbon.get_text("/Server/Ports/Offset").unwrap(), "0");
    assert_eq!(carbon.count("//ServerURL").unwrap(), 1);
    let am = Document::parse_named(
        "api-manager.xml",
        &std::fs::read(format!("{base}/api-manager.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(am.count("//ThriftServerHost").unwrap(), 0);
    assert_eq!(am.count("//APIKeyManager").unwrap(), 0);
}

#[test]
fn master_datasources_ensure_replaces_a_differing_datasource_in_place() {
    let fragment = r#"
        <datasource>
            <name>WSO2AM_DB</name>
            <description>API management data of the fixture</description>
            <jndiConfig>
                <name>jdbc/WSO2AM_DB</name>
            </jndiConfig>
            <definition type="RDBMS">
                <configuration>
                    <url>jdbc:mysql://db.example:3306/apimgtdb</url>
                    <username>wso2</username>
                </configuration>
            </definition>
        </datasource>"#;
    let op = Op::ensure(
        "/datasources-configuration/datasources",
        "datasource[name='WSO2AM_DB']",
        fragment,
    );
    let original = latin1(&fixture("master-datasources.xml"));
    let start = original
        .find("        <datasource>\n            <name>WSO2AM_DB")
        .unwrap()
        + 8;
    let end = original[start..].find("</datasource>").unwrap() + start + "</datasource>".len();
    let old_block = &original[start..end];
    check(
        "master-datasources.xml",
        std::slice::from_ref(&op),
        &[(old_block, fragment.trim_start())],
    );
}

#[test]
fn api_manager_existing_first_child_is_left_alone() {
    let doc = Document::parse_named("api-manager.xml", &fixture("api-manager.xml")).unwrap();
    let op = Op::ensure(
        "/APIManager",
        "DataSourceName",
        "<DataSourceName>jdbc/WSO2AM_DB</DataSourceName>",
    )
    .at(Position::First);
    let p = doc.apply(&[op]).unwrap();
    assert!(!p.changed());
    assert_eq!(p.text, fixture("api-manager.xml"));
}

#[test]
fn registry_remove_takes_the_crlf_line() {
    check(
        "registry.xml",
        &[Op::remove("/wso2registry/versionResourcesOnChange")],
        &[(
            "    <versionResourcesOnChange>false</versionResourcesOnChange>\r\n",
            "",
        )],
    );
}

#[test]
fn user_mgt_names_only_the_secret_ops_values_for_masking() {
    let doc = Document::parse_named("user-mgt.xml", &fixture("user-mgt.xml")).unwrap();
    let p = doc
        .apply(&[
            Op::set_text(
                "/UserManager/Realm/Configuration/AdminUser/Password",
                "Adm1n!",
            )
            .secret(),
            Op::set_text(
                "/UserManager/Realm/Configuration/Property[@name='dataSource']",
                "jdbc/WSO2UM_DB",
            ),
        ])
        .unwrap();
    assert_eq!(p.secrets(), ["Adm1n!", "admin"]);
}

/// A realistic patch set on the real 1.9.0 files: the outputs parse, re-applying is a
/// no-op, and the diff removes exactly the lines holding old values.
#[test]
fn real_reference_files_take_a_cluster_patch() {
    let base = reference_conf();
    let cl = "/axisconfig/clustering";
    let cases: Vec<(&str, Vec<Op>, usize)> = vec![
        (
            "axis2/axis2.xml",
            vec![
                Op::set_attr(format!("{cl}/@enable"), "true"),
                Op::set_text(format!("{cl}/parameter[@name='membershipScheme']"), "wka"),
                Op::set_text(format!("{cl}/parameter[@name='localMemberHost']"), "10.0.0.3"),
                Op::replace_content(
                    format!("{cl}/members"),
                    "<member>\n    <hostName>10.0.0.2</hostName>\n    <port>4000</port>\n</member>",
                ),
            ],
            4, // enable line, scheme, host, old member host (port line unchanged)
        ),
        (
            "datasources/master-datasources.xml",
            vec![
                Op::set_text(
                    "//datasource[name='WSO2AM_DB']/definition/configuration/url",
                    "jdbc:mysql://db:3306/apimgtdb?autoReconnect=true&useSSL=false",
                ),
                Op::ensure(
                    "/datasources-configuration/datasources",
                    "datasource[name='WSO2UM_DB']",
                    "<datasource>\n  <name>WSO2UM_DB</name>\n</datasource>",
                )
                .at(Position::After("datasource[name='WSO2AM_DB']".into())),
            ],
            1,
        ),
        (
            "registry.xml",
            vec![Op::ensure(
                "/wso2registry",
                "mount[@path='/_system/config']",
                "<mount path=\"/_system/config\" overwrite=\"true\">\n  <instanceId>gov</instanceId>\n</mount>",
            )
            .at(Position::After("dbConfig".into()))],
            0,
        ),
        (
            "api-manager.xml",
            vec![
                Op::set_text("/APIManager/APIKeyValidator/RevokeAPIURL", "https://10.0.0.2:8243/revoke"),
                Op::ensure("/APIManager/APIKeyValidator", "ThriftServerHost", "<ThriftServerHost>10.0.0.3</ThriftServerHost>")
                    .at(Position::After("ThriftServerPort".into())),
            ],
            1,
        ),
        (
            "user-mgt.xml",
            vec![Op::set_text("/UserManager/Realm/Configuration/Property[@name='dataSource']", "jdbc/WSO2UM_DB")],
            1,
        ),
        ("carbon.xml", vec![Op::set_text("/Server/Ports/Offset", "1")], 1),
    ];
    for (name, ops, removed_lines) in cases {
        let bytes = std::fs::read(format!("{base}/{name}")).unwrap();
        let doc = Document::parse_named(name, &bytes).unwrap();
        let patched = doc.apply(&ops).unwrap();
        let text = latin1(&patched.text);
        roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = Document::parse_named(name, &patched.text)
            .unwrap()
            .apply(&ops)
            .unwrap();
        assert_eq!(again.text, patched.text, "{name}: re-apply must be a no-op");
        let old = latin1(&bytes);
        let changes = similar::TextDiff::from_lines(&old, &text);
        let removed: Vec<&str> = changes
            .iter_all_changes()
            .filter(|c| c.tag() == similar::ChangeTag::Delete)
            .map(|c| c.value())
            .collect();
        assert_eq!(removed.len(), removed_lines, "{name}: {removed:?}");
        if name == "registry.xml" {
            assert_eq!(
                text.matches('\n').count(),
                text.matches("\r\n").count(),
                "registry.xml stays CRLF"
            );
        }
    }
}
