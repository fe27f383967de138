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

use std::collections::BTreeMap;

use apim_transport::Transport;
use serde::Serialize;

use crate::engine::limit::Limit;
use crate::engine::modules::{java, service};
use crate::engine::probe::{Fact, quote};
use crate::engine::report::short_digest;
use crate::engine::shell::Shell;
use crate::inventory::{Inventory, Secrets};
use crate::topology::Topology;

/// The name and version of `facts --json`'s document (docs/json.md).
pub const FACTS_SCHEMA: &str = "apim-deploy.facts/1";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The inventory file (TOML).
    pub inventory: PathBuf,
    /// Print one JSON document instead of a table (schema apim-deploy.facts/1: docs/json.md).
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
        shell.print_json(&serde_json::json!({ "schema": FACTS_SCHEMA, "hosts": report }))?;
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
    /// The Java runtimes on the host, and the one a node would run on.
    pub java: Option<JavaFacts>,
    pub service_user_exists: bool,
    pub distributions: Vec<DistFile>,
    pub nodes: Vec<NodeFacts>,
}

/// The host's JDKs as the playbook's Java requirement sees them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JavaFacts {
    /// Supported versions, preferred first.
    pub wanted: Vec<String>,
    /// The JDK the nodes would run on; `None`: no supported one.
    pub chosen: Option<java::Jdk>,
    pub found: Vec<java::Jdk>,
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
    /// The node's server pid, by the playbook's running rule (its pid file names a
    /// live process that carries the node's marker).
    pub running_pid: Option<u32>,
}

