//! `apim-deploy facts INVENTORY [--json]`: what is on each host, read in one round trip.
//!
//! Connects to every host of the inventory concurrently (through `crate::connect`, the
//! only place that opens connections) and runs one bash probe per host: OS, kernel, CPU
//! count, memory, free disk under the install root, Java, and what of apim-deploy's work
//! is already there (service user, distribution archives under
//! `<install root>/.apim-deploy/dist`, and per node directory: present, unpacked marker,
//! restart-pending marker, running pid). A host that cannot be reached is reported with
//! its error and does not stop the others. Exit status: 0 when every host answered.

use std::path::PathBuf;
use std::process::ExitCode;

use apim_transport::{Transport, TransportError};
use serde::Serialize;

use crate::engine::limit::Limit;
use crate::engine::shell::Shell;
use crate::inventory::{Inventory, Secrets};
use crate::topology::Topology;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub limit: super::LimitArg,
}

pub fn exec(args: Args, shell: &Shell) -> anyhow::Result<ExitCode> {
    let limit = args.limit.parse()?;
    let (inventory, topology) =
        Topology::load(&args.inventory, Secrets::Skip).map_err(|e| anyhow::anyhow!("{e}"))?;
    topology.check_limit(&limit).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(gather(&inventory, &topology, &limit))?;
    if shell.is_json() {
        shell.print_json(&report)?;
    } else {
        shell.print(&render_table(&report))?;
    }
    let all_answered = report.iter().all(|h| h.error.is_none());
    Ok(if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What one host told us, or why it could not.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HostFacts {
    pub host: String,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The parsed answer of [`PROBE_SCRIPT`].
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Probe {
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub cpus: Option<u32>,
    pub mem_total_kib: Option<u64>,
    pub mem_available_kib: Option<u64>,
    /// The install root, or its nearest existing ancestor, whose filesystem was measured.
    pub disk_path: Option<String>,
    pub disk_free_kib: Option<u64>,
    /// First line of `java -version`, if a Java was found.
    pub java: Option<String>,
    pub java_path: Option<String>,
    pub service_user_exists: bool,
    pub distributions: Vec<DistFile>,
    pub nodes: Vec<NodeFacts>,
}

/// A distribution archive already pushed to the host.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DistFile {
    pub path: String,
    pub size: u64,
}

/// One node directory (CARBON_HOME) of this host.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeFacts {
    pub dir: String,
    pub present: bool,
    /// sha256 of the archive it was unpacked from (`.apim-deploy/unpacked`).
    pub unpacked_from: Option<String>,
    pub restart_pending: bool,
    /// The pid in `wso2carbon.pid`, when that process is alive.
    pub running_pid: Option<u32>,
}

/// `$1` install root, `$2` java_home or empty, `$3` service user, `$4..` node dirs.
/// Prints `key=value` lines; never fails on a missing tool.
pub const PROBE_SCRIPT: &str = r#"root=$1 java_home=$2 svc=$3
shift 3
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
echo "kernel=$(uname -r)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
awk '/^MemTotal:/ {print "mem_total_kib=" $2} /^MemAvailable:/ {print "mem_available_kib=" $2}' /proc/meminfo
d=$root
while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname -- "$d"); done
echo "disk_path=$d"
df -Pk -- "$d" | awk 'NR == 2 {print "disk_free_kib=" $4}'
j=
if [ -n "$java_home" ] && [ -x "$java_home/bin/java" ]; then j=$java_home/bin/java; else j=$(command -v java); fi
if [ -n "$j" ]; then echo "java=$("$j" -version 2>&1 | head -n 1)"; echo "java_path=$j"; fi
if id -u -- "$svc" >/dev/null 2>&1; then echo service_user=present; else echo service_user=absent; fi
for z in "$root"/.apim-deploy/dist/*.zip; do
  if [ -f "$z" ]; then echo "dist=$(stat -c %s -- "$z") $z"; fi
done
for dir in "$@"; do
  if [ ! -d "$dir" ]; then echo "node=absent - no - $dir"; continue; fi
  sha=-
  if [ -f "$dir/.apim-deploy/unpacked" ]; then sha=$(head -c 64 -- "$dir/.apim-deploy/unpacked"); fi
  pending=no
  if [ -e "$dir/.apim-deploy/restart-pending" ]; then pending=yes; fi
  pid=-
  p=$(tr -d '\000' < "$dir/wso2carbon.pid" 2>/dev/null | tr -dc 0-9)
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then pid=$p; fi
  echo "node=present ${sha:--} $pending $pid $dir"
done
"#;

/// Connects to every host concurrently and probes each in one round trip.
pub async fn gather(
    inventory: &Inventory,
    topology: &Topology,
    limit: &Limit,
) -> anyhow::Result<Vec<HostFacts>> {
    let picked: Vec<String> = topology
        .hosts_selected_by(limit)
        .iter()
        .map(|h| h.name.to_string())
        .collect();
    let targets: Vec<_> = crate::connect::targets(inventory, topology)?
        .into_iter()
        .filter(|t| picked.contains(&t.name))
        .collect();
    let java_home = inventory
        .install
        .java_home
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let addresses: Vec<(String, String)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.address.clone()))
        .collect();
    let mut connections = crate::connect::connect_each(targets).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (host, address)) in addresses.into_iter().enumerate() {
        let node_dirs: Vec<String> = topology
            .nodes
            .iter()
            .filter(|n| n.host.to_string() == host)
            .map(|n| n.dir.clone())
            .collect();
        let mut args = vec![
            topology.install_root.clone(),
            java_home.clone(),
            topology.service_user.to_string(),
        ];
        args.extend(node_dirs);
        let connection = connections
            .remove(&host)
            .unwrap_or_else(|| Err("no connection".into()));
        tasks.spawn(async move {
            let outcome = match connection {
                Ok(t) => {
                    let result = probe(t.as_ref(), &args).await.map_err(|e| e.to_string());
                    t.close().await;
                    result
                }
                Err(e) => Err(e),
            };
            let (facts, error) = match outcome {
                Ok(probe) => (Some(probe), None),
                Err(e) => (None, Some(e)),
            };
            (
                index,
                HostFacts {
                    host,
                    address,
                    facts,
                    error,
                },
            )
        });
    }
    let mut report = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        report.push(joined?);
    }
    report.sort_by_key(|(index, _)| *index);
    Ok(report.into_iter().map(|(_, facts)| facts).collect())
}

/// Runs the probe on any transport (one `exec`) and parses its answer.
pub async fn probe(host: &dyn Transport, args: &[String]) -> Result<Probe, TransportError> {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host.script(PROBE_SCRIPT, &argv, None).await?;
    let out = out.require_success(host.host(), "facts probe")?;
    Ok(parse_probe(&out.stdout_text()))
}

/// Parses the probe's `key=value` lines; unknown keys are ignored.
pub fn parse_probe(text: &str) -> Probe {
    let mut probe = Probe::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key {
            "os" => probe.os = Some(value.to_string()),
            "kernel" => probe.kernel = Some(value.to_string()),
            "cpus" => probe.cpus = value.parse().ok(),
            "mem_total_kib" => probe.mem_total_kib = value.parse().ok(),
            "mem_available_kib" => probe.mem_available_kib = value.parse().ok(),
            "disk_path" => probe.disk_path = Some(value.to_string()),
            "disk_free_kib" => probe.disk_free_kib = value.parse().ok(),
            "java" => probe.java = Some(value.to_string()),
            "java_path" => probe.java_path = Some(value.to_string()),
            "service_user" => probe.service_user_exists = value == "present",
            "dist" => {
                if let Some((size, path)) = value.split_once(' ') {
                    let size = size.parse().unwrap_or(0);
                    probe.distributions.push(DistFile {
                        path: path.to_string(),
                        size,
                    });
                }
            }
            "node" => {
                if let Some(node) = parse_node(value) {
                    probe.nodes.push(node);
                }
            }
            _ => {}
        }
    }
    probe
}

/// `present|absent SHA|- yes|no PID|- DIR` (DIR last: it may contain spaces).
fn parse_node(value: &str) -> Option<NodeFacts> {
    let mut fields = value.splitn(5, ' ');
    let present = fields.next()? == "present";
    let sha = fields.next()?;
    let pending = fields.next()? == "yes";
    let pid = fields.next()?;
    let dir = fields.next()?.to_string();
    Some(NodeFacts {
        dir,
        present,
        unpacked_from: (sha != "-").then(|| sha.to_string()),
        restart_pending: pending,
        running_pid: pid.parse().ok(),
    })
}

/// One row per host, then one line per host saying what of apim-deploy's work is there.
pub fn render_table(report: &[HostFacts]) -> String {
    let header = [
        "HOST",
        "ADDRESS",
        "OS",
        "CPUS",
        "MEMORY (avail/total)",
        "FREE DISK",
        "JAVA",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for h in report {
        let mut row = vec![h.host.clone(), h.address.clone()];
        match &h.facts {
            Some(p) => row.extend([
                p.os.clone().unwrap_or_else(|| "?".into()),
                p.cpus.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                format!("{}/{}", gib(p.mem_available_kib), gib(p.mem_total_kib)),
                format!(
                    "{} on {}",
                    gib(p.disk_free_kib),
                    p.disk_path.as_deref().unwrap_or("?")
                ),
                p.java
                    .as_deref()
                    .map(short_java)
                    .unwrap_or_else(|| "none".into()),
            ]),
            None => row.push("unreachable".into()),
        }
        rows.push(row);
    }
    let mut text = super::table::aligned(&rows, "");
    text.push('\n');
    for h in report {
        match (&h.facts, &h.error) {
            (_, Some(error)) => text.push_str(&format!("{}: error: {error}\n", h.host)),
            (Some(p), None) => text.push_str(&format!("{}: {}\n", h.host, work_summary(p))),
            (None, None) => {}
        }
    }
    text
}

fn work_summary(p: &Probe) -> String {
    let mut parts = vec![format!(
        "service user {}",
        if p.service_user_exists {
            "present"
        } else {
            "absent"
        }
    )];
    if p.distributions.is_empty() {
        parts.push("no distribution archive".into());
    }
    for d in &p.distributions {
        parts.push(format!("archive {} ({})", d.path, mib(d.size)));
    }
    for n in &p.nodes {
        let state = if !n.present {
            "absent".to_string()
        } else {
            let mut s = vec![match &n.unpacked_from {
                Some(sha) => format!("unpacked from {}", &sha[..sha.len().min(12)]),
                None => "present, not unpacked by apim-deploy".into(),
            }];
            if n.restart_pending {
                s.push("restart pending".into());
            }
            s.push(match n.running_pid {
                Some(pid) => format!("running (pid {pid})"),
                None => "stopped".into(),
            });
            s.join(", ")
        };
        parts.push(format!("{}: {state}", n.dir));
    }
    parts.join("; ")
}

fn gib(kib: Option<u64>) -> String {
    match kib {
        Some(k) => format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)),
        None => "?".into(),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `openjdk version "17.0.9" 2023-10-17` -> `openjdk 17.0.9`.
fn short_java(line: &str) -> String {
    let vendor = line.split_whitespace().next().unwrap_or("java");
    match line.split('"').nth(1) {
        Some(version) => format!("{vendor} {version}"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apim_transport::LocalTransport;

    const CAPTURED: &str = "os=Debian GNU/Linux 12 (bookworm)\nkernel=6.1.0-18-amd64\ncpus=2\n\
        mem_total_kib=24576000\nmem_available_kib=20000000\ndisk_path=/opt\ndisk_free_kib=71303168\n\
        java=openjdk version \"17.0.9\" 2023-10-17\njava_path=/usr/bin/java\nservice_user=present\n\
        dist=262144000 /opt/wso2/.apim-deploy/dist/wso2am-1.9.0.zip\n\
        node=present 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef yes 4242 /opt/wso2/Key Manager\n\
        node=absent - no - /opt/wso2/Gateway\n";

    #[test]
    fn captured_probe_output_is_parsed() {
        let p = parse_probe(CAPTURED);
        assert_eq!(p.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!((p.cpus, p.disk_free_kib), (Some(2), Some(71303168)));
        assert_eq!(
            p.distributions,
            vec![DistFile {
                path: "/opt/wso2/.apim-deploy/dist/wso2am-1.9.0.zip".into(),
                size: 262144000
            }]
        );
        assert_eq!(p.nodes[0].dir, "/opt/wso2/Key Manager");
        assert_eq!(
            (p.nodes[0].restart_pending, p.nodes[0].running_pid),
            (true, Some(4242))
        );
        assert!(!p.nodes[1].present);
        assert_eq!(short_java(p.java.as_deref().unwrap()), "openjdk 17.0.9");
    }

    #[test]
    fn table_reports_unreachable_hosts_with_their_error() {
        let report = vec![
            HostFacts {
                host: "app1".into(),
                address: "127.0.10.1".into(),
                facts: Some(parse_probe(CAPTURED)),
                error: None,
            },
            HostFacts {
                host: "app2".into(),
                address: "127.0.10.2".into(),
                facts: None,
                error: Some("app2: cannot connect".into()),
            },
        ];
        let table = render_table(&report);
        assert!(table.contains("app2  127.0.10.2  unreachable"), "{table}");
        assert!(
            table.contains("app2: error: app2: cannot connect"),
            "{table}"
        );
        assert!(table.contains("/opt/wso2/Key Manager: unpacked from 0123456789ab, restart pending, running (pid 4242)"), "{table}");
    }

    #[tokio::test]
    async fn probe_script_reads_a_real_install_root() {
        // Should: the probe, run by bash on this machine, finds the archive, the markers
        // and the running pid in a real directory tree.
        let root = tempfile::tempdir().unwrap();
        let r = root.path().to_str().unwrap().to_string();
        let node = format!("{r}/Gateway");
        std::fs::create_dir_all(format!("{r}/.apim-deploy/dist")).unwrap();
        std::fs::write(format!("{r}/.apim-deploy/dist/wso2am-1.9.0.zip"), b"PK").unwrap();
        std::fs::create_dir_all(format!("{node}/.apim-deploy")).unwrap();
        std::fs::write(
            format!("{node}/.apim-deploy/unpacked"),
            "ab".repeat(32) + "\n",
        )
        .unwrap();
        std::fs::write(
            format!("{node}/wso2carbon.pid"),
            format!("{}\0\0", std::process::id()),
        )
        .unwrap();
        let args = vec![
            r.clone(),
            String::new(),
            "root".into(),
            node.clone(),
            format!("{r}/Store"),
        ];
        let p = probe(&LocalTransport::new(), &args).await.unwrap();
        assert!(p.cpus.unwrap() >= 1 && p.mem_total_kib.unwrap() > 0 && p.disk_free_kib.is_some());
        assert_eq!(p.disk_path.as_deref(), Some(r.as_str()));
        assert!(p.service_user_exists);
        assert_eq!(p.distributions.len(), 1);
        assert_eq!(p.distributions[0].size, 2);
        let gw = &p.nodes[0];
        assert_eq!(
            (gw.present, gw.unpacked_from.clone(), gw.running_pid),
            (true, Some("ab".repeat(32)), Some(std::process::id()))
        );
        assert!(!p.nodes[1].present);
    }
}
