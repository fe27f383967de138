//! Tests for `LocalTransport`: the trait's semantics on this machine, with real
//! processes and real files (no SSH needed).

mod common;

use std::time::{Duration, Instant};

use apim_transport::{Cmd, ExitStatus, FileKind, LocalTransport, Owner, Transport, TransportError};
use sha2::{Digest, Sha256};

fn host() -> LocalTransport {
    LocalTransport::new().named("local")
}

#[tokio::test]
async fn arguments_arrive_unchanged() {
    // Should: every argument reaches the process byte for byte, nothing is interpreted.
    let out = host().exec_ok(&common::print_nasty()).await.unwrap();
    common::assert_nasty_arrived(&out.stdout);
    assert!(
        !std::path::Path::new("/tmp/apim-pwned").exists()
            && !std::path::Path::new("/tmp/apim-pwned2").exists(),
        "a quoted $(...) or backtick was executed"
    );
}

#[tokio::test]
async fn stdin_stdout_stderr_and_exit_code() {
    // Should: stdin is fed, both streams and the exit code come back separately.
    let script = "cat; echo to-stderr >&2; exit 3";
    let out = host()
        .exec(&Cmd::new("sh").arg("-c").arg(script).stdin_bytes("hello\n"))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr, b"to-stderr\n");
    assert_eq!(out.status, ExitStatus::Code(3));
}

#[tokio::test]
async fn signal_is_reported_by_name() {
    // Should: a command killed by a signal reports the signal, not an exit code.
    let out = host()
        .exec(&Cmd::new("sh").arg("-c").arg("kill -TERM $$"))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Signal("TERM".into()));
}

