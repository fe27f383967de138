//! No panic on anything a host sends: every file operation, built on `exec`, returns a
//! value or an error for any output and exit status, and so do the parsers beneath
//! them (`stat` lines, stderr tails).
//!
//! A transport that replays one canned `Output` stands in for the host, so the
//! properties run the real operations (`read_file`, `write_files_atomic`, `upload`,
//! `stat`, `exec_ok`) without a host. The cases found are regular regression tests
//! below.

use apim_transport::files::parse_stat;
use apim_transport::output::stderr_tail;
use apim_transport::{Cmd, ExitStatus, FileWrite, Output, Owner, Result, Transport};
use async_trait::async_trait;
use proptest::prelude::*;

/// A host that answers every command with the same output.
struct Replay(Output);

#[async_trait]
impl Transport for Replay {
    fn host(&self) -> &str {
        "h"
    }

    async fn exec(&self, _cmd: &Cmd) -> Result<Output> {
        Ok(self.0.clone())
    }
}

/// Bytes a host might send back: the words the operations look for, numbers at the
/// edges of their types, multi-byte UTF-8 and invalid bytes.
fn host_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => "[0-9a-f ]{0,12}".prop_map(String::into_bytes),
        2 => prop::sample::select(vec![
            "apim-wrote", "apim-wrote\n", "\n", "sha256 ", "81a4 ", "41ed", "a1ff", "root",
            "-1", "4294967296", "18446744073709551616", "9223372036854775808", "é", "€",
            "\u{fffd}", "🦀", "\r\n",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..max).prop_map(|v| v.concat())
}

fn status() -> impl Strategy<Value = ExitStatus> {
    prop_oneof![
        prop::sample::select(vec![0, 1, 2, 44, 65, 126, 255, -1]).prop_map(ExitStatus::Code),
        any::<i32>().prop_map(ExitStatus::Code),
        "[A-Zé]{0,6}".prop_map(ExitStatus::Signal),
    ]
}

fn output() -> impl Strategy<Value = Output> {
    (status(), host_bytes(24), host_bytes(48)).prop_map(|(status, stdout, stderr)| Output {
        stdout,
        stderr,
        status,
    })
}

/// Runs every file operation against a host that answers `out`; each result (and
/// each error's message) is computed in full.
fn every_operation(out: Output, files: usize) -> Vec<String> {
    let host = Replay(out);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), b"archive").unwrap();
    let writes: Vec<FileWrite> = (0..files)
        .map(|i| FileWrite {
            path: ["/a", "/b", "/c"][i % 3],
            bytes: b"x",
            mode: (i == 1).then_some(0o640),
            owner: (i == 2).then(|| Owner::with_group("svc", "svc")),
            was: None,
        })
        .collect();
    rt.block_on(async {
        vec![
            format!("{:?}", host.read_file("/a").await),
            format!("{:?}", host.stat("/a").await),
            format!("{:?}", host.write_file_atomic("/a", b"x", None, None).await),
            match host.write_files_atomic(&writes).await {
                Ok(()) => "ok".into(),
                Err(e) => format!("{} {}", e.written, e.error),
            },
            format!(
                "{:?}",
                host.upload(local.path(), "/opt/a.zip", "ABC", None, None)
                    .await
            ),
            format!(
                "{:?}",
                host.exec_ok(&Cmd::new("true"))
                    .await
                    .map_err(|e| e.to_string())
            ),
            format!(
                "{:?}",
                host.read_file("/a").await.map_err(|e| e.to_string())
            ),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn file_operations_never_panic_on_any_output(out in output(), files in 0usize..4) {
        every_operation(out, files);
    }

    #[test]
    fn parse_stat_never_panics(
        text in prop_oneof![
            host_bytes(16).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            prop::collection::vec(
                prop_oneof!["[0-9a-f]{1,9}", "-?[0-9]{1,20}", Just("é".to_string())],
                5..9,
            )
            .prop_map(|f| f.join(" ")),
        ]
    ) {
        let _ = parse_stat(&text);
    }

    #[test]
    fn stderr_tail_never_panics_and_stays_bounded(bytes in prop_oneof![
        host_bytes(64),
        // Long lines of multi-byte characters around the 2000-byte bound.
        (1990usize..2010, prop::sample::select(vec!["é", "€", "🦀", "a"]))
            .prop_map(|(n, c)| c.repeat(n).into_bytes()),
    ]) {
        let tail = stderr_tail(&bytes);
        prop_assert!(tail.len() <= 2000 + "...".len());
    }
}

// ---------------------------------------------------------------------------------------
// Regressions

#[test]
fn a_negative_or_oversized_stat_number_is_an_error_not_a_wrapped_value() {
    // should: `stat` on the host prints unsigned numbers; anything else is a parse error,
    // not a size of 18446744073709551615 or a uid of another user.
    assert!(parse_stat("81a4 -1 0 0 1 root root").is_err());
    assert!(parse_stat("81a4 1 -1 0 1 root root").is_err());
    assert!(parse_stat("81a4 1 0 4294967296 1 root root").is_err());
    assert!(
        parse_stat("81a4 1 0 0 -5 root root").is_ok(),
        "mtime may be negative"
    );
    let st = parse_stat("81a4 18446744073709551615 4294967295 0 1 a b").unwrap();
    assert_eq!((st.size, st.uid), (u64::MAX, u32::MAX));
}

#[test]
fn a_batch_that_confirms_more_files_than_it_was_given_is_still_judged_by_its_status() {
    // should: extra `apim-wrote` lines (a host's profile echoing, say) neither panic nor
    // turn a failed batch into a success.
    let out = Output {
        stdout: b"apim-wrote\napim-wrote\napim-wrote\n".to_vec(),
        stderr: b"disk full".to_vec(),
        status: ExitStatus::Code(1),
    };
    let results = every_operation(out, 1);
    assert!(results[3].starts_with("1 "), "{}", results[3]);
    assert!(results[3].contains("disk full"), "{}", results[3]);
}

#[test]
fn upload_hash_mismatch_reports_whatever_the_host_said() {
    let out = Output {
        stdout: vec![],
        stderr: "sha256 é€\u{fffd}".as_bytes().to_vec(),
        status: ExitStatus::Code(65),
    };
    let upload = &every_operation(out, 0)[4];
    assert!(
        upload.contains("HashMismatch") && upload.contains("é€"),
        "{upload}"
    );
}
