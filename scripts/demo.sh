#!/usr/bin/env bash
# The demo: a Git repository made from examples-repo/, a few pull-request-sized commits on it,
# and what `pgitops validate` and `pgitops plan` say about each. Nothing is applied to nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -q
bin="$PWD/target/release/pgitops"
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

step "PR 1: add a user to pg-meta"
python3 - <<'PY'
import re
s = open("pigsty.yml").read()
s = s.replace("pg_users:\n", "pg_users:\n          - { name: dbuser_app, password: 'App.Demo.Pass', roles: [ dbrole_readwrite ], connlimit: 20, comment: 'demo application' }\n", 1)
open("pigsty.yml", "w").write(s)
PY
git commit -qam "Add dbuser_app to pg-meta"
"$bin" plan

step "PR 2: raise a connection limit and add an HBA rule (JSON output)"
sed -i "s/connlimit: 20, comment: 'demo application'/connlimit: 50, comment: 'demo application'/" pigsty.yml
python3 - <<'PY'
s = open("pigsty.yml").read()
s = s.replace("pg_hba_rules:\n", "pg_hba_rules:\n          - { user: dbuser_app, db: meta, addr: 127.0.10.0/24, auth: pwd, title: 'app servers' }\n", 1)
open("pigsty.yml", "w").write(s)
PY
git commit -qam "dbuser_app: more connections, access from the app subnet"
"$bin" plan --output json | python3 -c 'import json,sys; p=json.load(sys.stdin); [print(a["class"].ljust(8), a["id"], "|", a["pigsty"]) for a in p["actions"]]'

step "PR 3: a broken commit is refused whole, with file:line:column"
printf '  broken: [\n' >> pigsty.yml
git commit -qam "Oops"
"$bin" validate || echo "(exit code $?: nothing would be applied)"
git revert --no-edit HEAD >/dev/null

step "The whole history since the first commit, as one cumulative plan"
"$bin" plan HEAD~4..HEAD --exit-code || echo "(exit code $?: changes found)"
echo
echo "demo repository: $repo"
