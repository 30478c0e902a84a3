#!/usr/bin/env bash
# Switchover benchmark on HA sandbox nodes (scripts/sandbox.sh, PGITOPS_SANDBOX_HA=3): pgitops
# creates a 3-node `pg-test` with pgbouncer and HAProxy's services on every member (pg_rto: fast,
# Pigsty's checks inter 1s, fastinter 0.5s, downinter 1s, rise 3, fall 3), then a writer
# (benches/writer.py: one row every 100 ms on one connection, connecting again after any error)
# goes through HAProxy's primary service (:5433 of each node in turn -> pgbouncer -> PostgreSQL)
# while the leader moves, alternately:
#   inventory: a commit moving `pg_role: primary` to the next member, then `pgitops apply` (a
#              switchover through Patroni's REST API; HAProxy told at once which server leads);
#   plain:     `POST /switchover` to Patroni's REST API by hand, as `patronictl switchover` does
#              (HAProxy finds the new leader by its own checks: rise 3).
# Between switchovers the benchmark waits 16 s: pgbouncer refuses a pool for
# `server_login_retry` (15 s by default; Pigsty does not set it) after a failed server login, and
# a demoted primary's pgbouncer has one (`the database system is shutting down`), so a member
# switched back to within 15 s of its demotion refuses writes until then (seen here: 3-4 s gaps).
# Figure per run: the write gap, the longest time between two successful commits (their ends)
# while the leader moved (~100 ms when nothing is interrupted), and the failed attempts.
# PGITOPS_BENCH_RUNS (default 5) runs of each. Addresses: PGITOPS_BENCH_HA_FROM (default
# 127.0.56.11) and the two after it. Run as root: bash benches/switchover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
runs=${PGITOPS_BENCH_RUNS:-5}
export PGITOPS_SANDBOX=${PGITOPS_BENCH_SANDBOX:-/dev/shm/pgitops-bench-switchover}
export PGITOPS_SANDBOX_CLUSTERS="" PGITOPS_SANDBOX_HA=3 PGITOPS_SANDBOX_HA_FROM=${PGITOPS_BENCH_HA_FROM:-127.0.56.11}
export HA_SERVICES=true
work=$(mktemp -d /tmp/pgitops-bench-switchover.XXXXXX)
writer=""
cleanup() {
  [ -z "$writer" ] || { kill -TERM "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true; }
  bash "$root/scripts/sandbox.sh" down >/dev/null
}
trap cleanup EXIT
source "$root/benches/common.sh"
source "$root/benches/ha.sh"
ips=($(ha_ips))
all=$(IFS=,; echo "${ips[*]}")
repo=$work/repo

leader() { # NAME IP of Patroni's leader, as the first member that answers sees it
  local ip
  for ip in "${ips[@]}"; do
    curl -s -m 1 "http://$ip:8008/cluster" | /usr/bin/python3 -c '
import json, sys
l = next(m for m in json.load(sys.stdin)["members"] if m["role"] == "leader")
print(l["name"], l["host"])' 2>/dev/null && return 0
  done
  return 1
}

commit() { # n (1-based index of the declared primary) message
  HA_PRIMARY=$1 ha_inventory "$all" "$all" "        pg_rto: fast" > "$repo/pigsty.yml"
  git -C "$repo" add -A && git -C "$repo" -c user.name=b -c user.email=b@b commit -qm "$2"
}

oks() { local c; c=$(grep -c '^ok' "$1" 2>/dev/null); echo "${c:-0}"; }

gap() { # writer-log: the longest time between the ends of two successful commits, and failures
  awk '$1 == "ok" { if (last) { d = $4 - last; if (d > g) g = d } last = $4 }
       $1 == "err" { f++ }
       END { printf "%d %d\n", g, f }' "$1"
}

rows=()
one() { # kind n
  local kind=$1 n=$2 name host next nname log t0 t1 g f
  read -r name host <<<"$(leader)"
  for i in "${!ips[@]}"; do [ "${ips[$i]}" = "$host" ] && next=$(((i + 1) % 3)); done
  nname=pg-test-$((next + 1))
  log=$work/writes-$kind-$n.log
  echo "host=$all port=5433 dbname=test user=dbuser_test password=DBUser.Test connect_timeout=2 application_name=bench-writer" |
    /usr/bin/python3 "$root/benches/writer.py" "$((RANDOM))" "$log" &
  writer=$!
  for _ in $(seq 100); do [ "$(oks "$log")" -ge 10 ] && break; sleep 0.1; done
  [ "$(oks "$log")" -ge 10 ] || { cat "$log"; echo "switchover: the writer does not write" >&2; exit 1; }
  t0=$(now_ms)
  if [ "$kind" = inventory ]; then
    commit $((next + 1)) "pg-test: ${ips[$next]} becomes the primary"
    (cd "$repo" && "$bin" apply "${ssh[@]}" --no-ssh-reuse > "$work/apply-$n.out") ||
      { cat "$work/apply-$n.out"; echo "switchover: apply $n failed" >&2; exit 1; }
  else
    curl -s -m 60 -u postgres:Patroni.API -XPOST -d "{\"leader\": \"$name\", \"candidate\": \"$nname\"}" \
      "http://$host:8008/switchover" > "$work/plain-$n.out"
  fi
  t1=$(now_ms)
  for _ in $(seq 100); do
    awk -v t="$t1" -v new="${ips[$next]}" '$1 == "ok" && $3 >= t && $5 == new {f=1} END {exit !f}' "$log" && break
    sleep 0.1
  done
  sleep 1
  kill -TERM "$writer"; wait "$writer" || true; writer=""
  read -r g f <<<"$(gap "$log")"
  rows+=("$kind $g $f")
  printf '%-9s %s  %s -> %s  write gap %5d ms  failed attempts %3d  (switch returned after %d ms)\n' "$kind" "$n" "$name" "$nname" "$g" "$f" "$((t1 - t0))"
  wait_streaming "${ips[$next]}" 2 || { echo "switchover: the cluster is not whole after run $n" >&2; exit 1; }
  sleep 16
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores at the start"
bash "$root/scripts/sandbox.sh" up >/dev/null
read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
mkdir -p "$repo" && git -C "$repo" init -q -b main
commit 1 "etcd and pg-test with services"
(cd "$repo" && "$bin" apply "${ssh[@]}" --no-ssh-reuse > "$work/create.out") ||
  { cat "$work/create.out"; echo "switchover: creating the cluster failed" >&2; exit 1; }
wait_streaming "${ips[0]}" 2 || { echo "switchover: not streaming" >&2; exit 1; }
for n in $(seq 1 "$runs"); do
  one inventory "$n"
  one plain "$n"
done
for ip in "${ips[@]}"; do # the nodes' HAProxy and pgbouncer logs, beside the writer logs
  cp "$PGITOPS_SANDBOX/$ip/service/haproxy/log/main/current" "$work/haproxy-$ip.log" 2>/dev/null || true
  cp "$PGITOPS_SANDBOX/$ip/pg/log/pgbouncer/pgbouncer.log" "$work/pgbouncer-$ip.log" 2>/dev/null || true
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at the end; writer logs in $work"
echo
med() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%d (%d-%d)", a[int((NR+1)/2)], a[1], a[NR]; else printf "-"}'; }
printf '| switchover | write gap through :5433, ms: median (min-max) | failed attempts: median (min-max) | runs |\n|---|---|---|---|\n'
for kind in inventory plain; do
  sel=$(printf '%s\n' "${rows[@]}" | awk -v k="$kind" '$1 == k')
  printf '| %s | %s | %s | %d |\n' "$kind" "$(awk '{print $2}' <<<"$sel" | med)" "$(awk '{print $3}' <<<"$sel" | med)" "$(wc -l <<<"$sel")"
done
