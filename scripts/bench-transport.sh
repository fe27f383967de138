#!/usr/bin/env bash
# Benchmark of the SSH transport on a lab (a measurement, not a test; root on Linux).
# Brings up a 4-host lab (plus db) at 127.0.91, prints the figures recorded in
# docs/benchmarks.md ("SSH transport"), then tears the lab down.
#   connect+auth per host, per-command round trip on one connection, `facts` wall time,
#   upload MB/s (russh, hash-verified) next to OpenSSH scp to the same host.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
STATE=${BENCH_STATE_DIR:-/tmp/apimlab-bench}
PREFIX=${BENCH_PREFIX:-127.0.91}
SIZE_MB=${BENCH_UPLOAD_MB:-200}
# A shaped link (lab shape): BENCH_DELAY_MS each way, BENCH_RATE_MBIT per direction.
DELAY_MS=${BENCH_DELAY_MS:-}
RATE_MBIT=${BENCH_RATE_MBIT:-0}

cargo build -q --bin apim-deploy
cargo build -q -p apim-transport --example transport_bench
BIN=$CARGO_TARGET_DIR/debug/apim-deploy
BENCH=$CARGO_TARGET_DIR/debug/examples/transport_bench

"$BIN" lab up --state-dir "$STATE" --prefix "$PREFIX" --no-dist >/dev/null
trap '"$BIN" lab down --state-dir "$STATE" >/dev/null' EXIT
eval "$("$BIN" lab env --state-dir "$STATE")"
if [ -n "$DELAY_MS" ]; then
  "$BIN" lab shape --state-dir "$STATE" --delay-ms "$DELAY_MS" --rate-mbit "$RATE_MBIT"
fi
hosts=("$PREFIX.1" "$PREFIX.2" "$PREFIX.3" "$PREFIX.4")

work=$(mktemp -d)
trap '"$BIN" lab down --state-dir "$STATE" >/dev/null; rm -rf "$work"' EXIT
head -c $((SIZE_MB << 20)) /dev/urandom >"$work/upload.bin"
sha=$(sha256sum "$work/upload.bin" | cut -d' ' -f1)

echo "## environment"
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(ssh -V 2>&1), date $(date -u +%FT%TZ)"
echo
echo "## russh transport (dev profile: dependencies at opt-level 2)"
"$BENCH" "$LAB_SSH_KEY" "$LAB_KNOWN_HOSTS" "$work/upload.bin" "$sha" "${hosts[@]}"

ssh_opts=(-F /dev/null -i "$LAB_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes
  -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$LAB_KNOWN_HOSTS" -o LogLevel=ERROR)
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "## OpenSSH for comparison"
for i in $(seq 10); do
  t0=$(now_ns); ssh "${ssh_opts[@]}" "root@${hosts[0]}" true; t1=$(now_ns)
  echo $(((t1 - t0) / 1000))
done | median | awk '{printf "ssh_fresh_connection_true: median %.1f ms\n", $1 / 1000}'
for i in 1 2 3; do
  t0=$(now_ns); scp -q "${ssh_opts[@]}" "$work/upload.bin" "root@${hosts[0]}:/opt/scp-upload.bin"; t1=$(now_ns)
  awk -v s=$((SIZE_MB << 20)) -v ns=$((t1 - t0)) 'BEGIN {printf "%.0f\n", s / (ns / 1e9) / 1e6}'
done | median | awk '{printf "scp_mb_per_s: median %s MB/s\n", $1}'

echo
echo "## facts on the lab ($(grep -c '^\[\[hosts\]\]' "$LAB_INVENTORY") hosts)"
for i in $(seq 5); do
  t0=$(now_ns); "$BIN" facts "$LAB_INVENTORY" >/dev/null; t1=$(now_ns)
  echo $(((t1 - t0) / 1000))
done | median | awk '{printf "facts_wall_time: median %.0f ms (5 runs, whole process)\n", $1 / 1000}'
