#!/usr/bin/env bash
# The demo, the whole loop: sandbox nodes for examples-repo/ (one sshd + PostgreSQL 15 per
# loopback address), a bare Git remote made from examples-repo/, `pgitops serve` watching it,
# then a pushed commit that adds a user: the user appears on pg-meta and the service's note
# appears on the commit. Then the HA story: a pushed commit declares `pg-ha` on three empty HA
# nodes (127.0.10.21-23: sshd and a private runit each, no PostgreSQL) and pgitops builds it
# (Patroni, the sandbox's etcd as DCS, a leader and two streaming replicas, pgbouncer and
# HAProxy's services on each); a client uses the service ports; the leader's node crashes,
# Patroni fails over, the primary service follows, the service's leader watch reports it, the
# next commit goes to the new leader; a commit records the failover, and another moves
# `pg_role: primary` back: a switchover, the service port answering from the member it names.
# Tear down with: bash scripts/sandbox.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
cargo build --release --locked -q
bin="$root/target/release/pgitops"
export PGITOPS_SANDBOX_HA=${PGITOPS_SANDBOX_HA:-3}
bash scripts/sandbox.sh up
sb=${PGITOPS_SANDBOX:-/dev/shm/pgitops-sandbox}
demo="${PGITOPS_DEMO_DIR:-$(mktemp -d /tmp/pgitops-demo.XXXXXX)}"
mkdir -p "$demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note_status() { # commit -> the status in the note the service pushed, or nothing
  git -C "$demo/work" fetch -q origin "+refs/notes/pgitops:refs/notes/pgitops" 2>/dev/null || true
  git -C "$demo/work" notes --ref=pgitops show "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null || true
}
wait_note() { # commit [seconds, default 30]
  for _ in $(seq $((${2:-30} * 10))); do
    s=$(note_status "$1"); case "$s" in ""|pending) sleep 0.1 ;; *) echo "$s"; return 0 ;; esac
  done
  echo "no note on $1 after ${2:-30} s; service log: $demo/serve.log" >&2; return 1
}
commit() { git -C "$demo/work" -c user.name="pgitops demo" -c user.email=demo@127.0.0.1 commit -qam "$1"; }
members() { # ip: Patroni's view of its cluster, one member a line
  curl -s -m 3 "http://$1:8008/cluster" | python3 -c 'import json,sys
for m in json.load(sys.stdin)["members"]: print("  %-8s %-8s %-10s %s" % (m["name"], m["role"], m["state"], m.get("lag", "")))'
}
svc() { # ip port: which server answers through that HAProxy service, as dbuser_ha
  PGPASSWORD=DBUser.HA psql -X -At "host=$1 port=$2 dbname=ha user=dbuser_ha connect_timeout=2" -c "select split_part(current_setting('listen_addresses'), ',', 1) || case when pg_is_in_recovery() then ' (replica)' else ' (primary)' end" 2>/dev/null || echo "no answer"
}
primary() { # ip: pg-ha's declared primary becomes ip, every other member a replica
  python3 - "$demo/work/pigsty.yml" "$1" <<'PY'
import re, sys
p, ip = sys.argv[1:]; s = open(p).read()
for m in ("127.0.10.21", "127.0.10.22", "127.0.10.23"):
    role = "primary" if m == ip else "replica"
    s, n = re.subn(m.replace(".", r"\.") + r": \{ pg_seq: (\d), pg_role: \w+ \}", lambda x: f"{m}: {{ pg_seq: {x.group(1)}, pg_role: {role} }}", s)
    assert n == 1, m
open(p, "w").write(s)
PY
}
leader() { # ip: the leader's address in Patroni's view, asked of ip
  curl -s -m 3 "http://$1:8008/cluster" 2>/dev/null | python3 -c 'import json,sys
print(next((m["host"] for m in json.load(sys.stdin)["members"] if m["role"] == "leader"), ""))' 2>/dev/null || true
}

step "A bare remote made from examples-repo/, and a working clone"
git init -q --bare -b main "$demo/remote.git"
git clone -q "$demo/remote.git" "$demo/work" 2>/dev/null
cp -r examples-repo/. "$demo/work/"
git -C "$demo/work" -c user.name="pgitops demo" -c user.email=demo@127.0.0.1 add -A
git -C "$demo/work" -c user.name="pgitops demo" -c user.email=demo@127.0.0.1 commit -qm "Sandbox inventory"
git -C "$demo/work" push -q origin HEAD:main
"$bin" --repo "$demo/work" validate

