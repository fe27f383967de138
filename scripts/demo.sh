#!/usr/bin/env bash
# The main job on the built-in local lab, as the README promises: install what the lab
# needs, build apim-deploy, bring up a lab of real hosts (4 app hosts + a database host,
# each a real sshd in its own namespaces on 127.0.10.x), deploy WSO2 API Manager 1.9
# (the stand-in distribution) onto it, and show that a second run changes nothing.
# Run as root on Debian. `apim-deploy lab down` removes everything afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

layout=${LAYOUT:-one-per-host}   # one-per-host | all-in-one | two-gateways
state=${LAB_STATE_DIR:-/tmp/apimlab}

bash scripts/install-deps.sh
cargo build --release --locked
bin=target/release/apim-deploy

"$bin" lab up --layout "$layout" --state-dir "$state"
"$bin" check "$state/inventory.toml"
"$bin" apply "$state/inventory.toml"
echo
echo "== second run: nothing to change"
"$bin" apply "$state/inventory.toml"
echo
echo "The cluster is up. Try: $bin status $state/inventory.toml"
echo "                         $bin plan $state/inventory.toml"
echo "Tear it down with:       $bin lab down --state-dir $state"
