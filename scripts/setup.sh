#!/usr/bin/env bash
# Installs what pgitops needs to build, test and run its demo on a fresh Debian 12 machine.
# Idempotent. Run as root (or with sudo available). Set PGITOPS_BENCH=1 to also install the
# benchmark's baseline (ansible-core).
set -euo pipefail

need=(git ca-certificates gcc make pkg-config)
[ "${PGITOPS_BENCH:-0}" = 1 ] && need+=(ansible-core)

missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo (Rust 1.85 or newer) is required; install the Rust toolchain first" >&2
  exit 2
fi
echo "setup: ready ($(cargo --version))"
