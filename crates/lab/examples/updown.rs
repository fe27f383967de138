//! Times `Lab::up` and `Lab::down` (benchmark for docs/benchmarks.md; root on Linux).
//!
//! `cargo run -p apim-lab --example updown -- [RUNS] [APP_HOSTS] [all-keys]`: RUNS cycles on
//! a leased test prefix, with a db host; `all-keys` adds RSA host keys (the CLI's default).

use std::time::{Duration, Instant};

use apim_lab::testing::{lease, test_spec};
use apim_lab::{HostKeyType, Lab};

fn main() -> Result<(), apim_lab::LabError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let app_hosts: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let all_keys = args.iter().any(|a| a == "all-keys");
    let lease = lease()?;
    let mut spec = test_spec(&lease);
    spec.app_hosts = app_hosts;
    if all_keys {
        spec.host_key_types = HostKeyType::ALL.to_vec();
    }
    let (mut ups, mut downs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let start = Instant::now();
        let lab = Lab::up(&spec)?;
        ups.push(start.elapsed());
        let start = Instant::now();
        lab.down()?;
        downs.push(start.elapsed());
    }
    println!(
        "{app_hosts} app hosts + db, host keys {:?}, {runs} runs",
        spec.host_key_types
    );
    println!("up:   {}", summary(&mut ups));
    println!("down: {}", summary(&mut downs));
    Ok(())
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let all: Vec<String> = times
        .iter()
        .map(|t| format!("{:.2}", t.as_secs_f64()))
        .collect();
    format!(
        "min {:.2} s, median {:.2} s, max {:.2} s ({})",
        times[0].as_secs_f64(),
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
        all.join(" ")
    )
}
