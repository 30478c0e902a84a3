#!/usr/bin/env bash
# Failover benchmark on HA sandbox nodes (scripts/sandbox.sh, PGITOPS_SANDBOX_HA=3): pgitops
# itself creates the cluster (`pgitops apply` of a commit declaring a 3-member etcd and a 3-node
# `pg-test` on the same nodes: the product under test), then a writer (benches/writer.py: libpq,
# one persistent connection to host=a,b,c target_session_attrs=read-write, connecting again
# after any error) commits one row every 100 ms while the leader's node fails:
#   crash: runit told not to restart its Patroni (`sv once`, as Pigsty's Restart=no), then
#          kill -9 of its Patroni, its postmaster and the postmaster's children at once;
#   hang:  SIGSTOP of the same processes; SIGCONT once the figures are taken.
# Measured from the fault: the first Patroni /cluster view (of a surviving member) naming a new
# leader; the end of the first commit that succeeded on another server; the rows the writer saw
# committed that are missing on the new leader afterwards (writes lost).
# Between runs the failed node rejoins (`sv up` / SIGCONT: Patroni rewinds it and it streams
# from the new leader); the next run fails whichever node leads then. If the cluster is not
# whole again within 120 s it is recreated from scratch (fresh nodes, pgitops apply).
# Plans (PGITOPS_BENCH_PLANS, default "fast tight crit"), PGITOPS_BENCH_RUNS (default 5) runs of
# each fault:
#   fast:  pg_rto: fast (Pigsty's plan: ttl 20, loop_wait 5, retry_timeout 5), target < 30 s;
#   tight: a custom pg_rto_plan entry (ttl 10, loop_wait 2, retry_timeout 3), target <= 12 s;
#   crit:  pg_conf: crit.yml (synchronous_mode_strict) with the tight entry, target 0 lost.
# PGITOPS_BENCH_VIA=service: pgbouncer and HAProxy run on every member (built by pgitops) and the
# writer goes through HAProxy's primary service (port 5433 of every node, in turn, -> pgbouncer
# -> PostgreSQL) instead of straight to PostgreSQL with target_session_attrs=read-write.
# Addresses: PGITOPS_BENCH_HA_FROM (default 127.0.53.11) and the two after it.
# Run as root: bash benches/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
runs=${PGITOPS_BENCH_RUNS:-5}
plans=${PGITOPS_BENCH_PLANS:-fast tight crit}
faults=${PGITOPS_BENCH_FAULTS:-crash hang}
export PGITOPS_SANDBOX=${PGITOPS_BENCH_SANDBOX:-/dev/shm/pgitops-bench-failover}
export PGITOPS_SANDBOX_CLUSTERS="" PGITOPS_SANDBOX_HA=3 PGITOPS_SANDBOX_HA_FROM=${PGITOPS_BENCH_HA_FROM:-127.0.53.11}
work=$(mktemp -d /tmp/pgitops-bench-failover.XXXXXX)
via=${PGITOPS_BENCH_VIA:-direct}
[ "$via" = direct ] || export HA_SERVICES=true
writer=""
stopped=""
cleanup() {
  [ -z "$stopped" ] || kill -CONT $stopped 2>/dev/null || true
  [ -z "$writer" ] || { kill -TERM "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true; }
  bash "$root/scripts/sandbox.sh" down >/dev/null
}
trap cleanup EXIT
source "$root/benches/common.sh"
source "$root/benches/ha.sh"
B=$PGITOPS_SANDBOX
ips=($(ha_ips))
all=$(IFS=,; echo "${ips[*]}")

TIGHT="        pg_rto_plan:
          norm: [ 30, 5, 10, 25, 5, '2s', '1s', '2s', 3, 3 ]
          tight: [ 10, 2, 3, 10, 2, '1s', '0.5s', '1s', 3, 3 ]"
plan_vars() { # plan: pg-test's extra vars
  case $1 in
    fast) echo "        pg_rto: fast" ;;
    tight) printf '        pg_rto: tight\n%s\n' "$TIGHT" ;;
    crit) printf '        pg_conf: crit.yml\n        pg_rto: tight\n%s\n' "$TIGHT" ;;
  esac
}