step "pgitops serve, watching the remote"
bash "$root/scripts/sandbox.sh" config "$demo/remote.git" "$demo/state" 127.0.0.1:9187 > "$demo/pgitops.toml"
printf '[schedule]\nleaders = "*/2 * * * * *"   # ask Patroni who leads, every 2 s\n' >> "$demo/pgitops.toml"
"$bin" validate --config "$demo/pgitops.toml"
PGITOPS_LOG=info "$bin" serve --config "$demo/pgitops.toml" 2>"$demo/serve.log" &
serve=$!
trap 'kill -TERM $serve 2>/dev/null || true; wait $serve 2>/dev/null || true' EXIT
base=$(git -C "$demo/work" rev-parse HEAD)
echo "first apply of $base: $(wait_note "$base")"

step "A pull request adds dbuser_app to pg-meta; the merge is pushed"
python3 - "$demo/work/pigsty.yml" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
s = s.replace("pg_users:\n", "pg_users:\n          - { name: dbuser_app, password: 'App.Demo.Pass', roles: [ dbrole_readwrite ], connlimit: 20, comment: 'demo application' }\n", 1)
open(p, "w").write(s)
PY
git -C "$demo/work" -c user.name="pgitops demo" -c user.email=demo@127.0.0.1 commit -qam "Add dbuser_app to pg-meta"
"$bin" --repo "$demo/work" plan
echo "-- the pull request's comment, as \`pgitops serve\` with [pulls] posts it (pgitops plan --output markdown):"
"$bin" --repo "$demo/work" plan --output markdown | sed -n '1,16p'
start=$(date +%s%N)
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
result=$(wait_note "$head")
echo "$head: $result, $(( ($(date +%s%N) - start) / 1000000 )) ms from push to note"

step "dbuser_app logs in to pg-meta with its password"
PGPASSWORD=App.Demo.Pass psql -X -At -h 127.0.10.10 -U dbuser_app -d meta -c "select 'logged in as ' || current_user"

step "A pull request adds pg-ha: three empty nodes become a Patroni cluster"
python3 - "$demo/work/pigsty.yml" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
anchor = "    #----------------------------------------------#\n    # REDIS"
pg_ha = """    #----------------------------------------------#
    # PGSQL: pg-ha, built by pgitops on three empty nodes
    #----------------------------------------------#
    pg-ha:
      hosts:
        127.0.10.21: { pg_seq: 1, pg_role: primary }
        127.0.10.22: { pg_seq: 2, pg_role: replica }
        127.0.10.23: { pg_seq: 3, pg_role: replica }
      vars:
        pg_cluster: pg-ha
        pg_listen: '${ip}'              # three nodes on one machine: each on its own address
        pg_shared_buffer_ratio: 0.005   # sandbox: small shared buffers
        pgbackrest_enabled: false
        pgitops_bind_node_ip: true      # HAProxy's services bind each node's own address
        pg_rto: tight                   # a custom failover plan: ttl 10 s, loop 2 s, retry 3 s
        pg_rto_plan: { tight: [ 10, 2, 3, 10, 2, '1s', '0.5s', '1s', 3, 3 ] }
        pg_users:
          - { name: dbuser_ha, password: DBUser.HA, pgbouncer: true, roles: [ dbrole_readwrite ] }
        pg_databases:
          - { name: ha, owner: dbuser_ha }
        pg_hba_rules:
          - { user: dbuser_ha, db: ha, addr: intra, auth: pwd, title: 'ha application from intranet' }

"""
assert anchor in s
s = s.replace(anchor, pg_ha + anchor, 1)
open(p, "w").write(s)
PY
commit "Add pg-ha, a 3-node HA cluster"
"$bin" --repo "$demo/work" plan | grep -E '^  \[' # the actions (the full plan shows each one's steps)
start=$(date +%s%N)
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
result=$(wait_note "$head" 120)
echo "$head: $result, $(( ($(date +%s%N) - start) / 1000000 )) ms from push to note"
members 127.0.10.21
PGPASSWORD=DBUser.HA psql -X -At -h 127.0.10.21 -U dbuser_ha -d ha -c "select 'logged in to pg-ha as ' || current_user"
step "A client uses pg-ha's services on any node: 5433 (primary, through pgbouncer), 5434 (replica)"
sleep 3   # HAProxy holds every server UP until its first checks
echo "127.0.10.23:5433 -> $(svc 127.0.10.23 5433)"
echo "127.0.10.23:5434 -> $(svc 127.0.10.23 5434)"

