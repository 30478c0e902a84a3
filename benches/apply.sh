#!/usr/bin/env bash
# Apply benchmarks on sandbox nodes (scripts/sandbox.sh: one sshd + PostgreSQL 15 per loopback
# address), each `pgitops apply` a fresh process with cold SSH connections:
#   (a) one new user on a 3-node cluster;
#   (b) an HBA change on 30 hosts (10 clusters x 3).
# Each is measured side by side in one run: the native executor, the Pigsty executor (the real
# Pigsty v4.5.0 playbooks of ../shared/pigsty through ansible-playbook, forks=10), and
# for (b) one direct `ansible-playbook pgsql.yml -t pg_hba,...` over all 30 hosts with forks=10.
# Prints the median, min and max wall time of PGITOPS_BENCH_RUNS (default 7) runs of each.
# Run as root: bash benches/apply.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
runs=${PGITOPS_BENCH_RUNS:-7}
export PGITOPS_SANDBOX=/dev/shm/pgitops-bench
trap 'bash "$root/scripts/sandbox.sh" down >/dev/null' EXIT
work=$(mktemp -d /tmp/pgitops-bench.XXXXXX)
source "$root/benches/common.sh"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

bench() { # name, clusters, change-kind
  local name=$1 kind=$3
  CLUSTERS=$2
  PGITOPS_SANDBOX_CLUSTERS=$2 bash "$root/scripts/sandbox.sh" up >/dev/null
  read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
  local repo=$work/$name
  mkdir -p "$repo" && cd "$repo" && git init -q -b main
  inventory 0 127.0.0.0/8 > pigsty.yml
  git add -A && git -c user.name=b -c user.email=b@b commit -qm base
  "$bin" apply "${ssh[@]}" >/dev/null || { echo "first apply failed" >&2; "$bin" apply "${ssh[@]}"; exit 1; }
  local times=()
  for i in $(seq 1 "$runs"); do
    if [ "$kind" = user ]; then inventory "$i" 127.0.0.0/8 > pigsty.yml; else inventory 0 "127.$((i % 2)).0.0/8" > pigsty.yml; fi
    git -c user.name=b -c user.email=b@b commit -qam "change $i"
    times+=("$(ms "$bin" apply "${ssh[@]}")")
    "$bin" plan --exit-code >/dev/null || { echo "apply $i left changes" >&2; exit 1; }
  done
  printf '%s native: ' "$name"; printf '%s\n' "${times[@]}" | stats
  local home; home=$(pigsty_home)
  times=()
  for i in $(seq $((runs + 1)) $((2 * runs))); do
    if [ "$kind" = user ]; then inventory "$i" 127.0.0.0/8 > pigsty.yml; else inventory 0 "127.$((i % 2)).0.0/8" > pigsty.yml; fi
    git -c user.name=b -c user.email=b@b commit -qam "change $i"
    times+=("$(ms "$bin" apply "${ssh[@]}" --pigsty-home "$home")")
    "$bin" plan --exit-code >/dev/null || { echo "pigsty apply $i left changes" >&2; exit 1; }
  done
  printf '%s pigsty executor (ansible-playbook): ' "$name"; printf '%s\n' "${times[@]}" | stats
  if [ "$kind" = hba ]; then
    times=()
    for i in $(seq 1 "$runs"); do
      inventory 0 "127.$((i % 2)).0.0/8" > "$home/pigsty.yml"
      times+=("$(cd "$home" && ms ansible-playbook pgsql.yml -i pigsty.yml -l 'pg-b*' -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload -f 10)")
    done
    printf '%s one ansible-playbook over all hosts (forks=10): ' "$name"; printf '%s\n' "${times[@]}" | stats
  fi
  cd "$root"
}

three="127.0.50.11,127.0.50.12,127.0.50.13"
thirty=""
for c in $(seq 0 9); do thirty+="127.0.51.$((c * 3 + 1)),127.0.51.$((c * 3 + 2)),127.0.51.$((c * 3 + 3)) "; done
bench "one-user-3-nodes" "$three" user
bench "hba-30-hosts" "$thirty" hba
rm -rf "$work"
