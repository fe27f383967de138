//! `Lab::shape`: the links between the controller and the hosts get the delay and rate asked
//! for, measured from the controller with OpenSSH through the shaper.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use apim_lab::testing::{TestLab, lab_tests_enabled};
use apim_lab::{LabSpec, Shape};

fn apps_only(hosts: usize) -> impl FnOnce(&mut LabSpec) {
    move |spec| {
        spec.app_hosts = hosts;
        spec.with_db = false;
    }
}

/// Median round trip of one line through `cat` on the host over one SSH session.
fn echo_rtt(lab: &TestLab, host: &str) -> Duration {
    let mut ssh = lab.ssh_command(host, "root", 5).unwrap();
    let mut child = ssh
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut samples = Vec::new();
    for i in 0..9 {
        let t0 = Instant::now();
        writeln!(stdin, "ping {i}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("ping {i}"));
        samples.push(t0.elapsed());
    }
    drop(stdin);
    child.wait().unwrap();
    samples.sort();
    samples[samples.len() / 2]
}

/// Seconds to push `mb` MiB into `cat > /dev/null` on the host.
fn push_seconds(lab: &TestLab, host: &str, mb: usize) -> f64 {
    let mut ssh = lab.ssh_command(host, "root", 5).unwrap();
    let mut child = ssh
        .arg("cat >/dev/null")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let block = vec![0x5au8; 1 << 20];
    let t0 = Instant::now();
    for _ in 0..mb {
        stdin.write_all(&block).unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    t0.elapsed().as_secs_f64()
}

#[test]
fn shaped_links_have_the_delay_and_rate_asked_for() {
    // should: 20 ms each way gives about 40 ms round trips and 40 Mbit/s about 5 MB/s, the
    // shaper counts the bytes, and unshape restores the plain link.
    if !lab_tests_enabled("shaped_links_have_the_delay_and_rate_asked_for") {
        return;
    }
    let lab = TestLab::up(apps_only(2)).unwrap();
    let plain = echo_rtt(&lab, "app1");
    assert!(
        plain < Duration::from_millis(15),
        "unshaped round trip {plain:?}"
    );

    lab.shape(&Shape {
        delay_ms: 20,
        up_mbit: 40.0,
        down_mbit: 40.0,
        shared_uplink: true,
    })
    .unwrap();
    assert_eq!(lab.current_shape().unwrap().delay_ms, 20);
    let rtt = echo_rtt(&lab, "app1");
    assert!(
        rtt >= Duration::from_millis(39) && rtt < Duration::from_millis(60),
        "shaped round trip {rtt:?}"
    );
    let secs = push_seconds(&lab, "app2", 10);
    let mb_per_s = 10.0 * 1.048576 / secs;
    // 40 Mbit/s = 5 MB/s; the session's set-up and SSH framing cost a little.
    assert!(
        (3.8..=5.3).contains(&mb_per_s),
        "shaped rate {mb_per_s:.2} MB/s ({secs:.2} s)"
    );
    std::thread::sleep(Duration::from_millis(300));
    let counted = lab.shaped_bytes().unwrap();
    let app2 = counted.iter().find(|(h, _)| h == "app2").unwrap().1;
    assert!(app2.up >= 10 << 20, "counted {app2:?}");

    lab.unshape().unwrap();
    let after = echo_rtt(&lab, "app1");
    assert!(
        after < Duration::from_millis(15),
        "unshaped again {after:?}"
    );
}
