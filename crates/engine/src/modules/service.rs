//! `service`: a Carbon node started (or restarted) through its own
//! `bin/wso2server.sh`, then confirmed healthy.
//!
//! 1.9's script has quirks the tool must not be fooled by (facts §4): `start`
//! returns at once and drops extra arguments, `stop` returns before the JVM
//! exits, and `wso2carbon.pid` is NUL-padded and left behind after a stop. So
//! "running" means: the pid file names a live process whose command line
//! mentions this node's directory, and "healthy" means: the log written since
//! *this* start says `WSO2 Carbon started in` and the management port accepts
//! connections. The whole start-and-wait is one remote script: one round trip;
//! the log is followed (`tail -F`, inotify), so the verdict is seen when written.

use serde::Deserialize;

use super::{Action, Decision, ModuleError};
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The node's CARBON_HOME.
    pub dir: String,
    /// The account the server runs as.
    pub user: String,
    /// 9443 + offset: the port that must accept connections.
    pub https_port: u16,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub java_home: Option<String>,
    /// Extra JVM options (exported as JAVA_OPTS: `start` drops arguments).
    #[serde(default)]
    pub java_opts: Option<String>,
}

fn default_timeout() -> u64 {
    180
}

/// What the executor does for a node.
#[derive(Debug, Clone)]
pub struct ServiceAction {
    pub params: Params,
    /// Stop first (a restart) rather than a plain start.
    pub restart: bool,
}

impl ServiceAction {
    pub fn describe(&self) -> String {
        let verb = if self.restart { "restart" } else { "start" };
        format!("{verb} {} and wait until healthy", self.params.dir)
    }

    /// The remote script: (stop), start, wait for health, clear the pending mark.
    pub fn script(&self) -> String {
        let p = &self.params;
        let run_as = if p.user == "root" {
            String::new()
        } else {
            format!("runuser -u {} -- ", quote(&p.user))
        };
        let mut env = String::from("env");
        if let Some(j) = &p.java_home {
            env.push_str(&format!(" JAVA_HOME={}", quote(j)));
        }
        if let Some(o) = &p.java_opts {
            env.push_str(&format!(" JAVA_OPTS={}", quote(o)));
        }
        format!(
            r#"set -u
dir={dir}; port={port}; limit={limit}; restart={restart}
{status_fn}
log="$dir/repository/logs/wso2carbon.log"
if [ "$restart" = 1 ] && pid=$(node_pid); then
  (cd "$dir" && {run_as}{env} bash bin/wso2server.sh stop >/dev/null 2>&1)
  for i in $(seq 1 300); do [ -d /proc/$pid ] || break; sleep 0.1; done
  if [ -d /proc/$pid ]; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
fi
if pid=$(node_pid); then
  echo "already running as pid $pid" >&2
else
  off=0; [ -f "$log" ] && off=$(stat -c %s "$log")
  (cd "$dir" && {run_as}{env} bash bin/wso2server.sh start >/dev/null 2>&1 </dev/null)
  deadline=$(( $(date +%s) + limit ))
  left() {{ echo $(( deadline - $(date +%s) )); }}
  unhealthy() {{
    echo "not healthy after ${{limit}}s; last log lines:" >&2; tail -n 20 "$log" >&2 2>/dev/null; exit 3
  }}
  until [ -f "$log" ]; do [ "$(left)" -gt 0 ] || unhealthy; sleep 0.05; done
  # Follows the log (inotify: no polling delay) until this start's verdict line. tail runs
  # as a coprocess killed once grep has its line: an older tail would otherwise linger
  # until its next write after grep is gone (and the verdict may be the log's last line).
  t=$(left); [ "$t" -gt 0 ] || unhealthy
  coproc LOGTAIL {{ exec timeout "$t" tail -c +$((off + 1)) -F -- "$log" 2>/dev/null; }}
  tail_pid=$LOGTAIL_PID
  line=$(grep -a -m1 -e 'WSO2 Carbon started in' -e 'Halting JVM' -e 'Shutdown complete' \
    <&"${{LOGTAIL[0]}}") || true
  kill "$tail_pid" 2>/dev/null || true
  case "$line" in
    *'WSO2 Carbon started in'*) ;;
    '') unhealthy ;;
    *) echo "the server stopped during startup; last log lines:" >&2; tail -n 20 "$log" >&2; exit 4 ;;
  esac
  until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do
    [ "$(left)" -gt 0 ] || unhealthy; sleep 0.05
  done