cluster() { # mode ips...: Patroni's /cluster as seen by the first member that answers
  /usr/bin/python3 - "$@" <<'PY'
import json, sys, time, urllib.request
mode, ips = sys.argv[1], sys.argv[2:]
def view():
    for ip in ips:
        try:
            return json.load(urllib.request.urlopen(f"http://{ip}:8008/cluster", timeout=1))["members"]
        except Exception:
            pass
    return []
def leader(ms):
    return next((m for m in ms if m.get("role") == "leader"), None)
if mode == "leader":          # NAME HOST of the leader
    l = leader(view()); print(l["name"], l["host"]) if l else sys.exit(1)
elif mode.startswith("new:"):  # waits (120 s) for a leader other than NAME; prints when (ms)
    old, end = mode[4:], time.time() + 120
    while time.time() < end:
        l = leader(view())
        if l and l["name"] != old:
            print(int(time.time() * 1000)); sys.exit(0)
        time.sleep(0.1)
    sys.exit(1)
elif mode == "whole":          # waits (120 s) for a leader and every member running
    end = time.time() + 120
    while time.time() < end:
        ms = view()
        if len(ms) == len(ips) and leader(ms) and all(m.get("state") in ("running", "streaming") for m in ms):
            sys.exit(0)
        time.sleep(0.2)
    sys.exit(1)
PY
}

create() { # plan: fresh nodes, then pgitops apply of a commit declaring the cluster
  bash "$root/scripts/sandbox.sh" up >/dev/null
  read -ra ssh <<<"$(bash "$root/scripts/sandbox.sh" args)"
  local repo=$work/repo-$1-$(now_ms)
  mkdir -p "$repo" && git -C "$repo" init -q -b main
  ha_inventory "$all" "$all" "$(plan_vars "$1")" > "$repo/pigsty.yml"
  git -C "$repo" add -A && git -C "$repo" -c user.name=b -c user.email=b@b commit -qm "pg-test: $1"
  (cd "$repo" && "$bin" apply "${ssh[@]}" --no-ssh-reuse > "$work/create-$1.out") ||
    { cat "$work/create-$1.out"; echo "failover: creating the $1 cluster failed" >&2; exit 1; }
  cluster whole "${ips[@]}" && wait_streaming "${ips[0]}" 2 || { echo "failover: $1 cluster not whole" >&2; exit 1; }
}

node_pids() { # ip: the node's Patroni, postmaster and the postmaster's children
  local pm pat
  pat=$(sv status "$B/$1/service/patroni" | sed -n 's/^run: [^(]*(pid \([0-9]*\)).*/\1/p')
  pm=$(head -1 "$B/$1/pg/data/postmaster.pid")
  echo "$pat $pm $(pgrep -P "$pm" | tr '\n' ' ')"
}

lost() { # writer-log leader-ip run: rows the writer saw committed that the leader lacks
  comm -23 <(awk '$1 == "ok" {print $2}' "$1" | sort) \
    <(cd / && runuser -u postgres -- psql -X -At -h "$B/$2/run" -d test -c "select seq from bench_writes where run = $3" | sort) | wc -l
}

oks() { local c; c=$(grep -c '^ok' "$1" 2>/dev/null); echo "${c:-0}"; }

