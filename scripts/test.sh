#!/usr/bin/env bash
# The test suite, as CI runs it: set up the machine, check formatting and lints, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# The hostile corpus runs its 10,000-cluster and 50,000-user inventories through the release
# binary (under 10 s and 1 GiB each), as users run it.
cargo build --locked --release
cargo test --locked
