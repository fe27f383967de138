//! `service`: a long-running server process, started (or restarted) through the
//! product's own commands, then confirmed healthy.
//!
//! Everything product-specific is a parameter the playbook supplies: the start and
//! stop commands, their environment, the pid file, the log, the line that means
//! "ready", the lines that mean "this start failed", the marker that identifies
//! the node's processes, and the runtime (a JDK) the commands need. The engine
//! only knows how servers of this kind behave in general:
//!
//! * start commands that daemonise return at once, so their exit status says only
//!   whether the launch was refused (a missing runtime, a bad environment): it is
//!   captured with its output and fails the step at once;
//! * a pid file can outlive its process and be reused by another, so "running"
//!   means: the pid file names a live process that carries the node's marker;
//! * a server can die before it is ready, or log a fatal error and linger: the
//!   log is followed as it is written (`tail -F`, inotify) and the node's
//!   processes are checked whenever the log is quiet, so either is reported
//!   within a second with the log's error lines, never after the whole timeout;
//! * "healthy" means: the log written since *this* start has the ready line and
//!   the health port accepts connections.
//!
//! The whole start-and-wait is one remote script: one round trip.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Action, Decision, ModuleError};
use crate::probe::{Fact, quote};
use crate::state::HostState;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The node's home directory: commands run there.
    pub dir: String,
    /// The account the server runs as.
    pub user: String,
    /// The command (argv, run in `dir`) that launches the server.
    pub start: Vec<String>,
    /// The command (argv, run in `dir`) that asks the server to stop.
    pub stop: Vec<String>,
    /// Extra environment for every command; empty values are left out.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The file the server writes its pid into (padding and whitespace ignored).
    pub pid_file: String,
    /// The server's log.
    pub log: String,
    /// Arguments that only this node's server processes carry (any one, exact
    /// match: the launcher's and the server's), so a stale pid reused by another
    /// process, or another node's server, never counts.
    pub process_markers: Vec<String>,
    /// A log line containing this means the server is ready.
    pub ready: String,
    /// A log line containing this means a start began (for `status`: has the
    /// server been ready since its last start?).
    #[serde(default)]
    pub starting: Option<String>,
    /// Log lines containing any of these mean this start failed, even if the
    /// process lingers.
    #[serde(default)]
    pub fatal: Vec<String>,
    /// Log lines containing any of these mean the server is shutting down.
    #[serde(default)]
    pub stopped: Vec<String>,
    /// Log lines containing any of these are quoted when a start fails.
    #[serde(default)]
    pub error_lines: Vec<String>,
    /// The port that must accept connections once the server is ready.
    pub health_port: u16,
    /// Every port the server binds (checked free before a start).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// A command (argv, run in `dir`) whose first output line is the server's version.
    #[serde(default)]
    pub version: Vec<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_secs: u64,
    /// The Java runtime the commands need, exported to them as JAVA_HOME.
    #[serde(default)]
    pub java: Option<super::java::Requirement>,
}

fn default_timeout() -> u64 {
    180
}

fn default_stop_timeout() -> u64 {
    30
}

impl Params {
    /// The environment every command of this node gets, with the runtime chosen
    /// on its host.
    pub fn environment(&self, java_home: Option<&str>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(home) = java_home {
            env.retain(|(k, _)| k != "JAVA_HOME");
            env.push(("JAVA_HOME".into(), home.to_string()));
        }
        env
    }
}

/// What the executor does for a node.
#[derive(Debug, Clone)]
pub struct ServiceAction {
    pub params: Params,
    /// The environment of its commands (JAVA_HOME resolved at plan time).
    pub env: Vec<(String, String)>,
    /// Stop first (a restart) rather than a plain start.
    pub restart: bool,
}

/// Exit statuses of the start script, one per way a start fails.
pub mod exit {
    pub const TIMEOUT: i32 = 3;
    pub const STOPPED: i32 = 4;
    pub const START_COMMAND: i32 = 5;
    pub const DIED: i32 = 6;
    pub const FATAL: i32 = 7;
}

