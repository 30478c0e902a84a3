#!/usr/bin/env bash
# Apply benchmarks on sandbox nodes (scripts/sandbox.sh: one sshd + PostgreSQL 15 per loopback
# address), each `pgitops apply` a fresh process with cold SSH connections:
#   (a) one new user on a 3-node cluster;
#   (b) an HBA change on 30 hosts (10 clusters x 3).
# Each is measured side by side in one run: the native executor, the Pigsty executor (the real
# ansible-playbook running the test Pigsty home of tests/it/support/pigsty_home, forks=10), and
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

# pigsty.yml for clusters given as "ip1,ip2,ip3 ip4,..."; $1 = extra users in the first
# cluster, $2 = the address of a global HBA rule.
inventory() {
  python3 - "$1" "$2" "$CLUSTERS" <<'PY'
import sys
users, hba_addr, clusters = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
out = ["all:", "  children:"]
for i, c in enumerate(clusters):
    ips = c.split(",")
    out += [f"    pg-b{i}:", "      hosts:"]
    out += [f"        {ip}: {{ pg_seq: {k + 1}, pg_role: {'primary' if k == 0 else 'replica'} }}" for k, ip in enumerate(ips)]
    out += ["      vars:", f"        pg_cluster: pg-b{i}", "        pg_users:"]
    out += ["          - { name: dbuser_base, password: Base.Pass, roles: [ dbrole_readonly ] }"]
    if i == 0:
        out += [f"          - {{ name: bench_u{u}, password: Bench.Pass.{u}, connlimit: 5 }}" for u in range(users)]
out += ["  vars:", "    admin_ip: 127.0.0.1", "    pg_version: 15", "    pg_bin_dir: /usr/lib/postgresql/15/bin", "    node_firewall_intranet: [ 127.0.0.0/8 ]",
        "    pg_default_hba_rules:",
        "      - { user: '${dbsu}', db: all, addr: local, auth: ident, title: 'dbsu', order: 100 }",
        "      - { user: '${repl}', db: replication, addr: intra, auth: pwd, title: 'replication', order: 250 }",
        "      - { user: '+dbrole_readonly', db: all, addr: intra, auth: pwd, title: 'members', order: 600 }",
        "    pg_hba_rules:",
        f"      - {{ user: all, db: all, addr: {hba_addr}, auth: pwd, title: 'bench clients' }}"]
print("\n".join(out))
PY
}

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

# A Pigsty home for ansible: the test fixture playbooks and an ansible.cfg for the sandbox.
pigsty_home() {
  local h=$work/home sb=$PGITOPS_SANDBOX
  mkdir -p "$h"
  cp "$root"/tests/it/support/pigsty_home/*.yml "$h/"
  cat > "$h/ansible.cfg" <<CFG
[defaults]
host_key_checking = True
forks = 10
remote_user = root
private_key_file = $sb/ssh/id_ed25519
retry_files_enabled = False
interpreter_python = /usr/bin/python3
deprecation_warnings = False
force_valid_group_names = ignore
local_tmp = $h/.ansible/tmp
[ssh_connection]
ssh_args = -F $sb/ssh/config -o UserKnownHostsFile=$sb/ssh/known_hosts -o ControlMaster=auto -o ControlPersist=60s -o ControlPath=$h/cp-%C
pipelining = True
CFG
  echo "$h"
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'; }

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
