#!/usr/bin/env bash
# Create and grow benchmarks on empty HA sandbox nodes (scripts/sandbox.sh, PGITOPS_SANDBOX_HA:
# sshd + private Pigsty paths + a private runsvdir each, nothing running), the release binary:
#   (a) create: one commit declaring a 3-member etcd and a 3-node `pg-test` (business user and
#       database) -> `pgitops apply` of it returns success; then checked: the leader streams to
#       both replicas (pg_stat_replication) and the business user logs in. Target <= 20 s.
#   (b) grow: the next commit adds a 4th member -> apply returns success; then checked: it
#       streams. Target <= 15 s.
# Each run on fresh empty nodes (torn down and laid out again), PGITOPS_BENCH_RUNS runs (default
# 3). Prints the median, min and max wall time of each, and the per-action times pgitops
# reports. Every apply is a fresh process with cold SSH connections and --no-ssh-reuse: the
# nodes (and their host keys) are new each run, and the benchmark leaves no ssh master behind.
# Addresses: PGITOPS_BENCH_HA_FROM (default 127.0.52.11) and the three after it.
# Run as root: bash benches/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
runs=${PGITOPS_BENCH_RUNS:-3}
export PGITOPS_SANDBOX=${PGITOPS_BENCH_SANDBOX:-/dev/shm/pgitops-bench-cluster}
export PGITOPS_SANDBOX_CLUSTERS="" PGITOPS_SANDBOX_HA=4 PGITOPS_SANDBOX_HA_FROM=${PGITOPS_BENCH_HA_FROM:-127.0.52.11}
work=$(mktemp -d /tmp/pgitops-bench-cluster.XXXXXX)
trap 'bash "$root/scripts/sandbox.sh" down >/dev/null; rm -rf "$work"' EXIT
source "$root/benches/common.sh"
source "$root/benches/ha.sh"

create=() grow=()
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores at the start"
for r in $(seq 1 "$runs"); do
  bash "$root/scripts/sandbox.sh" up >/dev/null
  read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
  ips=($(ha_ips)) three="${ips[0]},${ips[1]},${ips[2]}"
  repo=$work/run$r
  mkdir -p "$repo" && cd "$repo" && git init -q -b main
  ha_inventory "$three" "$three" > pigsty.yml
  git add -A && git -c user.name=b -c user.email=b@b commit -qm "etcd and pg-test"
  t=$(now_ms)
  "$bin" apply "${ssh[@]}" --no-ssh-reuse > "$work/create$r.out" || { cat "$work/create$r.out"; echo "create $r failed" >&2; exit 1; }
  create+=($(($(now_ms) - t)))
  wait_streaming "${ips[0]}" 2 || { echo "create $r: not streaming" >&2; exit 1; }
  login "${ips[0]}" || { echo "create $r: dbuser_test does not log in" >&2; exit 1; }
  ha_inventory "$three" "$three,${ips[3]}" > pigsty.yml
  git -c user.name=b -c user.email=b@b commit -qam "pg-test: a 4th member"
  t=$(now_ms)
  "$bin" apply "${ssh[@]}" --no-ssh-reuse > "$work/grow$r.out" || { cat "$work/grow$r.out"; echo "grow $r failed" >&2; exit 1; }
  grow+=($(($(now_ms) - t)))
  wait_streaming "${ips[0]}" 3 || { echo "grow $r: the 4th member does not stream" >&2; exit 1; }
  echo "run $r: create ${create[-1]} ms, grow ${grow[-1]} ms"
  sed -n 's/^\[applied\] \([^ ]*\) (\([0-9]*\) ms)$/  create \1 \2/p' "$work/create$r.out"
  sed -n 's/^\[applied\] \([^ ]*\) (\([0-9]*\) ms)$/  grow \1 \2/p' "$work/grow$r.out"
  grep -h "healthy .* after the first write" "$work/create$r.out" | sed 's/^ */  /' || true
  cd "$root"
  bash "$root/scripts/sandbox.sh" down >/dev/null
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at the end"
printf 'commit -> 3-member etcd + 3-node pg-test serving (target <= 20000 ms): '; printf '%s\n' "${create[@]}" | stats
printf 'commit -> 4th member streaming (target <= 15000 ms): '; printf '%s\n' "${grow[@]}" | stats
