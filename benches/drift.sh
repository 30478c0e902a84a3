#!/usr/bin/env bash
# Drift check time for a 1,000-object cluster on sandbox nodes (scripts/sandbox.sh: one sshd +
# PostgreSQL 15 + pgbouncer per loopback address): `pg-drift` on 127.0.76.31 (primary) and
# 127.0.76.32 (streaming replica) declares 500 users, 150 databases with one schema each
# (300), 180 HBA rules and 20 parameters: 1,000 declared objects. After one `pgitops apply`,
# each run is a fresh `pgitops drift --exit-code` process with cold SSH connections (it must
# exit 0: nothing drifted); then one hand-made change (a role's connection limit) must be found
# (exit 1). Prints the median, min and max wall time of PGITOPS_BENCH_RUNS (default 5) runs.
# The binary: PGITOPS_BENCH_BIN (default: a release build of this tree).
# Run as root: bash benches/drift.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ -z "${PGITOPS_BENCH_BIN:-}" ]; then
  cargo build --release --locked -q
  bin=$root/target/release/pgitops
else
  bin=$PGITOPS_BENCH_BIN
fi
runs=${PGITOPS_BENCH_RUNS:-5}
export PGITOPS_SANDBOX=${PGITOPS_BENCH_SANDBOX:-/dev/shm/pgitops-bench-drift}
export PGITOPS_SANDBOX_CLUSTERS="127.0.76.31,127.0.76.32"
trap 'bash "$root/scripts/sandbox.sh" down >/dev/null' EXIT
work=$(mktemp -d /tmp/pgitops-bench-drift.XXXXXX)
source "$root/benches/common.sh"

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000000)); }

bash "$root/scripts/sandbox.sh" up >/dev/null
read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
repo=$work/repo
mkdir -p "$repo" && cd "$repo" && git init -q -b main
python3 - > pigsty.yml <<'PY'
params = ["work_mem: 8MB", "maintenance_work_mem: 128MB", "log_min_duration_statement: 1000",
          "statement_timeout: 0", "idle_in_transaction_session_timeout: 600000", "lock_timeout: 0",
          "log_checkpoints: on", "log_connections: off", "log_disconnections: off",
          "log_lock_waits: on", "log_temp_files: 1024", "log_autovacuum_min_duration: 1000",
          "checkpoint_timeout: 15min", "checkpoint_completion_target: 0.9", "random_page_cost: 1.1",
          "seq_page_cost: 1", "effective_cache_size: 1GB", "default_statistics_target: 200",
          "autovacuum_naptime: 1min", "autovacuum_vacuum_cost_limit: 2000"]
out = ["all:", "  children:", "    pg-drift:", "      hosts:",
       "        127.0.76.31: { pg_seq: 1, pg_role: primary }",
       "        127.0.76.32: { pg_seq: 2, pg_role: replica }",
       "      vars:", "        pg_cluster: pg-drift", "        pg_users:"]
out += [f"          - {{ name: bench_u{u}, password: Bench.Pass.{u}, connlimit: 5, roles: [ dbrole_readonly ] }}" for u in range(500)]
out += ["        pg_databases:"]
out += [f"          - {{ name: bench_db{d}, owner: bench_u{d}, schemas: [ s{d} ] }}" for d in range(150)]
out += ["        pg_parameters:"] + [f"          {p}" for p in params]
out += ["        pg_hba_rules:"]
out += [f"          - {{ user: bench_u{r}, db: bench_db{r % 150}, addr: 127.1.{r // 200}.{r % 200 + 1}/32, auth: pwd, title: 'rule {r}' }}" for r in range(180)]
out += ["  vars:", "    admin_ip: 127.0.0.1", "    pg_version: 15", "    pg_bin_dir: /usr/lib/postgresql/15/bin",
        "    node_firewall_intranet: [ 127.0.0.0/8 ]",
        "    pg_default_hba_rules:",
        "      - { user: '${dbsu}', db: all, addr: local, auth: ident, title: 'dbsu', order: 100 }",
        "      - { user: '${repl}', db: replication, addr: intra, auth: pwd, title: 'replication', order: 250 }",
        "      - { user: '+dbrole_readonly', db: all, addr: intra, auth: pwd, title: 'members', order: 600 }"]
print("\n".join(out))
PY
git add -A && git -c user.name=b -c user.email=b@b commit -qm base
s=$(date +%s)
"$bin" apply "${ssh[@]}" >/dev/null || { echo "the apply failed" >&2; "$bin" apply "${ssh[@]}" | grep -v '^\[applied\]' | head -40; exit 1; }
echo "first apply of the 1,000 objects: $(( $(date +%s) - s )) s"
times=()
for _ in $(seq 1 "$runs"); do
  times+=("$(ms "$bin" drift "${ssh[@]}" --no-ssh-reuse --exit-code)")
done
printf 'drift check, 1,000 objects on 2 nodes, no drift: '; printf '%s\n' "${times[@]}" | stats
# One change by hand must be found.
ssh -F "$PGITOPS_SANDBOX/ssh/config" -o UserKnownHostsFile="$PGITOPS_SANDBOX/ssh/known_hosts" \
  -i "$PGITOPS_SANDBOX/ssh/id_ed25519" root@127.0.76.31 \
  "cd / && runuser -u postgres -- /usr/lib/postgresql/15/bin/psql -X -q -h /var/run/postgresql -c 'ALTER ROLE bench_u7 CONNECTION LIMIT 9'"
set +e
found=$("$bin" drift "${ssh[@]}" --no-ssh-reuse --exit-code)
code=$?
set -e
[ "$code" = 1 ] || { echo "the hand-made change was not found (exit $code):" >&2; echo "$found" >&2; exit 1; }
echo "$found" | head -3
