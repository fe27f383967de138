//! Timing of the SSH transport against running hosts (used by scripts/bench-transport.sh;
//! a benchmark, not a test: it prints figures and asserts nothing).
//!
//! Usage: `transport_bench KEY KNOWN_HOSTS UPLOAD_FILE SHA256 ADDRESS...`
//! Prints `name value` lines: connect+auth per host, per-command round trip on one
//! connection, concurrent throughput, upload MB/s.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_transport::{Auth, Cmd, SshTarget, SshTransport, Transport};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "median {:.2} ms, p90 {:.2} ms, n {}",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        samples.len()
    )
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, known_hosts, upload, sha256, addresses @ ..] = args.as_slice() else {
        eprintln!("usage: transport_bench KEY KNOWN_HOSTS UPLOAD_FILE SHA256 ADDRESS...");
        std::process::exit(2);
    };
    let target = |address: &str| {
        let mut t = SshTarget::new(address, address, known_hosts);
        t.auth = vec![Auth::KeyFile {
            path: PathBuf::from(key),
            passphrase: None,
        }];
        t
    };

    // connect + auth (TCP, banner, key exchange, host key check, ed25519 auth), per host
    for address in addresses {
        let mut samples = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let host = SshTransport::connect(target(address))
                .await
                .expect("connect");
            samples.push(start.elapsed());
            host.close().await;
        }
        println!("connect_auth {address}: {}", summary(samples));
    }

    // first command on a fresh connection (includes sshd's session setup)
    let mut samples = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let host = SshTransport::connect(target(&addresses[0]))
            .await
            .expect("connect");
        host.exec_ok(&Cmd::new("true")).await.expect("true");
        samples.push(start.elapsed());
        host.close().await;
    }
    println!("connect_to_first_command: {}", summary(samples));

    // sequential round trips on one connection
    let host = Arc::new(
        SshTransport::connect(target(&addresses[0]))
            .await
            .expect("connect"),
    );
    host.exec_ok(&Cmd::new("true")).await.expect("warm up");
    let mut samples = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        host.exec_ok(&Cmd::new("true")).await.expect("true");
        samples.push(start.elapsed());
    }
    println!("command_round_trip: {}", summary(samples));

    // 200 commands, as many in flight as the channel limit allows (4)
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { host.exec_ok(&Cmd::new("true")).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().expect("true");
    }
    let all = start.elapsed();
    println!(
        "concurrent_200_commands: {:.0} ms total, {:.2} ms per command",
        ms(all),
        ms(all) / 200.0
    );

    // raw transport throughput: stream the file into `cat > /dev/null`
    let size = std::fs::metadata(upload).expect("upload file").len() as f64;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let file = tokio::fs::File::open(upload).await.expect("upload file");
        let cmd = Cmd::new("sh")
            .arg("-c")
            .arg("cat > /dev/null")
            .stdin_reader(file);
        let start = Instant::now();
        host.exec_ok(&cmd).await.expect("stream");
        rates.push(size / start.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    println!("stream_to_dev_null_mb_per_s: median {:.0} MB/s", rates[1]);

    // streamed upload: temp file, sha256sum on the far side, fsync, rename
    let mut rates = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        host.upload(upload.as_ref(), "/opt/bench-upload.bin", sha256, None, None)
            .await
            .expect("upload");
        rates.push(size / start.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "upload_mb_per_s: median {:.0} MB/s (runs: {})",
        rates[1],
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    host.close().await;
}
