//! No panic on anything a host sends: `facts` parses and renders any probe output, and
//! `status`'s node lines render any values a host reported. (The engine's probe and
//! modules, the transport's file operations and `status`'s own parsers have theirs in
//! their crates and modules.)
//!
//! A panic while rendering one host's answer would lose the report of every host.

use apim_deploy::cli::facts::{HostFacts, parse_probe, render_table};
use apim_deploy::operate::events::{NodeState, OpEvent, plain};
use proptest::prelude::*;

/// Text shaped like the facts probe's `key=value` lines, with odd values.
fn probe_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "os=",
            "kernel=",
            "cpus=",
            "mem_total_kib=",
            "mem_available_kib=",
            "disk_path=",
            "disk_free_kib=",
            "java=",
            "java_path=",
            "service_user=present",
            "dist=",
            "node=",
            "present ",
            "absent ",
            "- ",
            "yes ",
            "no ",
            "\"",
            "=",
            "\n",
            " ",
            "-1",
            "18446744073709551616",
            "é",
            "€",
            "\u{fffd}",
            "🦀",
            "\t",
        ])
        .prop_map(str::to_string),
        "[0-9a-f]{0,16}",
        any::<String>().prop_map(|s| s.chars().take(6).collect()),
        // A whole node line whose marker digest holds an odd character near its start.
        ("[0-9a-f]{0,14}", "[é€🦀\u{fffd} ]?", "[0-9a-f]{0,50}")
            .prop_map(|(a, odd, b)| format!("node=present {a}{odd}{b} no - /opt/app\n")),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn report(text: &str, error: Option<String>) -> Vec<HostFacts> {
    vec![HostFacts {
        host: "app1".into(),
        address: "127.0.60.1".into(),
        facts: Some(parse_probe(text)),
        error,
    }]
}

fn node_line(dist: Option<&str>, version: Option<&str>, health: &str) -> String {
    let state = NodeState {
        target: "app1/web".into(),
        host: "app1".into(),
        role: "web".into(),
        reachable: true,
        installed: dist.is_some(),
        dist_sha256: dist.map(str::to_string),
        version: version.map(str::to_string),
        health: health.into(),
        dist_current: Some(false),
        ..Default::default()
    };
    let (sh, _) = apim_deploy::engine::shell::Shell::capture();
    plain(&sh, &OpEvent::NodeStatus(Box::new(state)))
}

proptest! {
    #[test]
    fn facts_parse_and_render_any_probe_output(text in probe_text(), error in any::<Option<String>>()) {
        let report = report(&text, error);
        let _ = render_table(&report);
        let _ = serde_json::to_string(&report).unwrap();
    }

    #[test]
    fn status_renders_any_reported_values(
        dist in any::<Option<String>>(),
        version in any::<Option<String>>(),
        health in any::<String>(),
        error in any::<String>(),
        log_tail in any::<Vec<String>>(),
    ) {
        let _ = node_line(dist.as_deref(), version.as_deref(), &health);
        let (sh, _) = apim_deploy::engine::shell::Shell::capture();
        let _ = plain(&sh, &OpEvent::RollStopped {
            node: "app1/web".into(),
            error,
            log_tail,
            untouched: vec![],
        });
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: a host's marker file is read with `head -c 64`, which can cut a character,
// and shown shortened. A byte slice at 12 panicked inside a multi-byte character.

#[test]
fn facts_show_an_odd_unpacked_marker_without_panicking() {
    let text = "node=present abcdefghijk€rest no - /opt/app\n";
    let table = render_table(&report(text, None));
    assert!(table.contains("unpacked from abcdefghijk€"), "{table}");
}

#[test]
fn status_shows_an_odd_distribution_digest_without_panicking() {
    let line = node_line(Some("abcdefghijk€rest"), Some("1.0"), "not running");
    assert!(
        line.contains("(abcdefghijk€, not the inventory's)"),
        "{line}"
    );
    let line = node_line(Some("0aaa0000a\0\u{fffd}"), None, "not running");
    assert!(line.contains("0aaa0000a\0\u{fffd}"), "{line}");
}
