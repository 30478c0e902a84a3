#!/usr/bin/env bash
# HAProxy reload under a steady read load, on HA sandbox nodes (scripts/sandbox.sh,
# PGITOPS_SANDBOX_HA=2): pgitops creates etcd, a 2-member `pg-test` and its services from one
# commit (`pgitops_bind_node_ip: true`: each node's HAProxy binds its own address;
# `pg_default_service_dest: postgres`: the services go straight to PostgreSQL). Then, PGITOPS_BENCH_RUNS times
# (default 5), a reader runs short queries (a new connection and `SELECT 1` each, psql) through
# the replica service of the second node (`<node>:5434`) while a commit adds, or the next
# removes, a service in `pg_services` and `pgitops apply` rewrites conf.d and reloads HAProxy on
# both nodes (SIGUSR2 to the master). Reported per run: queries ok and failed during the
# window (from 1 s before the apply to 1 s after it), the apply's wall time; then medians.
# Target: 0 failed queries. Addresses: PGITOPS_BENCH_HA_FROM (default 127.0.72.21) and the next.
# Run as root: bash benches/haproxy_reload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
runs=${PGITOPS_BENCH_RUNS:-5}
export PGITOPS_SANDBOX=${PGITOPS_BENCH_SANDBOX:-/dev/shm/pgitops-bench-haproxy}
export PGITOPS_SANDBOX_CLUSTERS="" PGITOPS_SANDBOX_HA=2 PGITOPS_SANDBOX_HA_FROM=${PGITOPS_BENCH_HA_FROM:-127.0.72.21}
work=$(mktemp -d /tmp/pgitops-bench-haproxy.XXXXXX)
reader=""
cleanup() {
  [ -z "$reader" ] || { kill -TERM "$reader" 2>/dev/null; wait "$reader" 2>/dev/null || true; }
  bash "$root/scripts/sandbox.sh" down >/dev/null
}
trap cleanup EXIT
source "$root/benches/ha.sh"
ips=($(ha_ips))
all=$(IFS=,; echo "${ips[*]}")
export HA_SERVICES=true   # HAProxy (bound to each node's address) and pgbouncer on every member
VARS="        pg_default_service_dest: postgres"
EXTRA="        pg_services:
          - { name: extra, port: 5440, dest: postgres, check: /primary, selector: \"[]\" }"

bash "$root/scripts/sandbox.sh" up >/dev/null
read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
repo=$work/repo
mkdir -p "$repo" && git -C "$repo" init -q -b main
commit() { # extra-vars message
  ha_inventory "${ips[0]}" "$all" "$VARS${1:+
$1}" > "$repo/pigsty.yml"
  git -C "$repo" add -A && git -C "$repo" -c user.name=b -c user.email=b@b commit -qm "$2"
}
apply() { (cd "$repo" && "$bin" apply "${ssh[@]}" --no-ssh-reuse) > "$work/apply-$1.out" 2>&1 ||
  { cat "$work/apply-$1.out"; echo "haproxy_reload: apply $1 failed" >&2; exit 1; }; }
commit "" "pg-test and its services"
apply create
grep -q 'applied.*pg-test/service/refresh\|pg-test/service/refresh.*applied\|\[applied\] pg-test/service/refresh' "$work/apply-create.out" ||
  { cat "$work/apply-create.out"; echo "haproxy_reload: no services" >&2; exit 1; }
target=${ips[1]}
for _ in $(seq 100); do login_svc=$(PGPASSWORD=DBUser.Test psql -X -At "host=$target port=5434 dbname=test user=dbuser_test connect_timeout=2" -c "select 1" 2>/dev/null || true); [ "$login_svc" = 1 ] && break; sleep 0.1; done
[ "$login_svc" = 1 ] || { echo "haproxy_reload: $target:5434 does not answer" >&2; exit 1; }

rows=()
for n in $(seq 1 "$runs"); do
  log=$work/reads-$n.log
  ( trap 'exit 0' TERM
    while :; do
      if PGPASSWORD=DBUser.Test psql -X -At "host=$target port=5434 dbname=test user=dbuser_test connect_timeout=2" -c "select 1" >/dev/null 2>>"$log.err"; then echo ok; else echo err; fi
    done >> "$log" ) &
  reader=$!
  sleep 1
  if [ $((n % 2)) = 1 ]; then commit "$EXTRA" "run $n: a service more"; else commit "" "run $n: the extra service goes"; fi
  t0=$(now_ms); apply "run-$n"; t1=$(now_ms)
  grep -q 'reloaded' "$work/apply-run-$n.out" || { cat "$work/apply-run-$n.out"; echo "haproxy_reload: no reload in run $n" >&2; exit 1; }
  sleep 1
  kill -TERM "$reader"; wait "$reader" 2>/dev/null || true; reader=""
  ok=$(grep -c '^ok' "$log" || true); err=$(grep -c '^err' "$log" || true)
  rows+=("$ok $err $((t1 - t0))")
  printf 'run %s: %5s queries ok, %s failed, apply (write, haproxy -c, reload on 2 nodes, verify) %5s ms\n' "$n" "$ok" "$err" "$((t1 - t0))"
done
med() { sort -n | awk '{a[NR]=$1} END {printf "%d (%d-%d)", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo
echo "| runs | queries ok per run: median (min-max) | failed queries: median (min-max) | apply ms: median (min-max) |"
echo "|---|---|---|---|"
printf '| %d | %s | %s | %s |\n' "$runs" "$(printf '%s\n' "${rows[@]}" | awk '{print $1}' | med)" \
  "$(printf '%s\n' "${rows[@]}" | awk '{print $2}' | med)" "$(printf '%s\n' "${rows[@]}" | awk '{print $3}' | med)"
echo "reader logs in $work"