impl ServiceAction {
    pub fn describe(&self) -> String {
        let verb = if self.restart { "restart" } else { "start" };
        format!("{verb} {} and wait until healthy", self.params.dir)
    }

    /// The remote script: (stop), start, wait for health, clear the pending mark.
    /// On failure its first stderr line is the cause, the lines after it the
    /// evidence (command output or the log's error lines).
    pub fn script(&self) -> String {
        let p = &self.params;
        format!(
            r#"set -u
{prelude}
restart={restart}; limit={limit}; health_port={health_port}
ready={ready}
fatal=({fatal})
stopped=({stopped})
errpat=({errpat})
{start_fn}
stop_strays
if [ "$restart" = 1 ] && pid=$(node_pid); then
  stop_node "$pid"
fi
stop_strays
if pid=$(node_pid); then
  echo "already running as pid $pid" >&2
else
  start_node
fi
rm -f {pending}
"#,
            prelude = prelude(p, &self.env),
            restart = u8::from(self.restart),
            limit = p.timeout_secs,
            health_port = p.health_port,
            ready = quote(&p.ready),
            fatal = words(&p.fatal),
            stopped = words(&p.stopped),
            errpat = words(&p.error_lines),
            pending = quote(&pending_marker(&p.dir)),
            start_fn = START_FN,
        )
    }
}

