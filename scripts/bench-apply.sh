#!/usr/bin/env bash
# Speed figures of `apim-deploy apply` (fresh, no-op, 50-host no-op). A benchmark, not a test: it prints figures
# and writes nothing into the repository. Root on Linux (it builds labs); release build.
#
#   scripts/bench-apply.sh                # both parts
#   PARTS=four scripts/bench-apply.sh     # only the 4-host lab; PARTS=fifty: only the 50-host lab
#   PARTS=rotation scripts/bench-apply.sh # the DB app password's rotation against a rolling restart
#
# Part "four": 4 app hosts (one role each) + db, the 150 MiB stand-in with a 3 s start delay.
#   * fresh `apply`: wall time and controller peak RSS (/usr/bin/time -v);
#   * no-op rerun, RUNS times: wall time of each, peak RSS, and the SSH channels each host's
#     sshd opened during one rerun (sshd at LogLevel DEBUG1 logs one
#     `server_input_channel_open` per channel: one channel is one command round trip).
# Part "fifty": 50 app hosts (KM, GW, Pub, Store + 46 more gateways) + db, the small stand-in:
#   fresh apply once (wall), then the no-op rerun RUNS times.
#
# Part "rotation": the 4-host lab, small stand-in with a 3 s start delay, converged. RUNS times:
#   a plain `restart --rolling` (the yardstick: one rolling restart), then `apply` after a new
#   DB app password was written to the lab's secret file (second login slot, servers switched in
#   their rolling restart, the old slot dropped). The difference is what the rotation costs on top.
#
# Environment: PREFIX4 / PREFIX50 (lab prefixes, default 127.0.47 / 127.0.48), RUNS (5),
# FORKS50 (nodes started at once in the 50-host fresh apply, 3), CARGO_TARGET_DIR (target).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX4=${PREFIX4:-127.0.47}
PREFIX50=${PREFIX50:-127.0.48}
RUNS=${RUNS:-5}
PARTS=${PARTS:-four fifty}
STATE4=/tmp/apim-bench-apply-4
STATE50=/tmp/apim-bench-apply-50
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --locked -p apim-deploy >&2
BIN=$(realpath "$TARGET/release/apim-deploy")

cleanup() {
  "$BIN" lab down --state-dir "$STATE4" >/dev/null 2>&1 || true
  "$BIN" lab down --state-dir "$STATE50" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Runs `apply` under /usr/bin/time -v; prints "<wall seconds> <peak RSS KiB>".
timed_apply() {
  local inventory=$1 log=$2 t0 t1
  shift 2
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$log.time" "$BIN" apply "$inventory" "$@" >"$log" 2>&1 || {
    echo "apply failed, see $log" >&2
    grep '^error:' "$log" | cut -c1-300 >&2
    return 1
  }
  t1=$(date +%s.%N)
  printf '%.2f %s\n' "$(echo "$t1 - $t0" | bc)" \
    "$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")"
}

# Replaces the lab's small stand-in with another one at the same paths, and the digests
# in the inventory with the new ones.
replace_dist() {
  local state=$1
  shift
  local old_zip old_jar new
  old_zip=$(sha256sum "$state/dist/wso2am-1.9.0.zip" | cut -c1-64)
  old_jar=$(sha256sum "$state/dist/mysql-connector-java-5.1.49-bin.jar" | cut -c1-64)
  "$BIN" lab dist --out "$state/dist" "$@" >/dev/null
  new=$(sha256sum "$state/dist/wso2am-1.9.0.zip" | cut -c1-64)
  sed -i "s/$old_zip/$new/" "$state/inventory.toml"
  new=$(sha256sum "$state/dist/mysql-connector-java-5.1.49-bin.jar" | cut -c1-64)
  sed -i "s/$old_jar/$new/" "$state/inventory.toml"
}

# sshd at DEBUG1 on a host (restarted so the listener reads it).
sshd_debug() {
  local state=$1 host=$2
  echo "LogLevel DEBUG1" >>"$state/hosts/$host/etc.upper/ssh/sshd_config"
  "$BIN" lab kill "$host" --state-dir "$state" >/dev/null
  "$BIN" lab revive "$host" --state-dir "$state" >/dev/null
}