rows=()
run_id=0
one() { # plan fault n
  local plan=$1 fault=$2 n=$3 name host others=() t0 t_leader t_write pids log
  run_id=$((run_id + 1))
  read -r name host <<<"$(cluster leader "${ips[@]}")"
  for ip in "${ips[@]}"; do [ "$ip" = "$host" ] || others+=("$ip"); done
  log=$work/writes-$plan-$fault-$n.log
  local dsn="host=$all port=5432 target_session_attrs=read-write"
  [ "$via" = direct ] || dsn="host=$all port=5433"
  echo "$dsn dbname=test user=dbuser_test password=DBUser.Test connect_timeout=2 application_name=bench-writer" |
    /usr/bin/python3 "$root/benches/writer.py" "$run_id" "$log" &
  writer=$!
  for _ in $(seq 100); do [ "$(oks "$log")" -ge 10 ] && break; sleep 0.1; done
  [ "$(oks "$log")" -ge 10 ] || { cat "$log"; echo "failover: the writer does not write" >&2; exit 1; }
  pids=$(node_pids "$host")
  if [ "$fault" = crash ]; then
    sv once "$B/$host/service/patroni" >/dev/null
    t0=$(now_ms); kill -KILL $pids
  else
    t0=$(now_ms); kill -STOP $pids; stopped=$pids
  fi
  t_leader=$(cluster "new:$name" "${others[@]}") || t_leader=""
  t_write=""
  for _ in $(seq 1200); do
    t_write=$(awk -v t0="$t0" -v old="$host" '$1 == "ok" && $4 >= t0 && $5 != old {print $4; exit}' "$log")
    [ -n "$t_write" ] && break
    sleep 0.1
  done
  sleep 1
  kill -TERM "$writer"; wait "$writer" || true; writer=""
  local lead; read -r _ lead <<<"$(cluster leader "${others[@]}")"
  local lost_new; lost_new=$(lost "$log" "$lead" "$run_id")
  local failed; failed=$(grep -c '^err' "$log" || true)
  if [ "$fault" = crash ]; then sv up "$B/$host/service/patroni" >/dev/null; else kill -CONT $pids; stopped=""; fi
  # The failed node back: the cluster whole again, and the writes checked on whoever leads now.
  local restored=rejoined final="" fname="" lost_final="?"
  if cluster whole "${ips[@]}" && read -r fname final <<<"$(cluster leader "${ips[@]}")" && wait_streaming "$final" 2; then
    lost_final=$(lost "$log" "$final" "$run_id")
    [ "$fname" != "$name" ] || restored="rejoined, the old leader took the lock back"
  else
    restored=recreated
    local d=$work/not-rejoined-$plan-$fault-$n; mkdir -p "$d"
    for ip in "${ips[@]}"; do
      mkdir -p "$d/$ip"; cp -r "$B/$ip/pg/log" "$B/$ip/service/patroni/log/main/current" "$d/$ip/" 2>/dev/null || true
    done
    curl -s -m 2 "http://$lead:8008/cluster" > "$d/cluster.json" || true
    bash "$root/scripts/sandbox.sh" down >/dev/null; create "$plan"
  fi
  local l=${t_leader:+$((t_leader - t0))} w=${t_write:+$((t_write - t0))}
  rows+=("$plan $fault $n ${l:-timeout} ${w:-timeout} $lost_new $lost_final $failed $([ "$fname" = "$name" ] && echo 1 || echo 0)")
  printf '%-5s %-5s %s  new leader %6s ms  writes again %6s ms  lost %3s, after rejoin %3s  failed attempts %3s  (%s -> %s -> %s: %s)\n' \
    "$plan" "$fault" "$n" "${l:-timeout}" "${w:-timeout}" "$lost_new" "$lost_final" "$failed" "$host" "$lead" "${final:-?}" "$restored"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores at the start; writes $([ "$via" = direct ] && echo "straight to PostgreSQL (read-write host of three)" || echo "through HAProxy's primary service (:5433 -> pgbouncer -> PostgreSQL)")"
for plan in $plans; do
  create "$plan"
  sed -n 's/^\[applied\] \(pg-test\/cluster[^ ]*\) (\([0-9]*\) ms)$/'"$plan"': \1 in \2 ms/p' "$work/create-$plan.out"
  for fault in $faults; do
    for n in $(seq 1 "$runs"); do one "$plan" "$fault" "$n"; done
  done
  bash "$root/scripts/sandbox.sh" down >/dev/null
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) at the end; writer logs (and the logs of nodes that did not rejoin) in $work"
echo
medmax() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%d (%d)", a[int((NR+1)/2)], a[NR]; else printf "-"}'; }
med() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%d (%d-%d)", a[int((NR+1)/2)], a[1], a[NR]; else printf "-"}'; }
printf '| plan | fault | new leader, ms: median (min-max) | writes again, ms: median (min-max) | writes lost at failover: median (max) | writes lost once the old primary is back: median (max) | old primary took the lock back | runs |\n|---|---|---|---|---|---|---|---|\n'
for plan in $plans; do
  for fault in $faults; do
    sel=$(printf '%s\n' "${rows[@]}" | awk -v p="$plan" -v f="$fault" '$1 == p && $2 == f')
    lo=$(awk '$4 != "timeout" {print $4}' <<<"$sel" | med)
    wr=$(awk '$5 != "timeout" {print $5}' <<<"$sel" | med)
    ln=$(awk '{print $6}' <<<"$sel" | medmax)
    lf=$(awk '$7 != "?" {print $7}' <<<"$sel" | medmax)
    back=$(awk '{s += $9} END {print s + 0}' <<<"$sel")
    printf '| %s | %s | %s | %s | %s | %s | %s | %d |\n' "$plan" "$fault" "$lo" "$wr" "$ln" "$lf" "$back" "$(wc -l <<<"$sel")"
  done
done
