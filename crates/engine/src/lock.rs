//! The run lock: one run that changes anything at a time.
//!
//! On every host a run touches, a small shell process holds `flock` on
//! `<dir>/lock` for as long as the run lasts, and writes who holds it into
//! that same file (user, controller host, controller pid, command, since when),
//! then prints `locked` on its own channel. The holder lives on a channel of
//! the run's own SSH connection and reads a heartbeat on stdin, so the lock dies
//! with the run whatever way the run ends: a clean release says so on stdin; a
//! controller killed outright (SIGKILL) closes its connection, and sshd closes
//! the holder's stdin; a connection that goes silent (a cut network) stops the
//! heartbeat, and the holder gives up after [`HEARTBEAT_LIMIT`]. A holder that
//! gives up first ends the dead run's commands still running on the host (the
//! processes of its SSH connection). The kernel drops a `flock` with its last
//! holder, so no file is ever left claiming a lock nobody holds. A lock is
//! stale only when its holder process itself stops acting (stopped by a signal,
//! or hung in the kernel): it keeps its `flock` and stops touching the file.
//! `unlock` breaks exactly that: a holder not heard from for longer than
//! [`HEARTBEAT_LIMIT`], whose own timeout would have ended it by then.
//!
//! All hosts are tried at once without waiting (one round trip, whatever the
//! number of hosts); if any is held, the run gives back what it took and takes
//! the hosts one after the other in name order, waiting on each (see
//! [`acquire`]): all or nothing, and two runs that race never both win nor both
//! lose.
//!
//! Reading who holds a lock (for `plan` and `status`) never takes it: the
//! holder's pid is in the file, and `/proc/<pid>/fd` tells whether it still
//! holds that file open.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_transport::{Cmd, Transport};
use tokio::io::AsyncWriteExt;

use crate::probe::quote;

/// How often the controller tells each holder the run is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A holder that hears nothing for this long releases the lock; it is longer
/// than the transport takes to declare a silent host lost (about 12 s), so a
/// run that still reaches its hosts never loses its lock.
pub const HEARTBEAT_LIMIT: Duration = Duration::from_secs(20);

/// Who is running: written into the lock file of every host the run locks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub user: String,
    pub controller: String,
    pub pid: u32,
    pub command: String,
    /// When the lock was taken (UTC, as the host's clock says).
    pub since: String,
    /// The process on the host that holds the lock.
    pub holder_pid: Option<u32>,
    /// Seconds since the holder last heard from its run.
    pub heartbeat_age: Option<u64>,
    /// Its run holds every host it needs (not a run still trying, which may give
    /// this host back in a moment).
    pub whole: bool,
}

impl Holder {
    /// This process, running `command`.
    pub fn this_process(command: String) -> Holder {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "?".into());
        let controller = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "?".into());
        Holder {
            user,
            controller,
            pid: std::process::id(),
            command,
            ..Default::default()
        }
    }

    fn fields(&self) -> [(&'static str, String); 4] {
        [
            ("user", self.user.clone()),
            ("controller", self.controller.clone()),
            ("pid", self.pid.to_string()),
            ("command", self.command.clone()),
        ]
    }

    /// Parses the lock file (`key=value` lines); `None` without an owner.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder::default();
        let mut seen = false;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "user" => {
                    h.user = v.to_string();
                    seen = true;
                }
                "controller" => h.controller = v.to_string(),
                "pid" => h.pid = v.parse().unwrap_or(0),
                "command" => h.command = v.to_string(),
                "since" => h.since = v.to_string(),
                "holder" => h.holder_pid = v.parse().ok(),
                "age" => h.heartbeat_age = v.parse().ok(),
                "whole" => h.whole = v == "1",
                _ => {}
            }
        }
        seen.then_some(h)
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} pid {} (`{}`) since {}",
            self.user, self.controller, self.pid, self.command, self.since
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{host}: another run holds the lock: {holder}; nothing was changed (wait for it, or pass --lock-timeout SECS)"
    )]
    Busy { host: String, holder: Holder },
    #[error("{host}: the lock is still held after {waited}s: {holder}; nothing was changed")]
    TimedOut {
        host: String,
        holder: Holder,
        waited: u64,
    },
    #[error("{host}: cannot take the lock: {message}")]
    Failed { host: String, message: String },
}