fi
rm -f {pending}
"#,
            dir = quote(&p.dir),
            port = p.https_port,
            limit = p.timeout_secs,
            restart = u8::from(self.restart),
            status_fn = node_pid_fn(),
            pending = quote(&pending_marker(&p.dir)),
        )
    }
}

/// A shell function printing the node's live pid, failing when it is not running.
/// A stale pid (left behind after stop, or reused by another process) does not count.
/// It reads `$dir` (the node's CARBON_HOME); `status` reuses it in its own probe.
/// Bash builtins only (`read`, pattern matching; bash 4.2 is enough): the probe of a 50-host
/// rerun runs it on every node, and each process spawned there costs time.
pub fn node_pid_fn() -> &'static str {
    r#"node_pid() {
  local p='' arg
  read -r p 2>/dev/null < "$dir/wso2carbon.pid"
  p=${p//[!0-9]/}
  [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 1
  while IFS= read -r -d '' arg; do
    [[ "$arg" == *"$dir"* ]] && { echo "$p"; return 0; }
  done 2>/dev/null < "/proc/$p/cmdline"
  return 1
}"#
}

/// Where a node records that it must be restarted (written before the first
/// change to the node, removed after a healthy restart), so a run that dies in
/// between is finished by the next one.
pub fn pending_marker(dir: &str) -> String {
    format!("{}/.apim-deploy/restart-pending", dir.trim_end_matches('/'))
}

/// The read-only status probe: prints `running <pid>` or `stopped`.
pub fn status_probe(dir: &str) -> String {
    format!(
        "dir={}\n{}\nif p=$(node_pid); then echo \"running $p\"; else echo stopped; fi",
        quote(dir),
        node_pid_fn()
    )
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    Ok(vec![
        Fact::Shell(status_probe(&p.dir)),
        Fact::File(pending_marker(&p.dir)),
    ])
}

/// Decides whether the node must be (re)started; `notified` lists the changes
/// made to the node earlier in this run.
pub fn decide_with(p: &Params, state: &HostState, notified: &[String]) -> Decision {
    let running = state
        .probed_shell(&status_probe(&p.dir))
        .and_then(|(_, out)| {
            let out = String::from_utf8_lossy(out);
            out.trim()
                .strip_prefix("running ")
                .map(|pid| pid.to_string())
        });
    let pending = state.facts.file(&pending_marker(&p.dir)).is_some();
    let action = |restart| {
        vec![Action::Service(ServiceAction {
            params: p.clone(),
            restart,
        })]
    };
    match running {
        None => Decision::change("not running: will start", action(false)),
        Some(pid) if pending => Decision::change(
            format!("running as pid {pid}, but a restart is pending from an earlier run"),
            action(true),
        ),
        Some(pid) if !notified.is_empty() => Decision::change(
            format!(
                "running as pid {pid}; will restart because {} changed",
                notified.join(", ")
            ),
            action(true),
        ),
        Some(pid) => Decision::ok(format!("running as pid {pid}, nothing changed")),
    }
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    Ok(decide_with(p, state, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn node_pid(dir: &str) -> (bool, String) {
        let script = format!("dir={}\n{}\nnode_pid", quote(dir), node_pid_fn());
        let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    #[test]
    fn node_pid_trusts_only_a_live_process_of_this_node() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("Gate way's").to_str().unwrap().to_string();
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(node_pid(&dir), (false, String::new()), "no pid file");
        // A live process whose command line names the node directory.
        let mut child = Command::new("bash")
            .args(["-c", "sleep 30; true", &format!("{dir}/bin/wso2server.sh")])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut pidfile = format!("{pid}\n").into_bytes();
        pidfile.resize(100, 0);
        std::fs::write(format!("{dir}/wso2carbon.pid"), &pidfile).unwrap();
        assert_eq!(node_pid(&dir), (true, pid.to_string()));
        // The same pid file for another node's directory: not this node's process.
        let other = tmp.path().join("Store");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("wso2carbon.pid"), &pidfile).unwrap();
        assert!(
            !node_pid(other.to_str().unwrap()).0,
            "another node's pid file"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(node_pid(&dir), (false, String::new()), "stale pid");
    }
}
