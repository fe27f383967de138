//! End-to-end: `mode = "remote"` artifacts, downloaded by each host itself from a
//! mirror and checked against the pinned sha256 there, so a host never runs bytes the
//! inventory did not pin.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use apim_lab::Layout;
use support::*;

/// A tiny HTTP mirror on the lab's controller address: serves the files of `dir`
/// (whatever they hold at request time), except that a peer other than the controller
/// gets `dir/bad/<path>` while that exists; records who asked for what.
struct Mirror {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mirror {
    fn start(address: std::net::Ipv4Addr, dir: PathBuf) -> Mirror {
        let listener = TcpListener::bind((address, 0)).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut stream) = stream else { continue };
                let peer = stream.peer_addr().unwrap().ip().to_string();
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let _ = reader.read_line(&mut line);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                log.lock().unwrap().push(format!("{peer} {path}"));
                let name = path.trim_start_matches('/');
                let bad = dir.join("bad").join(name);
                let file = if peer != address.to_string() && bad.exists() {
                    bad
                } else {
                    dir.join(name)
                };
                let reply = match std::fs::read(&file) {
                    Ok(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend(body);
                        r
                    }
                    Err(_) => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&reply);
            }
        });
        Mirror { base, requests }
    }
}

#[test]
fn remote_mode_hosts_download_from_the_mirror_and_a_wrong_file_is_refused() {
    // should: let each host fetch the pinned archive and jar itself, and refuse a mirror serving other bytes
    if !lab_tests_enabled("remote_mode_hosts_download_from_the_mirror_and_a_wrong_file_is_refused")
    {
        return;
    }
    let lab = Deployable::up(Layout::AllInOne, 0.5);
    let inv = lab.inventory.clone();
    let served = tempfile::tempdir().unwrap();
    let zip = lab.dist.zip.path.clone();
    let jar = lab.dist.jdbc_jar.path.clone();
    // The controller gets the real files; the hosts first get the jar's bytes under
    // the archive's name.
    std::fs::copy(&zip, served.path().join("wso2am-1.9.0.zip")).unwrap();
    std::fs::copy(
        &jar,
        served.path().join("mysql-connector-java-5.1.49-bin.jar"),
    )
    .unwrap();
    std::fs::create_dir(served.path().join("bad")).unwrap();
    std::fs::copy(&jar, served.path().join("bad/wso2am-1.9.0.zip")).unwrap();
    let mirror = Mirror::start(lab.controller_address(), served.path().to_path_buf());

    let text_inv = std::fs::read_to_string(&inv).unwrap();
    let without_paths: String = text_inv
        .lines()
        .filter(|l| !l.starts_with("path = "))
        .map(|l| format!("{l}\n"))
        .collect();
    let remote = without_paths
        .replacen(
            "[distribution]\n",
            &format!("[distribution]\nmode = \"remote\"\nurl = \"{}/wso2am-1.9.0.zip\"\n", mirror.base),
            1,
        )
        .replacen(
            "[jdbc_driver]\n",
            &format!(
                "[jdbc_driver]\nmode = \"remote\"\nurl = \"{}/mysql-connector-java-5.1.49-bin.jar\"\n",
                mirror.base
            ),
            1,
        );
    assert_ne!(remote, text_inv);
    std::fs::write(&inv, remote).unwrap();
    let inv = inv.to_str().unwrap();

    let cache = tempfile::tempdir().unwrap();
    let apply = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_apim-deploy"))
            .args(["apply", "--start-timeout", "60", inv])
            .env("XDG_CACHE_HOME", cache.path())
            .output()
            .unwrap()
    };
    let refused = apply();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let said = text(&refused.stdout) + &text(&refused.stderr);
    assert!(said.contains("but") && said.contains("is pinned"), "{said}");
    let gone = lab
        .exec(
            "app1",
            &["test", "-e", "/opt/wso2/.apim-deploy/dist/wso2am-1.9.0.zip"],
        )
        .unwrap();
    assert!(!gone.status.success(), "a wrong download must not be kept");

    std::fs::remove_dir_all(served.path().join("bad")).unwrap();
    let applied = apply();
    assert!(
        applied.status.success(),
        "{}{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    let on_host = exec(
        &lab,
        "app1",
        &["sha256sum", "/opt/wso2/.apim-deploy/dist/wso2am-1.9.0.zip"],
    );
    assert!(on_host.starts_with(&lab.dist.zip.sha256), "{on_host}");
    let app1 = lab.host("app1").unwrap().address.to_string();
    let asked = mirror.requests.lock().unwrap().clone();
    assert!(
        asked.contains(&format!("{app1} /wso2am-1.9.0.zip")),
        "{asked:?}"
    );
    assert!(
        asked.contains(&format!("{app1} /mysql-connector-java-5.1.49-bin.jar")),
        "{asked:?}"
    );
    assert_no_secret_in(
        &[
            &refused.stdout,
            &refused.stderr,
            &applied.stdout,
            &applied.stderr,
        ],
        &secrets(&lab),
    );
    for dir in ["KeyManager", "Gateway", "Publisher", "Store"] {
        assert!(
            server_pid(&lab, "app1", &format!("/opt/wso2/{dir}")).is_some(),
            "{dir} runs"
        );
    }
}
