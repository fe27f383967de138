//! The run lock: one run that changes anything at a time.
//!
//! On every host a run touches, a small shell process holds `flock` on
//! `<dir>/lock` for as long as the run lasts, and writes who holds it into
//! that same file (user, controller host, controller pid, command, since when).
//! The holder lives on a channel of the run's own SSH connection and reads
//! a heartbeat on stdin, so the lock dies with the run whatever way the run
//! ends: a clean release closes stdin; a controller killed outright (SIGKILL)
//! closes its connection, and sshd closes the holder's stdin; a connection
//! that goes silent (a cut network) stops the heartbeat, and the holder gives
//! up after [`HEARTBEAT_LIMIT`]. The kernel drops a `flock` with its last
//! holder, so no file is ever left claiming a lock nobody holds.
//!
//! Hosts are locked one after the other in name order (every run uses the same
//! order, so two runs cannot each hold a host the other waits for), and a run
//! that cannot lock every host releases the ones it got: all or nothing.
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

/// The holder: open the file (without truncating it: another holder's
/// information stays readable), take the lock, write who we are, then hold it
/// while the heartbeat comes in.
fn holder_script(dir: &str, me: &Holder, token: &str, wait_secs: u64) -> String {
    let fields: String = me
        .fields()
        .iter()
        .map(|(k, v)| format!(" {}", quote(&format!("{k}={}", one_line(v)))))
        .collect();
    format!(
        r#"set -u
dir={dir}; f="$dir/lock"
root=${{dir%/*}}; had_root=0; had_dir=0
[ -d "$root" ] && had_root=1; [ -d "$dir" ] && had_dir=1
mkdir -p "$dir" || exit 1
# A run that finds no install root leaves none behind (it removes the lock file
# it created), so a holder checks that the file it locked is still the one at
# the path, or starts again.
while :; do
  exec 9>>"$f" || exit 1
  if ! flock -n 9; then
    if [ {wait} = 0 ] || ! flock -w {wait} 9; then cat "$f"; exit {BUSY}; fi
  fi
  [ "$(stat -Lc %i /proc/$$/fd/9)" = "$(stat -c %i "$f" 2>/dev/null)" ] && break
  exec 9>&-
done
printf '%s\n'{fields} "since=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "holder=$$" "token={token}" > "$f"
clean=0
while IFS= read -r -t {limit} line; do
  [ "$line" = release ] && {{ clean=1; break; }}
  touch "$f"
done
if [ "$clean" = 0 ]; then
  # The run is gone (killed, or cut off): its commands still running on this
  # host (an unpack, a start) are this session's other processes. End them
  # before the lock is free, so the next run never races a dead run's work.
  s=$PPID
  [ "$(cat "/proc/$s/comm" 2>/dev/null)" = sudo ] && s=$(ps -o ppid= -p "$s" | tr -d ' ')
  tree() {{ local c; echo "$1"; for c in $(ps -o pid= --ppid "$1"); do tree "$c"; done; }}
  victims=$(for c in $(ps -o pid= --ppid "$s"); do [ "$c" = $$ ] || tree "$c"; done)
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
        wait = wait_secs,
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
    let script = format!(
        "kill -KILL {pid} 2>/dev/null; for i in $(seq 50); do [ -d /proc/{pid} ] || exit 0; sleep 0.1; done; exit 1"
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

/// The lock of one run on every host it touches; [`RunLock::release`] ends it.
/// Dropping it ends it too: the holders' stdin closes.
pub struct RunLock {
    held: Vec<HostLock>,
    beat: Option<tokio::task::JoinHandle<()>>,
}

impl RunLock {
    /// Releases every host's lock and waits (briefly) until each is free.
    pub async fn release(mut self) {
        self.release_all().await;
    }

    async fn release_all(&mut self) {
        if let Some(b) = self.beat.take() {
            b.abort();
        }
        for h in std::mem::take(&mut self.held) {
            if let Some(mut s) = h.heartbeat.lock().await.take() {
                // Said out loud: a holder whose stdin merely ends takes its run for dead.
                let _ = s.write_all(b"release\n").await;
                let _ = s.shutdown().await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
        }
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

/// Locks every host in `hosts`, in name order, as `me`; waits up to `wait` for
/// a busy host (0: not at all). On any failure the hosts already locked are
/// released before the error returns: all or nothing.
pub async fn acquire(
    hosts: &BTreeMap<String, Arc<dyn Transport>>,
    dir: &str,
    me: &Holder,
    wait: Duration,
) -> Result<RunLock, LockError> {
    let started = Instant::now();
    let mut lock = RunLock {
        held: Vec::new(),
        beat: None,
    };
    for (host, t) in hosts {
        let left = wait.saturating_sub(started.elapsed());
        match lock_host(host, t.clone(), dir, me, left).await {
            Ok(h) => lock.held.push(h),
            Err(e) => {
                lock.release_all().await;
                return Err(e);
            }
        }
    }
    let beats: Vec<Beat> = lock.held.iter().map(|h| h.heartbeat.clone()).collect();
    lock.beat = Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            for b in &beats {
                if let Some(s) = b.lock().await.as_mut() {
                    let _ = s.write_all(b"\n").await;
                    let _ = s.flush().await;
                }
            }
        }
    }));
    Ok(lock)
}

/// Starts the holder on one host and waits until the lock file carries this
/// run's token (the lock is ours) or the holder ends (the lock is someone else's).
async fn lock_host(
    host: &str,
    t: Arc<dyn Transport>,
    dir: &str,
    me: &Holder,
    wait: Duration,
) -> Result<HostLock, LockError> {
    let token = format!("{}-{}", me.pid, random_token());
    let (near, far) = tokio::io::duplex(256);
    let cmd = Cmd::new("bash")
        .arg("-c")
        .arg(holder_script(dir, me, &token, wait.as_secs()))
        .stdin_reader(far)
        .timeout(Duration::from_secs(365 * 24 * 3600));
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
    let holder_t = t.clone();
    let task = tokio::spawn(async move {
        let out = holder_t.exec(&cmd).await;
        let _ = done_tx.send(out);
    });
    let failed = |message: String| LockError::Failed {
        host: host.to_string(),
        message,
    };
    let file = lock_file(dir);
    let mine = format!("token={token}");
    // The holder takes the lock within milliseconds: look early, then back off, so
    // a run does not wait a fixed interval on every host it locks.
    let mut pause = Duration::from_millis(5);
    loop {
        tokio::select! {
            done = &mut done_rx => {
                let out = done
                    .map_err(|_| failed("the lock holder ended".into()))?
                    .map_err(|e| failed(e.to_string()))?;
                if out.status == apim_transport::ExitStatus::Code(BUSY) {
                    let holder = Holder::parse(&String::from_utf8_lossy(&out.stdout))
                        .unwrap_or_default();
                    return Err(if wait.is_zero() {
                        LockError::Busy { host: host.to_string(), holder }
                    } else {
                        LockError::TimedOut { host: host.to_string(), holder, waited: wait.as_secs() }
                    });
                }
                return Err(failed(format!("{}: {}", out.status, out.stderr_text().trim())));
            }
            _ = tokio::time::sleep(pause) => {
                pause = (pause * 2).min(Duration::from_millis(100));
                let text = t.read_file(&file).await.map_err(|e| failed(e.to_string()))?;
                if text.is_some_and(|b| String::from_utf8_lossy(&b).lines().any(|l| l == mine)) {
                    return Ok(HostLock {
                        heartbeat: Arc::new(tokio::sync::Mutex::new(Some(near))),
                        task,
                    });
                }
            }
        }
    }
}

/// A token no other run picks, so a holder recognises its own lock file.
fn random_token() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    hex::encode(b)
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
            "user=ops\ncontroller=ci-7\npid=42\ncommand=apim-deploy apply x.toml\nsince=2026-12-02T10:00:00Z\nholder=9\ntoken=t\nage=3\n",
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
