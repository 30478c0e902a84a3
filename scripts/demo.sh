#!/usr/bin/env bash
# The demo: sandbox nodes for examples-repo/ (one sshd + PostgreSQL 15 per loopback address), a
# Git repository made from examples-repo/, `pgitops apply` of it, then a pull-request-sized
# commit that adds a user, applied again; the user logs in, and the git note records the run.
# Tear down with: bash scripts/sandbox.sh down
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
cargo build --release --locked -q
bin="$root/target/release/pgitops"
bash scripts/sandbox.sh up
read -ra ssh <<<"$(bash scripts/sandbox.sh args)"
repo="${PGITOPS_DEMO_DIR:-$(mktemp -d /tmp/pgitops-demo.XXXXXX)}"
mkdir -p "$repo"
cp -r examples-repo/. "$repo/"
cd "$repo"
git init -q -b main
git config user.name "pgitops demo"
git config user.email "demo@127.0.0.1"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

git add -A && git commit -qm "Sandbox inventory"
step "pgitops validate"
"$bin" validate

step "First apply: converge users, databases, HBA and parameters on the running nodes"
"$bin" apply "${ssh[@]}"

step "PR: add dbuser_app to pg-meta, plan it, merge it, apply it"
python3 - <<'PY'
s = open("pigsty.yml").read()
s = s.replace("pg_users:\n", "pg_users:\n          - { name: dbuser_app, password: 'App.Demo.Pass', roles: [ dbrole_readwrite ], connlimit: 20, comment: 'demo application' }\n", 1)
open("pigsty.yml", "w").write(s)
PY
git commit -qam "Add dbuser_app to pg-meta"
"$bin" plan
"$bin" apply "${ssh[@]}"

step "dbuser_app logs in to pg-meta with its password"
PGPASSWORD=App.Demo.Pass psql -X -At -h 127.0.10.10 -U dbuser_app -d meta -c "select 'logged in as ' || current_user || ', connection limit ' || rolconnlimit from pg_roles where rolname = current_user"

step "The audit trail: git log --notes=pgitops"
git log -1 --notes=pgitops --format='%h %s%n%N' | head -30

step "Applying the same commit again changes nothing"
"$bin" apply "${ssh[@]}"

echo
echo "demo repository: $repo"
echo "tear down the sandbox nodes: bash $root/scripts/sandbox.sh down"
