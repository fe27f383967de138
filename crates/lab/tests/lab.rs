//! End-to-end tests of the lab: real namespaces, sshd and MariaDB (root; APIM_LAB_TESTS=1).
//! They check the hosts themselves, never only the tool's output.

use apim_lab::testing::{TestLab, lab_tests_enabled};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn up_gives_each_host_its_own_name_and_address() {
    // should: boot every planned host with its own hostname and eth0 address
    if !lab_tests_enabled("up_gives_each_host_its_own_name_and_address") {
        return;
    }
    let lab = TestLab::up(|spec| spec.app_hosts = 2).unwrap();
    for host in lab.hosts() {
        let out = lab
            .exec(
                &host.name,
                &["sh", "-c", "hostname; ip -4 -o addr show dev eth0"],
            )
            .unwrap();
        let text = stdout(&out);
        assert!(text.starts_with(&host.name), "{text}");
        assert!(
            text.contains(&format!("inet {}/24", host.address)),
            "{text}"
        );
    }
}