/// What every host is asked, as `key=value` lines: the machine, and what of
/// apim-deploy's own work is there. Reads `$root`, `$svc` and `$dirs` (node
/// directories). Never fails on a missing tool. The node's running state and the
/// Java runtime are asked separately, with the playbook's own probes.
pub const HOST_PROBE: &str = r#"if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=${PRETTY_NAME:-$NAME}"; fi
echo "kernel=$(uname -r)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"
awk '/^MemTotal:/ {print "mem_total_kib=" $2} /^MemAvailable:/ {print "mem_available_kib=" $2}' /proc/meminfo
d=$root
while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname -- "$d"); done
echo "disk_path=$d"
df -Pk -- "$d" | awk 'NR == 2 {print "disk_free_kib=" $4}'
if id -u -- "$svc" >/dev/null 2>&1; then echo service_user=present; else echo service_user=absent; fi
for z in "$root"/.apim-deploy/dist/*.zip; do
  if [ -f "$z" ]; then echo "dist=$(stat -c %s -- "$z") $z"; fi
done
for dir in "${dirs[@]}"; do
  if [ ! -d "$dir" ]; then echo "node=absent - no - $dir"; continue; fi
  sha=-
  if [ -f "$dir/.apim-deploy/unpacked" ]; then sha=$(head -c 64 -- "$dir/.apim-deploy/unpacked"); fi
  pending=no
  if [ -e "$dir/.apim-deploy/restart-pending" ]; then pending=yes; fi
  echo "node=present ${sha:--} $pending - $dir"
done
"#;

/// [`HOST_PROBE`] with its variables set (every value single-quoted).
fn host_probe(root: &str, service_user: &str, dirs: &[String]) -> String {
    let dirs: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
    format!(
        "root={}; svc={}; dirs=({})\n{HOST_PROBE}",
        quote(root),
        quote(service_user),
        dirs.join(" ")
    )
}

/// What describes each node: the playbook's `service` task rendered for it (its
/// running rule and Java requirement), keyed by node label.
fn node_services(
    inventory: &Inventory,
    topology: &Topology,
) -> anyhow::Result<BTreeMap<String, service::Params>> {
    let run = crate::wso2::describe(inventory, topology, &crate::wso2::RunSettings::default());
    crate::operate::service_params(&crate::wso2::builtin_playbook(), &run)
}

/// Connects to every host concurrently and probes each in one round trip.
pub async fn gather(
    inventory: &Inventory,
    topology: &Topology,
    limit: &Limit,
) -> anyhow::Result<Vec<HostFacts>> {
    let services = node_services(inventory, topology)?;
    let picked: Vec<String> = topology
        .hosts_selected_by(limit)
        .iter()
        .map(|h| h.name.to_string())
        .collect();
    let targets: Vec<_> = crate::connect::targets(inventory, topology)?
        .into_iter()
        .filter(|t| picked.contains(&t.name))
        .collect();
    let addresses: Vec<(String, String)> = targets
        .iter()
        .map(|t| (t.name.clone(), t.address.clone()))
        .collect();
    // Every node of the cluster shares one Java requirement: ask every host, also
    // one without nodes (it may be about to get some).
    let java = services.values().find_map(|p| p.java.clone());
    let mut connections = crate::connect::connect_each(targets).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (host, address)) in addresses.into_iter().enumerate() {
        let nodes: Vec<(String, service::Params)> = topology
            .nodes
            .iter()
            .filter(|n| n.host.to_string() == host)
            .filter_map(|n| services.get(&n.id).map(|p| (n.dir.clone(), p.clone())))
            .collect();
        let questions = Questions::new(
            &topology.install_root,
            &topology.service_user.to_string(),
            &nodes,
            java.clone(),
        );
        let connection = connections
            .remove(&host)
            .unwrap_or_else(|| Err("no connection".into()));
        tasks.spawn(async move {
            let outcome = match connection {
                Ok(t) => {
                    let result = questions.ask(t.as_ref()).await;
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

/// One host's questions: the machine and apim-deploy's files, each node's running
/// state by the service module's rule, and the Java runtime by the playbook's
/// requirement. Asked in one probe (one round trip).
pub struct Questions {
    host: Fact,
    nodes: Vec<(String, Fact)>,
    java: Option<java::Requirement>,
}

impl Questions {
    pub fn new(
        root: &str,
        service_user: &str,
        nodes: &[(String, service::Params)],
        java: Option<java::Requirement>,
    ) -> Self {
        let dirs: Vec<String> = nodes.iter().map(|(d, _)| d.clone()).collect();
        Questions {
            host: Fact::Shell(host_probe(root, service_user, &dirs)),
            nodes: nodes
                .iter()
                .map(|(d, p)| (d.clone(), Fact::Shell(service::running_probe(p))))
                .collect(),
            java,
        }
    }

    pub async fn ask(&self, t: &dyn Transport) -> Result<Probe, String> {
        let mut all = vec![self.host.clone()];
        all.extend(self.nodes.iter().map(|(_, f)| f.clone()));
        if let Some(j) = &self.java {
            all.push(Fact::Shell(j.probe()));
        }
        let facts = crate::engine::plan::probe_host(t, &all).await?;
        let text = |f: &Fact| match f {
            Fact::Shell(s) => facts
                .shell(s)
                .map(|(_, o)| String::from_utf8_lossy(o).into_owned()),
            _ => None,
        };
        let mut probe = parse_probe(&text(&self.host).unwrap_or_default());
        for (dir, fact) in &self.nodes {
            let pid = text(fact)
                .and_then(|o| service::parse_running(o.as_bytes()))
                .map(|r| r.pid);
            if let Some(n) = probe.nodes.iter_mut().find(|n| &n.dir == dir) {
                n.running_pid = pid;
            }
        }
        if let Some(j) = &self.java {
            let answer = text(&Fact::Shell(j.probe())).unwrap_or_default();
            let (found, chosen) = java::parse_probe(&answer);
            probe.java = Some(JavaFacts {
                wanted: j.versions.clone(),
                chosen,
                found,
            });
        }
        Ok(probe)
    }
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
                java_cell(p.java.as_ref()),
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
                Some(sha) => format!("unpacked from {}", short_digest(sha)),
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

/// `1.7.0_80`, or what is wrong: `17.0.2 (unsupported: needs 1.7 or 1.8)`, `none (needs ...)`.
fn java_cell(java: Option<&JavaFacts>) -> String {
    let Some(j) = java else {
        return "?".into();
    };
    if let Some(c) = &j.chosen {
        return c.version.clone();
    }
    let wanted = j.wanted.join(" or ");
    match j.found.iter().find(|f| !f.version.is_empty()) {
        Some(f) => format!("{} (unsupported: needs {wanted})", f.version),
        None => format!("none (needs {wanted})"),
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

    fn node_params(dir: &str, marker: &str) -> service::Params {
        let mut t = toml::Table::new();
        t.insert("dir".into(), dir.into());
        t.insert("user".into(), "root".into());
        t.insert("start".into(), toml::Value::Array(vec!["true".into()]));
        t.insert("stop".into(), toml::Value::Array(vec!["true".into()]));
        t.insert("pid_file".into(), format!("{dir}/wso2carbon.pid").into());
        t.insert("log".into(), format!("{dir}/log").into());
        t.insert(
            "process_markers".into(),
            toml::Value::Array(vec![marker.into()]),
        );
        t.insert("ready".into(), "ready".into());
        t.insert("health_port".into(), 1.into());
        crate::engine::modules::params(crate::engine::modules::Kind::Service, &t).unwrap()
    }

    #[tokio::test]
    async fn the_probe_reads_a_real_install_root_with_the_playbooks_running_rule() {
        // Should: the probe, run by bash on this machine, finds the archive, the markers,
        // the running pid (a live process with the node's marker), and no JDK in an empty
        // search path, saying which versions it needs.
        let root = tempfile::tempdir().unwrap();
        let r = root.path().to_str().unwrap().to_string();
        let node = format!("{r}/Gate way");
        std::fs::create_dir_all(format!("{r}/.apim-deploy/dist")).unwrap();
        std::fs::write(format!("{r}/.apim-deploy/dist/wso2am-1.9.0.zip"), b"PK").unwrap();
        std::fs::create_dir_all(format!("{node}/.apim-deploy")).unwrap();
        std::fs::write(
            format!("{node}/.apim-deploy/unpacked"),
            "ab".repeat(32) + "\n",
        )
        .unwrap();
        let marker = format!("-Dcarbon.home={node}");
        let mut server = std::process::Command::new("bash")
            .args(["-c", "sleep 30; true", &marker])
            .spawn()
            .unwrap();
        std::fs::write(
            format!("{node}/wso2carbon.pid"),
            format!("{}\0\0", server.id()),
        )
        .unwrap();
        // The same pid file for a node whose marker the process does not carry.
        let store = format!("{r}/Store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::copy(
            format!("{node}/wso2carbon.pid"),
            format!("{store}/wso2carbon.pid"),
        )
        .unwrap();
        let java = java::Requirement {
            home: String::new(),
            versions: vec!["1.7".into(), "1.8".into()],
            search: vec![format!("{r}/no-jvm-here/*")],
            login_user: String::new(),
        };
        let nodes = vec![
            (node.clone(), node_params(&node, &marker)),
            (
                store.clone(),
                node_params(&store, "-Dcarbon.home=/elsewhere"),
            ),
            (
                format!("{r}/Absent"),
                node_params(&format!("{r}/Absent"), "x"),
            ),
        ];
        let questions = Questions::new(&r, "root", &nodes, Some(java));
        let p = questions.ask(&LocalTransport::new()).await.unwrap();
        server.kill().unwrap();
        server.wait().unwrap();
        assert!(p.cpus.unwrap() >= 1 && p.mem_total_kib.unwrap() > 0 && p.disk_free_kib.is_some());
        assert_eq!(p.disk_path.as_deref(), Some(r.as_str()));
        assert!(p.service_user_exists);
        assert_eq!(p.distributions.len(), 1);
        assert_eq!(p.distributions[0].size, 2);
        let gw = &p.nodes[0];
        assert_eq!(
            (gw.present, gw.unpacked_from.clone(), gw.running_pid),
            (true, Some("ab".repeat(32)), Some(server.id()))
        );
        assert_eq!(p.nodes[1].running_pid, None, "another node's process");
        assert!(!p.nodes[2].present);
        assert_eq!(java_cell(p.java.as_ref()), "none (needs 1.7 or 1.8)");
    }
}