/// The file holding the lock in `dir`.
pub fn lock_file(dir: &str) -> String {
    format!("{}/lock", dir.trim_end_matches('/'))
}

/// Exit status of the holder script when another process holds the lock.
const BUSY: i32 = 75;
/// The line the holder prints once it holds the lock and has written who it is.
const LOCKED: &[u8] = b"locked";

/// The holder: open the file (without truncating it: another holder's
/// information stays readable), take the lock (waiting up to `wait`), write who
/// we are, say so on stdout, then hold it while the heartbeat comes in.
fn holder_script(dir: &str, me: &Holder, wait: Duration) -> String {
    let fields: String = me
        .fields()
        .iter()
        .map(|(k, v)| format!(" {}", quote(&format!("{k}={}", one_line(v)))))
        .collect();
    let wait = if wait.is_zero() {
        "0".to_string()
    } else {
        format!("{:.3}", wait.as_secs_f64())
    };
    format!(
        r#"set -u
dir={dir}; f="$dir/lock"
root=${{dir%/*}}; had_root=0; had_dir=0
# Builtins only until the lock is taken, but for flock: a fork costs more than
# the rest of the script on a busy host, and every run waits for this.
[ -d "$root" ] && had_root=1; [ -d "$dir" ] && had_dir=1
[ "$had_dir" = 1 ] || mkdir -p "$dir" || exit 1
# A run that finds no install root leaves none behind (it removes the lock file
# it created), so a holder checks that the file it locked is still the one at
# the path, or starts again.
while :; do
  exec 9>>"$f" || exit 1
  if ! flock -n 9; then
    if [ {wait} = 0 ] || ! flock -w {wait} 9; then cat "$f"; exit {BUSY}; fi
  fi
  [ "/proc/$$/fd/9" -ef "$f" ] && break
  exec 9>&-
done
TZ=UTC printf -v since '%(%Y-%m-%dT%H:%M:%SZ)T' -1
printf '%s\n'{fields} "since=$since" "holder=$$" > "$f"
echo {locked}
# This run's SSH connection, as every command it runs here inherits it (sudo
# drops the variable: then it is the parent's).
conn=${{SSH_CONNECTION:-}}
[ -n "$conn" ] || conn=$(tr '\0' '\n' < "/proc/$PPID/environ" 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p')
clean=0
while IFS= read -r -t {limit} line; do
  [ "$line" = release ] && {{ clean=1; break; }}
  [ "$line" = whole ] && echo whole=1 >> "$f"
  touch "$f"
done
if [ "$clean" = 0 ]; then
  # The run is gone (killed, or cut off): its commands still running on this
  # host (an unpack, a start, a seed) are the other processes of its SSH
  # connection. End them before the lock is free, so the next run never races a
  # dead run's work. sshd may have ended first and left them to init, so they
  # are found by the connection in their environment, besides by their parent.
  tree() {{ local c; echo "$1"; for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; }}
  keep=" $$ "; p=$PPID
  while [ "${{p:-1}}" -gt 1 ]; do keep="$keep$p "; p=$(ps -o ppid= -p "$p" | tr -d ' '); done
  roots() {{
    if [ -n "$conn" ]; then
      local ours
      ours=$(grep -slzxF "SSH_CONNECTION=$conn" /proc/[0-9]*/environ | cut -d/ -f3 | tr '\n' ' ')
      list=$(echo $ours | tr ' ' ,)
      [ -n "$list" ] && ps -o pid=,ppid= -p "$list" | while read -r c pc; do
        case " $ours " in *" $pc "*) ;; *) echo "$c" ;; esac
      done
    fi
    s=$PPID
    [ "$(cat "/proc/$s/comm" 2>/dev/null)" = sudo ] && s=$(ps -o ppid= -p "$s" | tr -d ' ')
    ps -o pid= --ppid "$s" 2>/dev/null
  }}
  victims=$(for c in $(roots | sort -u); do case "$keep" in *" $c "*) ;; *) tree "$c" ;; esac; done)
  if [ -n "$victims" ]; then kill -STOP $victims 2>/dev/null; kill -KILL $victims 2>/dev/null; fi
fi
: > "$f"
# Nothing but the lock where there was nothing: leave nothing.
if [ "$had_dir" = 0 ] && [ "$(ls -A "$dir")" = lock ]; then
  rm -f "$f"; rmdir "$dir" 2>/dev/null
  [ "$had_root" = 0 ] && rmdir "$root" 2>/dev/null
