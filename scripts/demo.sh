#!/usr/bin/env bash
# The demo, the whole loop: sandbox nodes for examples-repo/ (one sshd + PostgreSQL 15 per
# loopback address), a bare Git remote made from examples-repo/, `pgitops serve` watching it,
# then a pushed commit that adds a user: the user appears on pg-meta and the service's note
# appears on the commit. Tear down with: bash scripts/sandbox.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
cargo build --release --locked -q
bin="$root/target/release/pgitops"
bash scripts/sandbox.sh up
sb=${PGITOPS_SANDBOX:-/dev/shm/pgitops-sandbox}
demo="${PGITOPS_DEMO_DIR:-$(mktemp -d /tmp/pgitops-demo.XXXXXX)}"
mkdir -p "$demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note_status() { # commit -> the status in the note the service pushed, or nothing
  git -C "$demo/work" fetch -q origin "+refs/notes/pgitops:refs/notes/pgitops" 2>/dev/null || true
  git -C "$demo/work" notes --ref=pgitops show "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null || true
}
wait_note() { # commit
  for _ in $(seq 300); do
    s=$(note_status "$1"); case "$s" in ""|pending) sleep 0.1 ;; *) echo "$s"; return 0 ;; esac
  done
  echo "no note on $1 after 30 s; service log: $demo/serve.log" >&2; return 1
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
start=$(date +%s%N)
git -C "$demo/work" push -q origin HEAD:main
head=$(git -C "$demo/work" rev-parse HEAD)
result=$(wait_note "$head")
echo "$head: $result, $(( ($(date +%s%N) - start) / 1000000 )) ms from push to note"

step "dbuser_app logs in to pg-meta with its password"
PGPASSWORD=App.Demo.Pass psql -X -At -h 127.0.10.10 -U dbuser_app -d meta -c "select 'logged in as ' || current_user"

step "The audit trail on the remote: git log --notes=pgitops"
git -C "$demo/work" log -1 --notes=pgitops --format='%h %s%n%N' | head -24

step "Metrics"
curl -s http://127.0.0.1:9187/metrics | grep -E '^pgitops_(cluster_last_applied|merge_to_applied_seconds_count|apply_failures)' || true

echo
echo "demo directory: $demo (service log: $demo/serve.log)"
echo "tear down the sandbox nodes: bash $root/scripts/sandbox.sh down"
