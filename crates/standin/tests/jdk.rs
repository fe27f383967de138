//! The stand-in JDKs without a lab: reproducible vendor-style archives that keep the
//! executable bit, and a `java` that answers and refuses like the JVM it stands for.
//! Also the start script's JAVA_HOME checks, which fail before any server runs.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use apim_standin::jdk::{ArchiveFormat, JdkVersion, install_jdk_tree, write_jdk_archive};
use apim_standin::{DistOptions, TOP_DIR, write_dist};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn java(home: &Path, args: &[&str]) -> Output {
    Command::new(home.join("bin/java"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn archives_are_reproducible_per_version_and_format() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for version in JdkVersion::ALL {
        for format in [ArchiveFormat::TarGz, ArchiveFormat::Zip] {
            let first = write_jdk_archive(a.path(), version, format).unwrap();
            let second = write_jdk_archive(b.path(), version, format).unwrap();
            assert_eq!(first.sha256, second.sha256, "{version} {format}");
            assert_eq!(
                first.path,
                a.path().join(version.archive_name(format)),
                "{version} {format}"
            );
            // Writing again over the old copy gives the same bytes.
            let again = write_jdk_archive(a.path(), version, format).unwrap();
            assert_eq!(again.sha256, first.sha256);
            digests.push(first.sha256);
        }
    }
    let mut unique = digests.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        digests.len(),
        "two archives with the same bytes"
    );
    assert_eq!(
        JdkVersion::V1_7.archive_name(ArchiveFormat::TarGz),
        "jdk-7u80-linux-x64.tar.gz"
    );
}

#[test]
fn tar_gz_has_one_top_directory_and_an_executable_java() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = write_jdk_archive(dir.path(), JdkVersion::V1_8, ArchiveFormat::TarGz).unwrap();
    let file = std::fs::File::open(&artifact.path).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut modes = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert!(path.starts_with("jdk1.8.0_202/"), "{path}");
        assert_eq!(entry.header().mtime().unwrap(), 1_433_246_400, "{path}");
        assert_eq!(entry.header().uid().unwrap(), 0, "{path}");
        modes.push((path, entry.header().mode().unwrap()));
    }
    assert!(modes.contains(&("jdk1.8.0_202/bin/java".into(), 0o755)));
    assert!(modes.contains(&("jdk1.8.0_202/release".into(), 0o644)));

    // Unpacked as an operator would, the JVM runs.
    let out_dir = tempfile::tempdir().unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&artifact.path)
        .arg("-C")
        .arg(out_dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let home = out_dir.path().join("jdk1.8.0_202");
    assert_eq!(mode(&home.join("bin/java")), 0o755);
    let out = java(&home, &["-version"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).starts_with("java version \"1.8.0_202\"\n"));
}

#[test]
fn zip_has_one_top_directory_and_keeps_the_executable_bit() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = write_jdk_archive(dir.path(), JdkVersion::V17, ArchiveFormat::Zip).unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&artifact.path).unwrap()).unwrap();
    for i in 0..zip.len() {
        let name = zip.by_index(i).unwrap().name().unwrap().to_string();
        assert!(name.starts_with("jdk-17.0.2/"), "{name}");
    }
    assert_eq!(
        zip.by_name("jdk-17.0.2/bin/java").unwrap().unix_mode(),
        Some(0o100755)
    );
    let out_dir = tempfile::tempdir().unwrap();
    zip.extract(out_dir.path()).unwrap();
    let home = out_dir.path().join("jdk-17.0.2");
    assert_eq!(mode(&home.join("bin/java")) & 0o111, 0o111);
    let out = java(&home, &["-version"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).starts_with("openjdk version \"17.0.2\" 2022-01-18\n"));
}

#[test]
fn java_answers_version_like_the_real_jvms() {
    let root = tempfile::tempdir().unwrap();
    let expected = [
        (
            JdkVersion::V1_7,
            "java version \"1.7.0_80\"\nJava(TM) SE Runtime Environment (build 1.7.0_80-b15)\n\
             Java HotSpot(TM) 64-Bit Server VM (build 24.80-b11, mixed mode)\n",
            "java full version \"1.7.0_80-b15\"\n",
        ),
        (
            JdkVersion::V1_8,
            "java version \"1.8.0_202\"\nJava(TM) SE Runtime Environment (build 1.8.0_202-b08)\n\
             Java HotSpot(TM) 64-Bit Server VM (build 25.202-b08, mixed mode)\n",
            "java full version \"1.8.0_202-b08\"\n",
        ),
        (
            JdkVersion::V17,
            "openjdk version \"17.0.2\" 2022-01-18\nOpenJDK Runtime Environment (build 17.0.2+8-86)\n\
             OpenJDK 64-Bit Server VM (build 17.0.2+8-86, mixed mode, sharing)\n",
            "openjdk full version \"17.0.2+8-86\"\n",
        ),
    ];
    for (version, version_text, full) in expected {
        let home = install_jdk_tree(root.path(), version).unwrap();
        assert_eq!(home, root.path().join(version.dir_name()));
        assert_eq!(mode(&home.join("bin/java")), 0o755);
        let out = java(&home, &["-version"]);
        assert!(out.status.success(), "{version}: {out:?}");
        assert_eq!(text(&out.stderr), version_text);
        assert!(out.stdout.is_empty());
        let out = java(&home, &["-fullversion"]);
        assert!(out.status.success());
        assert_eq!(text(&out.stderr), full);
    }
    // Installing again replaces the tree.
    install_jdk_tree(root.path(), JdkVersion::V1_7).unwrap();
    let release = std::fs::read_to_string(root.path().join("jdk1.7.0_80/release")).unwrap();
    assert!(release.contains("JAVA_VERSION=\"1.7.0_80\""));
}