channels() {
  grep -c 'server_input_channel_open' "$1/hosts/$2/log/sshd.log" || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

part_four() {
  echo "== 4 app hosts + db, 150 MiB stand-in, start delay 3 s"
  "$BIN" lab up --prefix "$PREFIX4" --state-dir "$STATE4" >/dev/null
  replace_dist "$STATE4" --size-mb 150 --start-delay-secs 3
  echo "archive: $(du -m "$STATE4/dist/wso2am-1.9.0.zip" | cut -f1) MiB"
  read -r wall rss < <(timed_apply "$STATE4/inventory.toml" /tmp/bench-apply-4-fresh.log)
  echo "fresh apply: ${wall} s wall, peak RSS ${rss} KiB"

  for h in app1 app2 app3 app4 db; do sshd_debug "$STATE4" "$h"; done
  declare -A before
  for h in app1 app2 app3 app4 db; do before[$h]=$(channels "$STATE4" "$h"); done
  walls=()
  rsss=()
  for i in $(seq 1 "$RUNS"); do
    read -r wall rss < <(timed_apply "$STATE4/inventory.toml" "/tmp/bench-apply-4-rerun-$i.log")
    walls+=("$wall")
    rsss+=("$rss")
    if [ "$i" = 1 ]; then
      line="channels per host in one rerun:"
      for h in app1 app2 app3 app4 db; do
        line+=" $h=$(($(channels "$STATE4" "$h") - before[$h]))"
      done
    fi
  done
  echo "no-op rerun: ${walls[*]} s wall (median $(printf '%s\n' "${walls[@]}" | median)), peak RSS ${rsss[*]} KiB"
  echo "$line"
  tail -n 8 /tmp/bench-apply-4-rerun-1.log | sed 's/^/  | /'
  "$BIN" lab down --state-dir "$STATE4" >/dev/null
}

part_fifty() {
  echo "== 50 app hosts (KM, GW, Pub, Store + 46 gateways) + db, small stand-in"
  "$BIN" lab up --prefix "$PREFIX50" --state-dir "$STATE50" --app-hosts 50 >/dev/null
  # 47 stand-in gateways starting at once on a small machine time out on each other's
  # Hazelcast and TLS checks: start at most FORKS50 nodes at a time. A node that still
  # fails its start (a peer or the database timing out under load) is restarted by the
  # next apply, so the fresh apply is repeated until it converges (at most 3 times).
  for attempt in 1 2 3; do
    if read -r wall rss < <(timed_apply "$STATE50/inventory.toml" "/tmp/bench-apply-50-fresh-$attempt.log" \
      --forks "${FORKS50:-3}" --start-timeout 60 2>/dev/null); then
      echo "fresh apply attempt $attempt (--forks ${FORKS50:-3}): ${wall} s wall, peak RSS ${rss} KiB"
      break
    fi
    echo "fresh apply attempt $attempt failed: $(grep -c '^error:' "/tmp/bench-apply-50-fresh-$attempt.log") node(s) unhealthy"
    [ "$attempt" = 3 ] && return 1
  done
  walls=()
  for i in $(seq 1 "$RUNS"); do
    read -r wall rss < <(timed_apply "$STATE50/inventory.toml" "/tmp/bench-apply-50-rerun-$i.log")
    walls+=("$wall")
  done
  echo "no-op rerun: ${walls[*]} s wall (median $(printf '%s\n' "${walls[@]}" | median)), peak RSS ${rss} KiB"
  "$BIN" lab down --state-dir "$STATE50" >/dev/null
}

part_rotation() {
  echo "== DB app password rotation, 4 app hosts + db, small stand-in, start delay 3 s"
  "$BIN" lab up --prefix "$PREFIX4" --state-dir "$STATE4" >/dev/null
  replace_dist "$STATE4" --start-delay-secs 3
  timed_apply "$STATE4/inventory.toml" /tmp/bench-rotation-fresh.log >/dev/null
  local t0 t1 restart apply
  for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    "$BIN" restart "$STATE4/inventory.toml" --rolling >"/tmp/bench-rotation-restart-$i.log" 2>&1
    t1=$(date +%s.%N)
    restart=$(printf '%.2f' "$(echo "$t1 - $t0" | bc)")
    # A fresh random password each time: the rotation goes to the other login slot.
    head -c 18 /dev/urandom | base64 | tr -d '\n/+' >"$STATE4/secrets/db_app_password"
    read -r apply _ < <(timed_apply "$STATE4/inventory.toml" "/tmp/bench-rotation-apply-$i.log")
    echo "run $i: restart --rolling ${restart} s, rotation apply ${apply} s, difference $(printf '%.2f' "$(echo "$apply - $restart" | bc)") s"
  done
  "$BIN" lab down --state-dir "$STATE4" >/dev/null
}

echo "apim-deploy $(git rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for part in $PARTS; do
  "part_$part"
done
