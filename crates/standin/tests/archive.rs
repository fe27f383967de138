//! The generated archive: reproducible bytes, the real 1.9.0 layout, and the file
//! traps (encodings, declarations, line endings) apim-deploy's patcher must survive.

use std::io::Read;
use std::path::Path;

use apim_standin::{DIST_ZIP_NAME, DistOptions, JDBC_JAR_NAME, TOP_DIR, write_dist};

fn read_zip(path: &Path) -> zip::ZipArchive<std::fs::File> {
    zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap()
}

/// Entry names in archive order.
fn names(path: &Path) -> Vec<String> {
    read_zip(path)
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect()
}

fn entry_bytes(path: &Path, name: &str) -> Vec<u8> {
    let mut zip = read_zip(path);
    let mut file = zip
        .by_name(&format!("{TOP_DIR}/{name}"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

fn entry_text(path: &Path, name: &str) -> String {
    String::from_utf8(entry_bytes(path, name)).unwrap()
}

fn default_dist() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dist = write_dist(dir.path(), &DistOptions::default()).unwrap();
    let zip = dist.zip.path.clone();
    (dir, zip)
}

#[test]
fn same_options_give_the_same_sha256_twice() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let opts = DistOptions {
        size_mb: 3,
        ..DistOptions::default()
    };
    let first = write_dist(a.path(), &opts).unwrap();
    let second = write_dist(b.path(), &opts).unwrap();
    assert_eq!(first.zip.sha256, second.zip.sha256);
    assert_eq!(first.jdbc_jar.sha256, second.jdbc_jar.sha256);
    assert_eq!(first.zip.path, a.path().join(DIST_ZIP_NAME));
    assert_eq!(first.jdbc_jar.path, a.path().join(JDBC_JAR_NAME));
}

#[test]
fn a_different_start_delay_changes_the_archive() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = write_dist(a.path(), &DistOptions::default()).unwrap();
    let slow = DistOptions {
        start_delay_secs: 7.5,
        ..DistOptions::default()
    };
    let second = write_dist(b.path(), &slow).unwrap();
    assert_ne!(first.zip.sha256, second.zip.sha256);
    let props = entry_text(&second.zip.path, "bin/standin.properties");
    assert!(props.contains("start.delay.secs=7.5\n"), "{props}");
}

#[test]
fn size_mb_pads_the_archive_to_about_that_size() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DistOptions {
        size_mb: 20,
        ..DistOptions::default()
    };
    let dist = write_dist(dir.path(), &opts).unwrap();
    let mib = dist.zip.size_bytes as f64 / (1024.0 * 1024.0);
    assert!((19.5..=20.5).contains(&mib), "{mib} MiB");
    assert!(
        names(&dist.zip.path)
            .iter()
            .any(|n| n.starts_with("wso2am-1.9.0/repository/components/plugins/standin-filler-"))
    );
}

#[test]
fn invalid_options_are_rejected_with_the_option_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = DistOptions {
        start_delay_secs: -1.0,
        ..DistOptions::default()
    };
    let err = write_dist(dir.path(), &bad).unwrap_err().to_string();
    assert!(err.contains("--start-delay-secs"), "{err}");
    assert!(!dir.path().join(DIST_ZIP_NAME).exists());
}

#[test]
fn archive_has_the_real_layout_under_one_top_folder() {
    let (_dir, zip_path) = default_dist();
    let names = names(&zip_path);
    assert!(
        names.iter().all(|n| n.starts_with("wso2am-1.9.0/")),
        "{names:?}"
    );
    for expected in [
        "bin/wso2server.sh",
        "bin/standin-carbon.py",
        "repository/conf/carbon.xml",
        "repository/conf/api-manager.xml",
        "repository/conf/user-mgt.xml",
        "repository/conf/registry.xml",
        "repository/conf/axis2/axis2.xml",
        "repository/conf/datasources/master-datasources.xml",
        "repository/conf/tomcat/catalina-server.xml",
        "repository/deployment/server/synapse-configs/default/api/_TokenAPI_.xml",
        "repository/deployment/server/synapse-configs/default/api/_AuthorizeAPI_.xml",
        "repository/deployment/server/synapse-configs/default/api/_RevokeAPI_.xml",
        "dbscripts/mysql.sql",
        "dbscripts/apimgt/mysql.sql",
        "repository/components/lib/",
        "repository/logs/",
    ] {
        let name = format!("{TOP_DIR}/{expected}");
        assert!(names.contains(&name), "missing {name}");
    }
    let lib = "wso2am-1.9.0/repository/components/lib/";
    let lib_children = names
        .iter()
        .filter(|n| n.starts_with(lib) && n.len() > lib.len())
        .count();
    assert_eq!(lib_children, 0, "components/lib must be empty");
}

#[test]
fn start_script_is_executable_and_configs_are_not() {
    let (_dir, zip_path) = default_dist();
    let mut zip = read_zip(&zip_path);
    let mode = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        zip.by_name(&format!("{TOP_DIR}/{name}"))
            .unwrap()
            .unix_mode()
            .unwrap()
            & 0o777
    };
    assert_eq!(mode(&mut zip, "bin/wso2server.sh"), 0o755);
    assert_eq!(mode(&mut zip, "repository/conf/carbon.xml"), 0o644);
}

