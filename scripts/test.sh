#!/usr/bin/env bash
# The test suite, as CI runs it: set up the machine, check formatting and lints, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