fi
true
"#,
        dir = quote(dir),
        locked = String::from_utf8_lossy(LOCKED),
        limit = HEARTBEAT_LIMIT.as_secs(),
    )
}

/// Keeps a value on its one line of the lock file.
fn one_line(v: &str) -> String {
    v.replace(['\n', '\r'], " ")
}

/// The read-only look at a lock: the file's content plus `age=` (seconds since
/// the last heartbeat), or nothing when no live process holds it.
pub fn inspect_script(dir: &str) -> String {
    format!(
        r#"f={f}
[ -s "$f" ] || exit 0
h=$(sed -n 's/^holder=//p' "$f")
[ -n "$h" ] && [ "$(readlink "/proc/$h/fd/9" 2>/dev/null)" = "$f" ] || exit 0
cat "$f"
echo "age=$(( $(date +%s) - $(stat -c %Y "$f") ))"
"#,
        f = quote(&lock_file(dir)),
    )
}

/// Who holds the lock on this host, if anyone; reading takes no lock.
pub async fn inspect(t: &dyn Transport, dir: &str) -> Result<Option<Holder>, String> {
    let out = t
        .exec(&Cmd::new("bash").arg("-s").stdin_bytes(inspect_script(dir)))
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{}: {}", out.status, out.stderr_text().trim()));
    }
    Ok(Holder::parse(&String::from_utf8_lossy(&out.stdout)))
}