#[test]
fn declarations_and_line_endings_match_the_real_files() {
    let (_dir, zip) = default_dist();
    let iso = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>";
    assert!(entry_text(&zip, "repository/conf/carbon.xml").starts_with(iso));
    assert!(entry_text(&zip, "repository/conf/axis2/axis2.xml").starts_with(iso));
    for no_decl in [
        "repository/conf/api-manager.xml",
        "repository/conf/user-mgt.xml",
        "repository/conf/datasources/master-datasources.xml",
        "repository/deployment/server/synapse-configs/default/api/_TokenAPI_.xml",
    ] {
        assert!(!entry_text(&zip, no_decl).contains("<?xml"), "{no_decl}");
    }
    let revoke = entry_text(
        &zip,
        "repository/deployment/server/synapse-configs/default/api/_RevokeAPI_.xml",
    );
    let first_line = revoke.lines().next().unwrap();
    assert!(first_line.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><api "));
    assert!(first_line.contains("xmlns=\"http://ws.apache.org/ns/synapse\""));

    let registry = entry_bytes(&zip, "repository/conf/registry.xml");
    let lf = registry.iter().filter(|b| **b == b'\n').count();
    let crlf = registry.windows(2).filter(|w| w == b"\r\n").count();
    assert!(lf > 50 && lf == crlf, "registry.xml must be CRLF only");
    let carbon = entry_bytes(&zip, "repository/conf/carbon.xml");
    assert!(!carbon.contains(&b'\r'), "carbon.xml must be LF");
    for name in [
        "repository/conf/carbon.xml",
        "repository/conf/axis2/axis2.xml",
    ] {
        assert!(
            entry_bytes(&zip, name).is_ascii(),
            "{name} must be pure ASCII"
        );
    }
}

#[test]
fn config_traps_of_the_real_files_are_present() {
    let (_dir, zip) = default_dist();
    let carbon = entry_text(&zip, "repository/conf/carbon.xml");
    assert!(carbon.contains("<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\">"));
    assert!(carbon.contains("<Offset>0</Offset>"));
    assert_eq!(
        carbon.matches("<ServerURL>").count(),
        2,
        "active + commented ServerURL"
    );
    assert!(carbon.contains("<!--HostName>www.wso2.org</HostName-->"));

    let axis2 = entry_text(&zip, "repository/conf/axis2/axis2.xml");
    assert!(axis2.contains(
        "<clustering class=\"org.wso2.carbon.core.clustering.hazelcast.HazelcastClusteringAgent\"\n                enable=\"false\">"
    ));
    assert_eq!(
        axis2.matches(">8280</parameter>").count(),
        2,
        "active + commented 8280"
    );
    assert_eq!(
        axis2.matches(">8243</parameter>").count(),
        2,
        "active + commented 8243"
    );
    assert!(axis2.contains(
        "<members>\n            <member>\n                <hostName>127.0.0.1</hostName>"
    ));

    let am = entry_text(&zip, "repository/conf/api-manager.xml");
    assert!(am.contains("<!--ThriftServerHost>localhost</ThriftServerHost-->"));
    assert!(am.contains("<!--APIKeyManager>"));
    assert!(am.contains("<EnableThriftServer>true</EnableThriftServer>"));
    let first_username = am.find("<Username>").unwrap();
    assert!(
        first_username < am.find("<AuthManager>").unwrap(),
        "commented Username first"
    );

    let um = entry_text(&zip, "repository/conf/user-mgt.xml");
    assert!(um.contains("<Configuration>"));
    assert!(um.contains("<Property name=\"dataSource\">jdbc/WSO2CarbonDB</Property>"));

    let ds = entry_text(&zip, "repository/conf/datasources/master-datasources.xml");
    assert!(ds.contains("<!--datasource>") && ds.contains("</datasource-->"));
    assert!(ds.contains("<name>jdbc/WSO2AM_DB</name>") && ds.contains("<name>WSO2AM_DB</name>"));
}

#[test]
fn dbscripts_have_the_probe_tables_and_the_zero_date_default() {
    let (_dir, zip) = default_dist();
    let reg = entry_text(&zip, "dbscripts/mysql.sql");
    assert!(reg.contains("CREATE TABLE UM_TENANT ("));
    assert!(reg.contains("CREATE TABLE IF NOT EXISTS REG_RESOURCE ("));
    assert!(reg.contains("REG_CREATED_TIME    TIMESTAMP NOT NULL DEFAULT 0,"));
    let am = entry_text(&zip, "dbscripts/apimgt/mysql.sql");
    assert!(am.contains("CREATE TABLE IF NOT EXISTS AM_SUBSCRIBER ("));
    assert!(am.contains("CREATE TABLE IDN_BASE_TABLE ("));
    assert!(am.contains("INSERT INTO IDN_BASE_TABLE"));
}

#[test]
fn jdbc_jar_is_a_zip_with_manifest_and_driver_class() {
    let dir = tempfile::tempdir().unwrap();
    let dist = write_dist(dir.path(), &DistOptions::default()).unwrap();
    let mut jar = read_zip(&dist.jdbc_jar.path);
    let mut manifest = String::new();
    jar.by_name("META-INF/MANIFEST.MF")
        .unwrap()
        .read_to_string(&mut manifest)
        .unwrap();
    assert!(manifest.starts_with("Manifest-Version: 1.0\r\n"));
    assert!(manifest.contains("Implementation-Version: 5.1.49"));
    let mut class = Vec::new();
    jar.by_name("com/mysql/jdbc/Driver.class")
        .unwrap()
        .read_to_end(&mut class)
        .unwrap();
    assert_eq!(&class[..4], &[0xCA, 0xFE, 0xBA, 0xBE]);
}