step "The leader's node crashes: kill -9 of its Patroni and PostgreSQL"
old=$(leader 127.0.10.22)
svc="$sb/$old/service/patroni"
sv once "$svc" >/dev/null   # a crashed node: its supervisor does not bring Patroni back
crashed=$(date +%s%N)
patroni=$(sv status "$svc" | grep -o '(pid [0-9]*)' | head -1 | tr -dc 0-9)
postmaster=$(head -1 "$sb/$old/pg/data/postmaster.pid")
kill -9 "$patroni" "$postmaster"; pkill -9 -P "$postmaster" || true   # and its backends
for _ in $(seq 600); do
  for ip in 127.0.10.21 127.0.10.22 127.0.10.23; do
    [ "$ip" = "$old" ] && continue
    now=$(leader "$ip"); [ -n "$now" ] && [ "$now" != "$old" ] && break 2
  done
  sleep 0.1
done
echo "the leader was $old; Patroni elected $now $(( ($(date +%s%N) - crashed) / 1000000 )) ms after the crash"
members "$now"
for _ in $(seq 300); do [ "$(svc "$now" 5433)" = "$now (primary)" ] && break; sleep 0.1; done
echo "$now:5433 -> $(svc "$now" 5433), $(( ($(date +%s%N) - crashed) / 1000000 )) ms after the crash: the primary service follows the new leader"

step "A commit after the failover: a user for pg-ha goes to the new leader"
python3 - "$demo/work/pigsty.yml" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = "          - { name: dbuser_ha, password: DBUser.HA, pgbouncer: true, roles: [ dbrole_readwrite ] }\n"
assert old in s
s = s.replace(old, old + "          - { name: dbuser_ha_ro, password: DBUser.HA.RO, pgbouncer: false, roles: [ dbrole_readonly ] }\n", 1)
open(p, "w").write(s)
PY
commit "pg-ha: a read-only user"
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
echo "$head: $(wait_note "$head" 60)"
git -C "$demo/work" notes --ref=pgitops show "$head" | grep -o 'user dbuser_ha_ro [^"]*' | head -1

step "The old leader's node comes back and rejoins as a replica"
sv up "$svc" >/dev/null
for _ in $(seq 300); do [ "$(members "$now" 2>/dev/null | grep -cE 'replica +(running|streaming)')" = 2 ] && break; sleep 0.1; done
members "$now"

step "pgitops status: the service's leader watch saw the failover (it never switches back by itself)"
sleep 3
"$bin" --repo "$demo/work" --state-dir "$demo/state" status

step "A commit records the failover: pg_role: primary on $now (it already leads: nothing is switched)"
primary "$now"
commit "pg-ha: record the failover, $now is the primary"
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
echo "$head: $(wait_note "$head" 60)"
git -C "$demo/work" notes --ref=pgitops show "$head" | grep -o '"message": *"[^"]*already leads[^"]*"' | head -1 || true
sleep 3
"$bin" --repo "$demo/work" --state-dir "$demo/state" status | grep -A1 '^pg-ha'

step "A commit moves pg_role: primary back to $old: a switchover, and the service port follows"
echo "before: 127.0.10.23:5433 -> $(svc 127.0.10.23 5433)"
primary "$old"
commit "pg-ha: $old is the primary again"
"$bin" --repo "$demo/work" plan | grep -E '^  \[' || true
start=$(date +%s%N)
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
echo "$head: $(wait_note "$head" 60), $(( ($(date +%s%N) - start) / 1000000 )) ms from push to note"
git -C "$demo/work" notes --ref=pgitops show "$head" | grep -o '"detail": *"[^"]*told as [^"]*"' | head -1 || true
echo "after:  127.0.10.23:5433 -> $(svc 127.0.10.23 5433)"
members "$old"

step "The audit trail on the remote: git log --notes=pgitops"
git -C "$demo/work" log -1 --notes=pgitops --format='%h %s%n%N' | head -24

step "Metrics"
curl -s http://127.0.0.1:9187/metrics | grep -E '^pgitops_(cluster_last_applied|merge_to_applied_seconds_count|apply_failures)' || true

echo
echo "demo directory: $demo (service log: $demo/serve.log)"
echo "tear down the sandbox nodes: bash $root/scripts/sandbox.sh down"