fn words(list: &[String]) -> String {
    list.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The shell variables and functions every script about a node starts with:
/// where it lives, how to run its commands, and the running rule.
fn prelude(p: &Params, env: &[(String, String)]) -> String {
    let run_as = if p.user == "root" {
        String::new()
    } else {
        format!("runuser -u {} -- ", quote(&p.user))
    };
    let env: String = env
        .iter()
        .map(|(k, v)| format!(" {}", quote(&format!("{k}={v}"))))
        .collect();
    let argv = |a: &[String]| words(a);
    format!(
        r#"dir={dir}; pid_file={pid_file}; log={log}; markers=({markers}); stop_limit={stop_limit}
run_cmd() {{ (cd "$dir" && exec {run_as}env{env} "$@"); }}
start_cmd() {{ run_cmd {start}; }}
stop_cmd() {{ run_cmd {stop}; }}
{node_pid}
{stop_fn}"#,
        dir = quote(&p.dir),
        pid_file = quote(&p.pid_file),
        log = quote(&p.log),
        markers = words(&p.process_markers),
        stop_limit = p.stop_timeout_secs,
        start = argv(&p.start),
        stop = argv(&p.stop),
        node_pid = NODE_PID_FN,
        stop_fn = STOP_FN,
    )
}

/// The running rule, as shell functions reading `$pid_file` and `$markers`:
/// `node_pid` prints the live pid the pid file names (a stale pid, or one reused
/// by a process without the node's marker, does not count); `node_procs` lists
/// every process carrying the marker, whatever the pid file says; `node_strays PID`
/// those of them that are neither PID nor one of its ancestors (its launcher): a
/// second server of the node that the pid file does not name.
/// Bash builtins only (`read`, pattern matching; bash 4.2 is enough): the probe of
/// a 50-host rerun runs it on every node, and each process spawned costs time.
const NODE_PID_FN: &str = r#"has_marker() {
  local arg m
  while IFS= read -r -d '' arg; do
    for m in "${markers[@]}"; do [ "$arg" = "$m" ] && return 0; done
  done 2>/dev/null < "/proc/$1/cmdline"
  return 1
}
node_pid() {
  local p=''
  read -r p 2>/dev/null < "$pid_file"
  p=${p//[!0-9]/}
  [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] && has_marker "$p" && { echo "$p"; return 0; }
  return 1
}
node_procs() {
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
    has_marker "$p" && echo "$p"
  done
  return 0
}
node_strays() {
  local keep=' ' p=${1-} st q
  while [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null; do
    keep+="$p "
    read -r st 2>/dev/null < "/proc/$p/stat" || break
    st=${st##*) }; read -r _ p _ <<< "$st"
  done
  for q in $(node_procs); do [[ $keep == *" $q "* ]] || echo "$q"; done
  return 0
}"#;

/// Asks the server to stop, waits for its process, then kills what is left.
const STOP_FN: &str = r#"
stop_node() {
  local pid=$1 i
  stop_cmd >/dev/null 2>&1 </dev/null
  for ((i = 0; i < stop_limit * 10; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
}
# A server of this node that the pid file does not name would hold the node's
# ports and files beside the real one: it is stopped before any start.
stop_strays() {
  local s i
  s=$(node_strays "$(node_pid)")
  [ -n "$s" ] || return 0
  kill -TERM $s 2>/dev/null
  for ((i = 0; i < stop_limit * 10; i++)); do
    [ -n "$(node_strays "$(node_pid)")" ] || return 0
    sleep 0.1
  done
  s=$(node_strays "$(node_pid)")
  [ -n "$s" ] && kill -KILL $s 2>/dev/null
  sleep 0.2
}
"#;

/// Starts the node and waits for its verdict (see the module docs). Reads the
/// variables the action's script sets.
const START_FN: &str = r#"
start_node() {
  local off=0 out rc
  [ -f "$log" ] && off=$(stat -c %s "$log")
  out=$(mktemp) || exit 1
  start_cmd >"$out" 2>&1 </dev/null
  rc=$?
  if [ "$rc" != 0 ]; then
    echo "the start command exited with status $rc" >&2
    tail -n 20 "$out" >&2
    rm -f "$out"; exit 5
  fi
  rm -f "$out"
  local deadline=$((SECONDS + limit)) quiet=0 line chunk buf='' f
  # -s 0.1: tail notices a log that does not exist yet by polling for it.
  coproc LOGTAIL { exec timeout "$limit" tail -s 0.1 -c +$((off + 1)) -F -- "$log" 2>/dev/null; }
  local tail_pid=$LOGTAIL_PID fd=${LOGTAIL[0]}
  # The evidence is read from the file, not from what tail has delivered so far:
  # tail -F notices a log created after it started only on its next poll.
  fail() {
    local code=$1 f pats=(); shift
    kill "$tail_pid" 2>/dev/null
    echo "$*" >&2
    for f in "${errpat[@]}"; do pats+=(-e "$f"); done
    if [ ${#pats[@]} -gt 0 ] && [ -f "$log" ]; then
      tail -c +$((off + 1)) "$log" | grep -a -F "${pats[@]}" | tail -n 10 >&2
    fi
    exit "$code"
  }
  stop_started() {
    local p i
    for p in $(node_procs); do kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 10; i++)); do [ -z "$(node_procs)" ] && return; sleep 0.1; done
    for p in $(node_procs); do kill -KILL "$p" 2>/dev/null; done
  }
  while :; do
    if IFS= read -r -t 0.5 -u "$fd" chunk; then
      line=$buf$chunk; buf=''
      [[ $line == *"$ready"* ]] && break
      for f in "${fatal[@]}"; do
        if [[ $line == *"$f"* ]]; then
          stop_started
          fail 7 "the server logged a fatal error and was stopped: $line"
        fi
      done
      for f in "${stopped[@]}"; do
        [[ $line == *"$f"* ]] && fail 4 "the server shut down during startup"
      done
      quiet=0
      continue
    else
      rc=$?
    fi
    [ "$rc" -gt 128 ] || fail 3 "not healthy after ${limit}s"
    buf+=$chunk
    [ "$SECONDS" -lt "$deadline" ] || fail 3 "not healthy after ${limit}s"
    if [ -z "$(node_procs)" ]; then
      quiet=$((quiet + 1))
      # Two quiet checks in a row: a launcher between fork and exec is not gone.
      [ "$quiet" -ge 2 ] && fail 6 "the server process exited before it was healthy"
    else
      quiet=0
    fi
  done
  kill "$tail_pid" 2>/dev/null
  until (exec 3<>"/dev/tcp/127.0.0.1/$health_port") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail 3 "not healthy after ${limit}s: port $health_port never accepted a connection"
    [ -n "$(node_procs)" ] || fail 6 "the server process exited before it was healthy"
    sleep 0.05
  done
}
"#;

/// Where a node records that it must be restarted (written before the first
/// change to the node, removed after a healthy restart), so a run that dies in
/// between is finished by the next one.
pub fn pending_marker(dir: &str) -> String {
    format!("{}/.apim-deploy/restart-pending", dir.trim_end_matches('/'))
}

/// The environment keys a node's commands get from the playbook (their values in
/// the running server are compared with the wanted ones).
fn env_keys(p: &Params) -> Vec<String> {
    let mut keys: Vec<String> = p.env.keys().cloned().collect();
    if p.java.is_some() && !keys.iter().any(|k| k == "JAVA_HOME") {
        keys.push("JAVA_HOME".into());
    }
    keys
}

/// The read-only running probe: prints `running <pid>` then `env KEY=VALUE` for
/// each of the node's environment keys the server has, or `stopped`.
pub fn running_probe(p: &Params) -> String {
    let keys: Vec<String> = env_keys(p)
        .iter()
        .map(|k| quote(&format!("{k}=")))
        .collect();
    format!(
        "pid_file={}; markers=({}); keys=({})\n{NODE_PID_FN}\n\
         if p=$(node_pid); then echo \"running $p\"\n\
           while IFS= read -r -d '' kv; do for k in \"${{keys[@]}}\"; do [[ $kv == \"$k\"* ]] && echo \"env $kv\"; done; done < \"/proc/$p/environ\" 2>/dev/null\n\
         else echo stopped; fi\n\
         for s in $(node_strays \"$(node_pid)\"); do echo \"stray $s\"; done",
        quote(&p.pid_file),
        words(&p.process_markers),
        keys.join(" "),
    )
}

/// A running server as [`running_probe`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    /// The node's environment keys the server has, with their values.
    pub env: BTreeMap<String, String>,
}

/// Parses [`running_probe`]'s output: `None` when the node does not run.
pub fn parse_running(out: &[u8]) -> Option<Running> {
    let text = String::from_utf8_lossy(out);
    let mut lines = text.lines();
    let pid = lines
        .next()?
        .trim()
        .strip_prefix("running ")?
        .parse()
        .ok()?;
    let env = lines
        .filter_map(|l| l.strip_prefix("env ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Running { pid, env })
}

/// Servers of the node that its pid file does not name, as [`running_probe`]
/// saw them.
pub fn parse_strays(out: &[u8]) -> Vec<u32> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.strip_prefix("stray ")?.trim().parse().ok())
        .collect()
}

/// The node's stray servers (see [`parse_strays`]).
pub fn strays(state: &HostState, p: &Params) -> Vec<u32> {
    state
        .probed_shell(&running_probe(p))
        .map(|(_, out)| parse_strays(out))
        .unwrap_or_default()
}

/// The node's server, when it runs.
pub fn running(state: &HostState, p: &Params) -> Option<Running> {
    parse_running(state.probed_shell(&running_probe(p))?.1)
}

/// The pid of the node's server, when it runs.
pub fn running_pid(state: &HostState, p: &Params) -> Option<u32> {
    running(state, p).map(|r| r.pid)
}

/// The keys whose value in the running server differs from the wanted one (a
/// server started by hand, or before the runtime changed). Keys only: a value
/// may be a secret.
fn env_drift(running: &Running, wanted: &[(String, String)]) -> Vec<String> {
    wanted
        .iter()
        .filter(|(k, v)| running.env.get(k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The read-only snippet `status` runs per node: `key=value` lines (`pid`,
/// `uptime`, `health_port_open`, `log_start`/`log_ready` line numbers,
/// `version`, `pending`). The version command runs with the node's environment,
/// the runtime chosen by the same rule as a start.
pub fn status_probe(p: &Params) -> String {
    let java = p
        .java
        .as_ref()
        .map(|j| format!("{}\njava_home=$(pick_jdk | cut -f1)\n", j.pick_fn()))
        .unwrap_or_default();
    let env: String = p
        .environment(None)
        .iter()
        .map(|(k, v)| format!(" {}", quote(&format!("{k}={v}"))))
        .collect();
    let run_as = if p.user == "root" {
        String::new()
    } else {
        format!("runuser -u {} -- ", quote(&p.user))
    };
    let count = |pattern: &Option<String>| match pattern {
        Some(pat) => format!(
            "grep -n -F -e {} \"$log\" | tail -n 1 | cut -d: -f1",
            quote(pat)
        ),
        None => "echo 0".into(),
    };
    format!(
        r#"pid_file={pid_file}; markers=({markers}); log={log}; dir={dir}
{NODE_PID_FN}
{java}[ -f {pending} ] && echo pending=1
if [ -n "${{java_home-}}" ] || [ {has_java} = 0 ]; then
  v=$( (cd "$dir" && exec {run_as}env{env} ${{java_home:+JAVA_HOME="$java_home"}} {version}) 2>/dev/null </dev/null | head -n 1)
  [ -n "$v" ] && printf 'version=%s\n' "$v"
fi
s=$(node_strays "$(node_pid)")
[ -n "$s" ] && echo "strays="$s
if p=$(node_pid); then
  echo "pid=$p"
  echo "uptime=$(ps -o etimes= -p "$p" 2>/dev/null | tr -d ' ')"
  (exec 3<>"/dev/tcp/127.0.0.1/{port}") 2>/dev/null && echo health_port_open=1
  if [ -f "$log" ]; then
    echo "log_start=$({starting})"
    echo "log_ready=$({ready})"
  fi
fi
true"#,
        pid_file = quote(&p.pid_file),
        markers = words(&p.process_markers),
        log = quote(&p.log),
        dir = quote(&p.dir),
        pending = quote(&pending_marker(&p.dir)),
        has_java = u8::from(p.java.is_some()),
        version = if p.version.is_empty() {
            "true".to_string()
        } else {
            words(&p.version)
        },
        port = p.health_port,
        starting = count(&p.starting),
        ready = count(&Some(p.ready.clone())),
    )
}

/// The read-only port probe: for a node that is not running, each of its ports
/// another process listens on, as `<port> <pid> <command line>` (pid `?` when
/// the holder is not visible). Sockets come from /proc/net/tcp{,6}; a holder is
/// looked up (one `find`) only for a port that is taken.
pub fn ports_probe(p: &Params) -> String {
    let ports: Vec<String> = p.ports.iter().map(u16::to_string).collect();
    format!(
        r#"pid_file={pid_file}; markers=({markers})
{NODE_PID_FN}
node_pid >/dev/null && exit 0
want=" {ports} "
while read -r _ local _ st _ _ _ _ _ inode _; do
  [ "$st" = 0A ] || continue
  port=$((16#${{local##*:}}))
  case "$want" in *" $port "*) ;; *) continue;; esac
  want=${{want/ $port / }}
  holder=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" 2>/dev/null | head -n 1)
  pid=${{holder#/proc/}}; pid=${{pid%%/*}}
  cmd='?'
  if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" | cut -c1-200); fi
  echo "$port ${{pid:-?}} $cmd"
done < <(tail -q -n +2 /proc/net/tcp /proc/net/tcp6 2>/dev/null)
true"#,
        pid_file = quote(&p.pid_file),
        markers = words(&p.process_markers),
        ports = ports.join(" "),
    )
}

/// A node that is not running needs its ports free: an error naming each
/// taken port's holder.
fn check_ports(p: &Params, state: &HostState) -> Result<(), ModuleError> {
    let Some((_, out)) = state.probed_shell(&ports_probe(p)) else {
        return Ok(());
    };
    if !state.checks("ports") {
        return Ok(());
    }
    let held: Vec<String> = String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ' ');
            let (port, pid, cmd) = (f.next()?, f.next()?, f.next().unwrap_or("?"));
            Some(format!("port {port} is held by pid {pid} ({})", cmd.trim()))
        })
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(crate::preflight::failed(
        "ports",
        format!(
            "cannot start {}: {}; stop that process, or give the node another port offset",
            p.dir,
            held.join(", ")
        ),
    ))
}

pub fn questions(p: &Params) -> Result<Vec<Fact>, ModuleError> {
    let mut facts = vec![
        Fact::Shell(running_probe(p)),
        Fact::File(pending_marker(&p.dir)),
        Fact::Shell(ports_probe(p)),
    ];
    if let Some(j) = &p.java {
        facts.push(Fact::Shell(j.probe()));
    }
    Ok(facts)
}

/// The environment of the node's commands on this host: the runtime the host
/// offers (an error naming what was found when none fits).
pub fn resolved_env(p: &Params, state: &HostState) -> Result<Vec<(String, String)>, ModuleError> {
    let home = match &p.java {
        Some(j) => Some(j.choose(state)?.home).filter(|h| !h.is_empty()),
        None => None,
    };
    Ok(p.environment(home.as_deref()))
}

/// Decides whether the node must be (re)started; `notified` lists the changes
/// made to the node earlier in this run.
pub fn decide_with(
    p: &Params,
    state: &HostState,
    notified: &[String],
) -> Result<Decision, ModuleError> {
    let env = resolved_env(p, state)?;
    let server = running(state, p);
    let strays = strays(state, p);
    // A stray holds the node's ports; it is stopped before the start.
    if server.is_none() && strays.is_empty() {
        check_ports(p, state)?;
    }
    let drift = server
        .as_ref()
        .map(|r| env_drift(r, &env))
        .unwrap_or_default();
    let running = server.map(|r| r.pid);
    let pending = state.facts.file(&pending_marker(&p.dir)).is_some();
    let action = |restart| {
        vec![Action::Service(Box::new(ServiceAction {
            params: p.clone(),
            env: env.clone(),
            restart,
        }))]
    };
    let stray_list = strays
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Ok(match running {
        None if !strays.is_empty() => Decision::change(
            format!(
                "not running, but a stray server of its directory runs (pid {stray_list}, not named by the pid file): will stop it and start"
            ),
            action(false),
        ),
        Some(pid) if !strays.is_empty() => Decision::change(
            format!(
                "running as pid {pid}, beside a stray server of its directory (pid {stray_list}, not named by the pid file): will stop it and restart"
            ),
            action(true),
        ),
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
        Some(pid) if !drift.is_empty() => Decision::change(
            format!(
                "running as pid {pid}; will restart because its environment differs ({})",
                drift.join(", ")
            ),
            action(true),
        ),
        Some(pid) => Decision::ok(format!("running as pid {pid}, nothing changed")),
    })
}

pub fn decide(p: &Params, state: &mut HostState) -> Result<Decision, ModuleError> {
    decide_with(p, state, &[])
}

/// Splits a failed start script's stderr into its cause (the first line) and
/// the evidence under it.
pub fn failure(stderr: &str) -> (String, Vec<String>) {
    let mut lines = stderr.lines().filter(|l| !l.trim().is_empty());
    let cause = lines
        .next()
        .unwrap_or("the start script failed with no output");
    (cause.to_string(), lines.map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    /// A node directory with a fake server: `bin/server.sh start` launches
    /// `bin/run.sh` in the background (as daemonising start scripts do), and the
    /// server's behaviour is the shell text given.
    fn node(tmp: &std::path::Path, server: &str) -> Params {
        let dir = tmp.join("No de's").to_str().unwrap().to_string();
        std::fs::create_dir_all(format!("{dir}/bin")).unwrap();
        std::fs::create_dir_all(format!("{dir}/logs")).unwrap();
        let write = |name: &str, text: &str| {
            let path = format!("{dir}/bin/{name}");
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write(
            "server.sh",
            "#!/bin/bash\ncase \"$1\" in\n  start) [ -n \"${NEED_ENV-}\" ] || { echo 'You must set NEED_ENV'; exit 1; }\n    nohup bash \"$PWD/bin/run.sh\" >/dev/null 2>&1 & exit 0;;\n  stop) kill \"$(cat pid)\"; exit 0;;\nesac\n",
        );
        write(
            "run.sh",
            &format!("#!/bin/bash\necho $$ > pid\nlog=logs/server.log\n{server}\n"),
        );
        Params {
            dir: dir.clone(),
            user: "root".into(),
            start: vec!["bash".into(), "bin/server.sh".into(), "start".into()],
            stop: vec!["bash".into(), "bin/server.sh".into(), "stop".into()],
            env: BTreeMap::from([("NEED_ENV".to_string(), "1".to_string())]),
            pid_file: format!("{dir}/pid"),
            log: format!("{dir}/logs/server.log"),
            process_markers: vec![format!("{dir}/bin/run.sh")],
            ready: "Server started in".into(),
            starting: Some("Starting server".into()),
            fatal: vec!["Address already in use".into()],
            stopped: vec!["Halting".into()],
            error_lines: vec![" ERROR ".into()],
            health_port: free_port(),
            ports: vec![],
            version: vec![],
            timeout_secs: 20,
            stop_timeout_secs: 5,
            java: None,
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Runs the start script; returns its exit code, stderr and how long it took.
    fn start(p: &Params) -> (i32, String, f64) {
        let action = ServiceAction {
            params: p.clone(),
            env: p.environment(None),
            restart: false,
        };
        let t0 = std::time::Instant::now();
        let out = Command::new("bash")
            .arg("-c")
            .arg(action.script())
            .output()
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        let code = out.status.code().unwrap_or(-1);
        (
            code,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            secs,
        )
    }

    fn kill_all(p: &Params) {
        let script = format!(
            "pid_file=x; markers=({})\n{NODE_PID_FN}\nfor q in $(node_procs); do kill -KILL $q; done",
            words(&p.process_markers)
        );
        Command::new("bash").arg("-c").arg(script).status().unwrap();
    }

    #[test]
    fn a_refused_launch_fails_at_once_with_the_commands_output() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = node(tmp.path(), "sleep 30");
        p.env.clear();
        let (code, err, secs) = start(&p);
        assert_eq!(code, exit::START_COMMAND, "{err}");
        assert!(
            err.starts_with("the start command exited with status 1\n"),
            "{err}"
        );
        assert!(err.contains("You must set NEED_ENV"), "{err}");
        assert!(secs < 2.0, "{secs}");
    }

    #[test]
    fn a_server_that_dies_early_fails_within_two_seconds_quoting_error_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let p = node(
            tmp.path(),
            "echo 'INFO Starting server' >> $log; echo 'x ERROR {db} - Cannot connect' >> $log; sleep 0.3; exit 1",
        );
        let (code, err, secs) = start(&p);
        assert_eq!(code, exit::DIED, "{err}");
        assert!(
            err.starts_with("the server process exited before it was healthy"),
            "{err}"
        );
        assert!(err.contains("ERROR {db} - Cannot connect"), "{err}");
        assert!(!err.contains("INFO"), "only error lines are quoted: {err}");
        assert!(secs < 2.5, "{secs}");
    }

    #[test]
    fn a_fatal_line_fails_at_once_and_stops_the_lingering_server() {
        let tmp = tempfile::tempdir().unwrap();
        let p = node(
            tmp.path(),
            "echo 'x ERROR {nio} - Address already in use: 8243' >> $log; sleep 60",
        );
        let (code, err, secs) = start(&p);
        assert_eq!(code, exit::FATAL, "{err}");
        assert!(err.contains("Address already in use: 8243"), "{err}");
        assert!(secs < 2.5, "{secs}");
        let left = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "pid_file=x; markers=({})\n{NODE_PID_FN}\nnode_procs",
                words(&p.process_markers)
            ))
            .output()
            .unwrap();
        assert!(
            left.stdout.is_empty(),
            "the half-started server was stopped"
        );
    }

    #[test]
    fn a_ready_server_with_its_port_open_is_healthy_and_then_counts_as_running() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = node(tmp.path(), "");
        let port = p.health_port;
        let server = format!(
            "echo 'INFO Starting server' >> $log\nexec python3 -c 'import socket,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", {port})); s.listen()\nopen(\"logs/server.log\",\"a\").write(\"INFO Server started in 0 sec\\n\")\ntime.sleep(60)' \"$0\""
        );
        p = node(tmp.path(), &server);
        p.health_port = port;
        let (code, err, _) = start(&p);
        assert_eq!(code, 0, "{err}");
        let status = Command::new("bash")
            .arg("-c")
            .arg(status_probe(&p))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.contains("health_port_open=1"), "{text}");
        assert!(text.contains("log_start=1\nlog_ready=2"), "{text}");
        kill_all(&p);
    }

    #[test]
    fn the_running_rule_trusts_only_a_live_process_with_the_nodes_marker() {
        let tmp = tempfile::tempdir().unwrap();
        let p = node(tmp.path(), "sleep 30");
        let probe = |p: &Params| {
            let out = Command::new("bash")
                .arg("-c")
                .arg(running_probe(p))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(probe(&p), "stopped", "no pid file");
        let mut child = Command::new("bash")
            .args(["-c", "sleep 30; true", &p.process_markers[0]])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut pidfile = format!("{pid}\n").into_bytes();
        pidfile.resize(100, 0);
        std::fs::write(&p.pid_file, &pidfile).unwrap();
        assert_eq!(probe(&p), format!("running {pid}"));
        let mut other = p.clone();
        other.process_markers = vec!["/elsewhere/bin/run.sh".into()];
        assert_eq!(probe(&other), "stopped", "another node's marker");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(probe(&p), "stopped", "stale pid");
    }

    #[test]
    fn a_port_held_by_another_process_is_named_with_its_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = node(tmp.path(), "");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        p.ports = vec![port, free_port()];
        let out = Command::new("bash")
            .arg("-c")
            .arg(ports_probe(&p))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let me = std::process::id();
        assert!(text.starts_with(&format!("{port} {me} ")), "{text:?}");
        assert_eq!(text.lines().count(), 1, "{text:?}");
        let mut facts = crate::probe::Facts::default();
        facts.insert(
            Fact::Shell(ports_probe(&p)),
            crate::probe::Answer::Output {
                rc: 0,
                stdout: out.stdout.clone(),
            },
        );
        let err = check_ports(&p, &HostState::new(facts)).unwrap_err().0;
        assert!(
            err.contains(&format!("port {port} is held by pid {me}")),
            "{err}"
        );
        drop(listener);
    }

    #[test]
    fn a_server_on_another_runtime_is_restarted_naming_only_the_key() {
        let r =
            parse_running(b"running 42\nenv JAVA_HOME=/opt/java/old\nenv EXTRA=s3cret\n").unwrap();
        assert_eq!(r.pid, 42);
        let wanted = |home: &str| {
            vec![
                ("EXTRA".to_string(), "s3cret".to_string()),
                ("JAVA_HOME".to_string(), home.to_string()),
            ]
        };
        assert!(env_drift(&r, &wanted("/opt/java/old")).is_empty());
        assert_eq!(env_drift(&r, &wanted("/opt/java/new")), ["JAVA_HOME"]);
        assert_eq!(parse_running(b"stopped\n"), None);
        assert_eq!(parse_running(b"running x\n"), None);
        assert_eq!(parse_running(b""), None);
    }

    #[test]
    fn a_failure_splits_into_cause_and_evidence() {
        let (cause, rest) = failure("not healthy after 8s\nx ERROR one\n\nx ERROR two\n");
        assert_eq!(cause, "not healthy after 8s");
        assert_eq!(rest, ["x ERROR one", "x ERROR two"]);
    }
}
