#!/usr/bin/env bash
# The whole test suite, as the README promises and .ci/run runs it:
# installs what the tests need, then formatting, lints, unit and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# APIM_LAB_TESTS=1: the end-to-end tests build real lab hosts (root, namespaces) and must run here.
APIM_LAB_TESTS=1 cargo test --workspace --locked
