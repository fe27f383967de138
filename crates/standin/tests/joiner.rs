//! The stand-in's cluster join: all well-known members are tried at once, as Hazelcast's
//! TCP/IP joiner does, so silent members cost one connection timeout in all.

use std::process::Command;

#[test]
fn silent_well_known_members_cost_one_timeout_in_all() {
    // should: ten silent members and one live one take about 3 s, not 10 x 3 s.
    let dir = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{dir}/tests/py/wka_join.py"))
        .arg(format!("{dir}/dist/bin/standin-carbon.py"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
