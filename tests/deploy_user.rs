//! End-to-end: a deploy user with passwordless sudo instead of root, and Carbon
//! servers that run as the service user, never as root (a compromised server must not
//! own the host).

mod support;

use apim_lab::Layout;
use support::*;

#[test]
fn a_sudo_deploy_user_can_apply_and_servers_run_as_the_service_user() {
    // should: deploy through `sudo -n` as the lab's non-root user, and start every node as wso2carbon
    if !lab_tests_enabled("a_sudo_deploy_user_can_apply_and_servers_run_as_the_service_user") {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = &lab.inventory;
    let text_inv = std::fs::read_to_string(inv).unwrap();
    let as_deploy = text_inv
        .replacen(
            "user = \"root\"",
            &format!("user = \"{}\"", lab.deploy_user()),
            1,
        )
        .replacen("sudo = false", "sudo = true", 1);
    assert_ne!(
        as_deploy, text_inv,
        "the lab inventory has [ssh] user and sudo keys"
    );
    std::fs::write(inv, as_deploy).unwrap();
    let inv = inv.to_str().unwrap();

    let out = cli(&["apply", "--start-timeout", "60", inv]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    for dir in ["KeyManager", "Gateway", "Publisher", "Store"] {
        let home = format!("/opt/wso2/{dir}");
        let pid = server_pid(&lab, "app1", &home).expect("node running");
        let uid = exec(&lab, "app1", &["stat", "-c", "%U", &format!("/proc/{pid}")]);
        assert_eq!(uid.trim(), "wso2carbon", "{dir} runs as the service user");
        let owner = exec(
            &lab,
            "app1",
            &["stat", "-c", "%U", &format!("{home}/repository/logs")],
        );
        assert_eq!(
            owner.trim(),
            "wso2carbon",
            "{dir} files belong to the service user"
        );
    }
    let again = cli(&["plan", inv]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    assert_no_secret_in(&[&out.stdout, &out.stderr, &again.stdout], &secrets(&lab));
}