#[tokio::test]
async fn exec_ok_reports_failure_with_stderr() {
    // Should: a failed command's error names the host, the command and stderr.
    let err = host()
        .exec_ok(&Cmd::new("ls").arg("/nonexistent-apim"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("local: `ls /nonexistent-apim` failed with exit code 2"),
        "{text}"
    );
    assert!(text.contains("No such file"), "{text}");
}

#[tokio::test]
async fn nul_argument_is_refused_before_running() {
    // Should: a NUL byte cannot be passed on a command line, so it is an error.
    let err = host()
        .exec(&Cmd::new("echo").arg("a\0b"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::InvalidCommand { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn timeout_kills_the_command_and_its_children() {
    // Should: a command over its limit fails quickly and leaves no process behind.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("late");
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let start = Instant::now();
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg(script)
        .timeout(Duration::from_millis(300));
    let err = host().exec(&cmd).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !marker.exists(),
        "the background child survived the timeout"
    );
}

#[tokio::test]
async fn current_dir_and_env() {
    // Should: directory and environment apply to the command; values are quoted.
    let dir = tempfile::tempdir().unwrap();
    let cmd = Cmd::new("sh")
        .arg("-c")
        .arg("pwd; printf %s \"$V\"")
        .current_dir(dir.path().to_str().unwrap())
        .env("V", "a $(b) c");
    let out = host().exec_ok(&cmd).await.unwrap();
    let want = format!("{}\na $(b) c", dir.path().canonicalize().unwrap().display());
    assert_eq!(out.stdout_text(), want);
}

#[tokio::test]
async fn read_file_absent_empty_and_present() {
    // Should: an absent file is None, an empty one is Some(empty).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let p = path.to_str().unwrap();
    assert_eq!(host().read_file(p).await.unwrap(), None);
    std::fs::write(&path, b"").unwrap();
    assert_eq!(host().read_file(p).await.unwrap(), Some(vec![]));
    std::fs::write(&path, b"x\0y").unwrap();
    assert_eq!(host().read_file(p).await.unwrap(), Some(b"x\0y".to_vec()));
}

#[tokio::test]
async fn atomic_write_keeps_mode_of_existing_file() {
    // Should: replacing a file keeps its mode; a new file gets the requested mode.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf file.xml");
    let p = path.to_str().unwrap();
    std::fs::write(&path, b"old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    host()
        .write_file_atomic(p, b"new content", None, None)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new content");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );

    let fresh = dir.path().join("fresh");
    host()
        .write_file_atomic(fresh.to_str().unwrap(), b"x", Some(0o640), None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "temp files left behind: {leftovers:?}");
}

#[tokio::test]
async fn atomic_write_with_owner() {
    // Should: an explicit owner is applied (needs root; skipped otherwise).
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: atomic_write_with_owner needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owned");
    let owner = Owner::with_group("nobody", "nogroup");
    host()
        .write_file_atomic(path.to_str().unwrap(), b"x", None, Some(&owner))
        .await
        .unwrap();
    let st = host().stat(path.to_str().unwrap()).await.unwrap().unwrap();
    assert_eq!((st.user.as_str(), st.group.as_str()), ("nobody", "nogroup"));
}

#[tokio::test]
async fn upload_verifies_hash_and_renames() {
    // Should: a streamed upload lands with the right content; a wrong expected hash
    // fails with HashMismatch and leaves the target untouched.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let sha = hex::encode(Sha256::digest(&data));
    let dst = dir.path().join("dst.bin");
    let d = dst.to_str().unwrap();
    host().upload(&src, d, &sha, None, None).await.unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    std::fs::write(&dst, b"previous").unwrap();
    let err = host()
        .upload(&src, d, &"0".repeat(64), None, None)
        .await
        .unwrap_err();
    match &err {
        TransportError::HashMismatch { actual, .. } => assert_eq!(actual, &sha),
        other => panic!("expected HashMismatch, got {other}"),
    }
    assert_eq!(std::fs::read(&dst).unwrap(), b"previous");
}

#[tokio::test]
async fn stat_reports_kind_size_and_mode() {
    // Should: stat tells files, dirs and symlinks apart and reports absent paths as None.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"12345").unwrap();
    std::os::unix::fs::symlink(&file, dir.path().join("l")).unwrap();
    let h = host();
    let st = h.stat(file.to_str().unwrap()).await.unwrap().unwrap();
    assert_eq!((st.kind, st.size), (FileKind::File, 5));
    let d = h.stat(dir.path().to_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(d.kind, FileKind::Dir);
    let l = h
        .stat(dir.path().join("l").to_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(
        h.stat(dir.path().join("none").to_str().unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn script_runs_in_one_call_with_args_and_stdin() {
    // Should: a script gets its arguments as $1.. and its stdin.
    let out = host()
        .script(
            "read -r line; echo \"$1:$line\"",
            &["a b"],
            Some(b"in\n".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "a b:in\n");
}

#[tokio::test]
async fn usable_as_trait_object() {
    // Should: hosts can be shared as Arc<dyn Transport>.
    let hosts: Vec<std::sync::Arc<dyn Transport>> = vec![std::sync::Arc::new(host())];
    let out = hosts[0].exec_ok(&Cmd::new("true")).await.unwrap();
    assert!(out.status.success());
}

/// A host that records every command line it is asked to run.
struct Recording {
    inner: LocalTransport,
    lines: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Transport for Recording {
    fn host(&self) -> &str {
        self.inner.host()
    }
    async fn exec(&self, cmd: &Cmd) -> apim_transport::Result<apim_transport::Output> {
        self.lines.lock().unwrap().push(cmd.render(false).unwrap());
        self.inner.exec(cmd).await
    }
}

#[tokio::test]
async fn a_batch_writes_every_file_in_one_command_line_free_of_content_and_hashes() {
    // Should: one command writes every file in order (the last write of a path wins),
    // bytes exact (NULs, a line equal to the here-document's delimiter, empty files),
    // modes applied, no temp file left, and neither content nor hash on a command line.
    use apim_transport::FileWrite;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (a, b, empty) = (path("a b.xml"), path("b"), path("empty"));
    let secret = b"<password>s3cret</password>\nAPIM_B64\n\0\xff".to_vec();
    let host = Recording {
        inner: host(),
        lines: Default::default(),
    };
    let files = [
        FileWrite {
            path: &a,
            bytes: b"first",
            mode: None,
            owner: None,
            was: None,
        },
        FileWrite {
            path: &b,
            bytes: &secret,
            mode: Some(0o600),
            owner: None,
            was: None,
        },
        FileWrite {
            path: &empty,
            bytes: b"",
            mode: None,
            owner: None,
            was: None,
        },
        FileWrite {
            path: &a,
            bytes: b"second",
            mode: Some(0o640),
            owner: None,
            was: None,
        },
    ];
    host.write_files_atomic(&files).await.unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"second");
    assert_eq!(std::fs::read(&b).unwrap(), secret);
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
    let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode(&a), mode(&b)), (0o640, 0o600));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "temp files left"
    );
    let lines = host.lines.lock().unwrap();
    assert_eq!(lines.len(), 1, "one round trip: {lines:?}");
    let hash = hex::encode(Sha256::digest(&secret));
    assert!(
        !lines[0].contains("s3cret") && !lines[0].contains(&hash),
        "{}",
        lines[0]
    );
}

#[tokio::test]
async fn a_batch_stops_at_the_first_failure_and_says_how_far_it_got() {
    // Should: files before the failing one are written, the failing one and every
    // later one are not, and the error names the failing path.
    use apim_transport::FileWrite;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ok, bad, after) = (path("ok"), path("missing-dir/bad"), path("after"));
    let files = [
        FileWrite {
            path: &ok,
            bytes: b"1",
            mode: None,
            owner: None,
            was: None,
        },
        FileWrite {
            path: &bad,
            bytes: b"2",
            mode: None,
            owner: None,
            was: None,
        },
        FileWrite {
            path: &after,
            bytes: b"3",
            mode: None,
            owner: None,
            was: None,
        },
    ];
    let err = host().write_files_atomic(&files).await.unwrap_err();
    assert_eq!(err.written, 1);
    assert!(
        err.error.to_string().contains("missing-dir/bad"),
        "{}",
        err.error
    );
    assert_eq!(std::fs::read(&ok).unwrap(), b"1");
    assert!(!std::path::Path::new(&after).exists());
}

#[tokio::test]
async fn a_write_told_what_the_file_was_refuses_a_file_that_is_otherwise() {
    // Should: a write whose file is not the content (or absence) it was told stops that
    // file and the rest of the batch with a "stale plan" error and leaves the file as it
    // is; the right content or absence lets it through.
    use apim_transport::{FileWrite, Was};
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a").to_str().unwrap().to_string();
    let b = dir.path().join("b").to_str().unwrap().to_string();
    std::fs::write(&a, b"edited by hand\n").unwrap();
    let sha = |bytes: &[u8]| Was::Sha256(hex::encode(Sha256::digest(bytes)));
    fn file<'a>(path: &'a str, bytes: &'a [u8], was: Option<Was>) -> FileWrite<'a> {
        FileWrite {
            path,
            bytes,
            mode: None,
            owner: None,
            was,
        }
    }
    let h = host();
    let e = h
        .write_files_atomic(&[
            file(&a, b"new\n", Some(sha(b"as planned\n"))),
            file(&b, b"new\n", Some(Was::Absent)),
        ])
        .await
        .unwrap_err();
    assert_eq!(e.written, 0);
    assert!(e.error.to_string().contains("stale plan"), "{}", e.error);
    assert_eq!(std::fs::read(&a).unwrap(), b"edited by hand\n");
    assert!(!std::path::Path::new(&b).exists());
    let e = h
        .write_files_atomic(&[file(&a, b"new\n", Some(Was::Absent))])
        .await
        .unwrap_err();
    assert!(e.error.to_string().contains("stale plan"), "{}", e.error);
    h.write_files_atomic(&[
        file(&a, b"new\n", Some(sha(b"edited by hand\n"))),
        file(&b, b"new\n", Some(Was::Absent)),
    ])
    .await
    .unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"new\n");
    assert_eq!(std::fs::read(&b).unwrap(), b"new\n");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "temp files left"
    );
}

#[tokio::test]
async fn an_upload_lands_with_its_final_owner_and_mode_new_or_replacing() {
    // Should: a new file and a file that was root 0600 both end up nobody:nogroup 0644,
    // for a small upload and a large one sent in parts (each path sets them on the temp
    // file before the rename), and nothing is left beside the target.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let owner = Owner::with_group("nobody", "nogroup");
    for (name, len) in [("small.jar", 4096usize), ("large.zip", 17 << 20)] {
        let src = dir.path().join(format!("src-{name}"));
        let data: Vec<u8> = (0..len as u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let sha = hex::encode(Sha256::digest(&data));
        let existing = dir.path().join(format!("old-{name}"));
        std::fs::write(&existing, b"old").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o600)).unwrap();
        let new = dir.path().join(format!("new-{name}"));
        for dst in [&existing, &new] {
            let d = dst.to_str().unwrap();
            host()
                .upload(&src, d, &sha, Some(0o644), Some(&owner))
                .await
                .unwrap();
            let st = host().stat(d).await.unwrap().unwrap();
            assert_eq!(
                (st.user.as_str(), st.group.as_str(), st.mode),
                ("nobody", "nogroup", 0o644),
                "{d}"
            );
            assert_eq!(std::fs::read(dst).unwrap(), data);
        }
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("apim-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