/// Every host's holder, read concurrently; hosts nobody holds are left out.
pub async fn inspect_all(
    hosts: &BTreeMap<String, Arc<dyn Transport>>,
    dir: &str,
) -> BTreeMap<String, Holder> {
    let checks = hosts.iter().map(|(h, t)| async move {
        let holder = inspect(t.as_ref(), dir).await.ok().flatten();
        (h.clone(), holder)
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .filter_map(|(h, holder)| Some((h, holder?)))
        .collect()
}

/// Breaks a stale lock on one host: one whose holder has not heard from its
/// run for longer than [`HEARTBEAT_LIMIT`]. A live run's lock is refused.
pub async fn break_stale(t: &dyn Transport, dir: &str) -> Result<Option<Holder>, String> {
    let Some(holder) = inspect(t, dir).await? else {
        return Ok(None);
    };
    let age = holder.heartbeat_age.unwrap_or(0);
    if age <= HEARTBEAT_LIMIT.as_secs() {
        return Err(format!(
            "the lock is held by a live run ({holder}; heard from {age}s ago): stop that run instead"
        ));
    }
    let pid = holder.holder_pid.unwrap_or(0);
    // Killed, the holder cannot empty the file: do it once the lock is free.
    let script = format!(
        "kill -KILL {pid} 2>/dev/null; f={f}\n\
         for i in $(seq 50); do\n\
           if [ ! -d /proc/{pid} ]; then exec 9>>\"$f\"; flock -n 9 && : > \"$f\"; exit 0; fi\n\
           sleep 0.1\n\
         done\n\
         exit 1",
        f = quote(&lock_file(dir)),
    );
    t.exec_ok(&Cmd::new("bash").arg("-c").arg(script))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(holder))
}

type Beat = Arc<tokio::sync::Mutex<Option<tokio::io::DuplexStream>>>;

struct HostLock {
    /// The holder's stdin: a heartbeat goes down it; closing it releases.
    heartbeat: Beat,
    task: tokio::task::JoinHandle<()>,
}

impl HostLock {
    /// Tells the holder to let go and waits (briefly) until it has.
    async fn release(self) {
        if let Some(mut s) = self.heartbeat.lock().await.take() {
            // Said out loud: a holder whose stdin merely ends takes its run for dead.
            let _ = s.write_all(b"release\n").await;
            let _ = s.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Releases every lock at once.
async fn release_all(held: Vec<HostLock>) {
    futures_util::future::join_all(held.into_iter().map(HostLock::release)).await;
}

/// The lock of one run on every host it touches; [`RunLock::release`] ends it.
/// Dropping it ends it too: the holders' stdin closes.
pub struct RunLock {
    held: Vec<HostLock>,
    beat: Option<tokio::task::JoinHandle<()>>,
}

impl RunLock {
    /// Holds `held` with a heartbeat to each holder, after telling each that the
    /// run holds every host (so another run that finds one stops at once).
    fn start(held: Vec<HostLock>) -> RunLock {
        let beats: Vec<Beat> = held.iter().map(|h| h.heartbeat.clone()).collect();
        let beat = tokio::spawn(async move {
            for b in &beats {
                if let Some(s) = b.lock().await.as_mut() {
                    let _ = s.write_all(b"whole\n").await;
                    let _ = s.flush().await;
                }
            }
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                for b in &beats {
                    if let Some(s) = b.lock().await.as_mut() {
                        let _ = s.write_all(b"\n").await;
                        let _ = s.flush().await;
                    }
                }
            }
        });
        RunLock {
            held,
            beat: Some(beat),
        }
    }

    /// Releases every host's lock and waits (briefly) until each is free.
    pub async fn release(mut self) {
        if let Some(b) = self.beat.take() {
            b.abort();
        }
        release_all(std::mem::take(&mut self.held)).await;
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(b) = self.beat.take() {
            b.abort();
        }
        for h in &self.held {
            if let Ok(mut s) = h.heartbeat.try_lock() {
                s.take();
            }
        }
    }
}

/// How long a run that was not asked to wait still waits, host by host, when
/// its first attempt met a run that did not hold every host yet: long enough
/// for a run that raced it to give back the hosts it took in its first attempt.
const CONTENTION_WAIT: Duration = Duration::from_secs(2);

/// Locks every host in `hosts` as `me`, all or nothing; waits up to `wait` for
/// a busy host (0: not at all, but see [`CONTENTION_WAIT`]).
///
/// First every host at once, without waiting: the common case (nobody else
/// runs) costs one round trip, whatever the number of hosts. If any host is
/// held, this run gives back what it took. A holder whose run holds all its
/// hosts (`whole=1` in the file) stops this run at once, unless it may wait;
/// otherwise this run takes the hosts one after the other in name order,
/// waiting on each. Two runs that race cannot both
/// win (each host's `flock` has one holder), and cannot both lose: whichever
/// takes the first host they share in name order waits for the rest, which the
/// other gives back (after its first attempt) or never takes (in name order it
/// is stuck waiting behind that first host).
pub async fn acquire(
    hosts: &BTreeMap<String, Arc<dyn Transport>>,
    dir: &str,
    me: &Holder,
    wait: Duration,
) -> Result<RunLock, LockError> {
    let started = Instant::now();
    let attempts = hosts
        .values()
        .map(|t| lock_host(t.clone(), dir, me, Duration::ZERO));
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for (host, attempt) in hosts
        .keys()
        .zip(futures_util::future::join_all(attempts).await)
    {
        match attempt {
            Ok(h) => held.push(h),
            Err(r) => refused.push((host, r)),
        }
    }
    if refused.is_empty() {
        return Ok(RunLock::start(held));
    }
    release_all(held).await;
    for (host, refusal) in refused {
        let host = host.clone();
        match refusal {
            Refusal::Failed(message) => return Err(LockError::Failed { host, message }),
            // A run that holds every host is not racing this one: do not wait for it
            // unless asked to.
            Refusal::Held(holder) if holder.whole && wait.is_zero() => {
                return Err(LockError::Busy { host, holder });
            }
            Refusal::Held(_) => {}
        }
    }
    let deadline = started + wait.max(CONTENTION_WAIT);
    let mut held = Vec::new();
    for (host, t) in hosts {
        let left = deadline.saturating_duration_since(Instant::now());
        match lock_host(t.clone(), dir, me, left).await {
            Ok(h) => held.push(h),
            Err(refusal) => {
                release_all(held).await;
                let host = host.clone();
                return Err(match refusal {
                    Refusal::Failed(message) => LockError::Failed { host, message },
                    Refusal::Held(holder) if wait.is_zero() => LockError::Busy { host, holder },
                    Refusal::Held(holder) => LockError::TimedOut {
                        host,
                        holder,
                        waited: wait.as_secs(),
                    },
                });
            }
        }
    }
    Ok(RunLock::start(held))
}

/// Why one host was not locked.
enum Refusal {
    /// Another run holds it (after the wait, if any).
    Held(Holder),
    /// The holder could not run.
    Failed(String),
}

/// Starts the holder on one host and waits until it says it holds the lock, or
/// ends (the lock is someone else's, or the holder failed).
async fn lock_host(
    t: Arc<dyn Transport>,
    dir: &str,
    me: &Holder,
    wait: Duration,
) -> Result<HostLock, Refusal> {
    let (near, far) = tokio::io::duplex(256);
    let (tap, mut said) = tokio::sync::mpsc::unbounded_channel();
    let cmd = Cmd::new("bash")
        .arg("-c")
        .arg(holder_script(dir, me, wait))
        .stdin_reader(far)
        .stdout_tap(tap)
        .timeout(Duration::from_secs(365 * 24 * 3600));
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let out = t.exec(&cmd).await;
        let _ = done_tx.send(out);
    });
    let mut heard = Vec::new();
    let mut listening = true;
    loop {
        tokio::select! {
            chunk = said.recv(), if listening => match chunk {
                Some(chunk) => {
                    heard.extend_from_slice(&chunk);
                    if heard.split(|b| *b == b'\n').any(|line| line == LOCKED) {
                        return Ok(HostLock {
                            heartbeat: Arc::new(tokio::sync::Mutex::new(Some(near))),
                            task,
                        });
                    }
                }
                None => listening = false,
            },
            done = &mut done_rx => {
                let out = done
                    .map_err(|_| Refusal::Failed("the lock holder ended".into()))?
                    .map_err(|e| Refusal::Failed(e.to_string()))?;
                if out.status == apim_transport::ExitStatus::Code(BUSY) {
                    let text = String::from_utf8_lossy(&out.stdout);
                    return Err(Refusal::Held(Holder::parse(&text).unwrap_or_default()));
                }
                return Err(Refusal::Failed(format!(
                    "{}: {}",
                    out.status,
                    out.stderr_text().trim()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apim_transport::LocalTransport;

    fn hosts() -> BTreeMap<String, Arc<dyn Transport>> {
        let t = Arc::new(LocalTransport::new().named("local")) as Arc<dyn Transport>;
        BTreeMap::from([("local".to_string(), t)])
    }

    #[tokio::test]
    async fn a_second_run_is_refused_naming_the_first_and_proceeds_once_it_is_released() {
        // should: while one lock is held, a second acquire fails at once naming
        // the holder, `inspect` reports it; after release the second one succeeds.
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap().to_string();
        let hosts = hosts();
        let first = Holder::this_process("apply one".into());
        let lock = acquire(&hosts, &dir, &first, Duration::ZERO).await.unwrap();
        let seen = inspect(hosts["local"].as_ref(), &dir)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.command, "apply one");
        let started = Instant::now();
        let second = Holder::this_process("apply two".into());
        match acquire(&hosts, &dir, &second, Duration::ZERO).await {
            Err(LockError::Busy { holder, .. }) => assert_eq!(holder.command, "apply one"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("two runs held the lock"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        lock.release().await;
        assert!(
            inspect(hosts["local"].as_ref(), &dir)
                .await
                .unwrap()
                .is_none()
        );
        let lock = acquire(&hosts, &dir, &second, Duration::ZERO)
            .await
            .unwrap();
        lock.release().await;
    }

    #[tokio::test]
    async fn a_waiting_run_takes_the_lock_when_it_is_released() {
        // should: with a wait, the second run gets the lock once the first lets go.
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().to_str().unwrap().to_string();
        let hosts = hosts();
        let lock = acquire(
            &hosts,
            &dir,
            &Holder::this_process("one".into()),
            Duration::ZERO,
        )
        .await
        .unwrap();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            lock.release().await;
        });
        let second = acquire(
            &hosts,
            &dir,
            &Holder::this_process("two".into()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        releaser.await.unwrap();
        second.release().await;
    }

    #[test]
    fn a_lock_file_parses_and_reads_as_one_line() {
        let h = Holder::parse(
            "user=ops\ncontroller=ci-7\npid=42\ncommand=apim-deploy apply x.toml\nsince=2026-12-02T10:00:00Z\nholder=9\nage=3\n",
        )
        .unwrap();
        assert_eq!(h.holder_pid, Some(9));
        assert_eq!(h.heartbeat_age, Some(3));
        assert_eq!(
            h.to_string(),
            "ops@ci-7 pid 42 (`apim-deploy apply x.toml`) since 2026-12-02T10:00:00Z"
        );
        assert!(Holder::parse("").is_none());
    }
}