#[test]
fn java_17_refuses_permgen_and_endorsed_dirs_and_java_8_warns() {
    let root = tempfile::tempdir().unwrap();
    let jdk17 = install_jdk_tree(root.path(), JdkVersion::V17).unwrap();
    let out = java(&jdk17, &["-Xms256m", "-XX:MaxPermSize=256m", "-version"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Unrecognized VM option 'MaxPermSize=256m'\n\
         Error: Could not create the Java Virtual Machine.\n\
         Error: A fatal exception has occurred. Program will exit.\n"
    );
    let out = java(
        &jdk17,
        &[
            "-Djava.endorsed.dirs=/x/lib/endorsed",
            "org.wso2.carbon.bootstrap.Bootstrap",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("-Djava.endorsed.dirs=/x/lib/endorsed is not supported."),
        "{err}"
    );
    assert!(err.contains("Error: Could not create the Java Virtual Machine.\n"));

    let jdk8 = install_jdk_tree(root.path(), JdkVersion::V1_8).unwrap();
    let out = java(&jdk8, &["-XX:MaxPermSize=256m", "-version"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).starts_with(
        "Java HotSpot(TM) 64-Bit Server VM warning: ignoring option MaxPermSize=256m; \
         support was removed in 8.0\njava version \"1.8.0_202\""
    ));

    // A program argument after the main class is not a launcher option.
    let jdk7 = install_jdk_tree(root.path(), JdkVersion::V1_7).unwrap();
    let out = java(&jdk7, &["com.example.Main", "-version"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "Error: Could not find or load main class com.example.Main\n"
    );
    // Carbon's main class without a carbon.home holding the stand-in server.
    let out = java(&jdk7, &["org.wso2.carbon.bootstrap.Bootstrap"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Could not find or load main class"));
}

/// The distribution unpacked into a temporary directory; returns (dir, CARBON_HOME).
fn unpacked_dist() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dist = write_dist(&dir.path().join("dist"), &DistOptions::default()).unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&dist.zip.path).unwrap()).unwrap();
    zip.extract(dir.path()).unwrap();
    let home = dir.path().join(TOP_DIR);
    (dir, home)
}

/// `wso2server.sh ARGS` with exactly the environment given (plus PATH), cwd /.
fn wso2server(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(home.join("bin/wso2server.sh"));
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir("/");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn start_script_checks_java_before_any_command() {
    let (dir, home) = unpacked_dist();
    // No JAVA_HOME: JAVACMD is the relative `java`, which the working directory lacks.
    for args in [&["start"][..], &["version"], &["-DportOffset=1"]] {
        let out = wso2server(&home, &[], args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(
            text(&out.stdout),
            "Error: JAVA_HOME is not defined correctly.\n CARBON cannot execute java\n",
            "{args:?}"
        );
    }
    // A JAVA_HOME without bin/java.
    let bogus = dir.path().join("no-jdk");
    std::fs::create_dir_all(&bogus).unwrap();
    let out = wso2server(&home, &[("JAVA_HOME", bogus.to_str().unwrap())], &["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        format!(
            "Error: JAVA_HOME is not defined correctly.\n CARBON cannot execute {}/bin/java\n",
            bogus.display()
        )
    );
    // An executable JAVACMD but no JAVA_HOME: the second check.
    let jdk = install_jdk_tree(dir.path(), JdkVersion::V1_7).unwrap();
    let javacmd = jdk.join("bin/java");
    let out = wso2server(&home, &[("JAVACMD", javacmd.to_str().unwrap())], &["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "You must set the JAVA_HOME variable before running CARBON.\n"
    );
    // With a JDK, `version` works and no server is involved.
    let out = wso2server(&home, &[("JAVA_HOME", jdk.to_str().unwrap())], &["version"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("WSO2 API Manager v1.9.0"));
}

#[test]
fn foreground_run_on_java_17_dies_before_the_server_starts() {
    let (dir, home) = unpacked_dist();
    let jdk = install_jdk_tree(dir.path(), JdkVersion::V17).unwrap();
    let out = wso2server(&home, &[("JAVA_HOME", jdk.to_str().unwrap())], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            " Starting WSO2 Carbon (in unsupported JDK)\n [ERROR] CARBON is supported only on JDK 1.6 and 1.7\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains(&format!(
        "JAVA_HOME environment variable is set to {}",
        jdk.display()
    )));
    assert_eq!(
        text(&out.stderr),
        "Unrecognized VM option 'MaxPermSize=256m'\n\
         Error: Could not create the Java Virtual Machine.\n\
         Error: A fatal exception has occurred. Program will exit.\n"
    );
    assert!(!home.join("wso2carbon.pid").exists());
    let mut log = String::new();
    if let Ok(mut file) = std::fs::File::open(home.join("repository/logs/wso2carbon.log")) {
        file.read_to_string(&mut log).unwrap();
    }
    assert!(log.is_empty(), "{log}");
}
