#!/usr/bin/env bash
# Plans on pull requests, on the sandbox inventory (examples-repo/ on scripts/sandbox.sh's
# nodes): `pgitops serve` with `[pulls]` and a stand-in GitHub (benches/support/pull_forge.py,
# 127.0.0.1), after its first apply. PGITOPS_BENCH_PUSHES (default 7) new heads of pull request
# #1, each adding a user: the time from the push of `refs/pull/1/head` to the remote (the
# forge knows the new head first, as GitHub does when it sends its webhook) until pgitops'
# comment on #1 names that head. The notify watch on the remote wakes the service; the poll
# interval is 60 s, so it cannot help.
# Run as root: bash benches/pulls.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
pushes=${PGITOPS_BENCH_PUSHES:-7}
export PGITOPS_SANDBOX=/dev/shm/pgitops-bench-pulls
work=$(mktemp -d /tmp/pgitops-bench-pulls.XXXXXX)
serve="" forge=""
cleanup() {
  [ -n "$serve" ] && kill -TERM "$serve" 2>/dev/null && wait "$serve" 2>/dev/null
  [ -n "$forge" ] && kill "$forge" 2>/dev/null
  bash "$root/scripts/sandbox.sh" down >/dev/null; rm -rf "$work"
}
trap cleanup EXIT
source "$root/benches/common.sh"
now_ms() { echo $(($(date +%s%N) / 1000000)); }

bash scripts/sandbox.sh up >/dev/null
git init -q --bare -b main "$work/remote.git"
git init -q -b main "$work/w" && cp -r examples-repo/. "$work/w/" && cd "$work/w"
git remote add origin "$work/remote.git"
git add -A && git -c user.name=b -c user.email=b@b commit -qm base && git push -q origin HEAD:main
base=$(git rev-parse HEAD)
port=9191
python3 "$root/benches/support/pull_forge.py" "$port" bench-token &
forge=$!
bash "$root/scripts/sandbox.sh" config "$work/remote.git" "$work/state" 127.0.0.1:9192 60 > "$work/pgitops.toml"
printf '[[reporter]]\nkind = "github"\nurl = "http://127.0.0.1:%s"\nrepo = "acme/pg"\ntoken_env = "BENCH_FORGE_TOKEN"\n[pulls]\nenabled = true\n' "$port" >> "$work/pgitops.toml"
BENCH_FORGE_TOKEN=bench-token PGITOPS_LOG=info "$bin" serve --config "$work/pgitops.toml" 2>"$work/serve.log" &
serve=$!
for _ in $(seq 600); do
  git --git-dir "$work/remote.git" notes --ref=pgitops show "$base" 2>/dev/null | grep -q '"status": "success"' && break
  sleep 0.1
done
latency=()
for i in $(seq 1 "$pushes"); do
  python3 - pigsty.yml "$i" <<'PY'
import sys
p, i = sys.argv[1], sys.argv[2]; s = open(p).read()
s = s.replace("pg_users:\n", f"pg_users:\n          - {{ name: dbuser_pr{i}, password: 'Pr.Bench.{i}', connlimit: 5 }}\n", 1)
open(p, "w").write(s)
PY
  git -c user.name=b -c user.email=b@b commit -qam "pr head $i"
  head=$(git rev-parse HEAD)
  curl -s -X POST -d "{\"number\": 1, \"head\": \"$head\"}" "http://127.0.0.1:$port/_open" >/dev/null
  t0=$(now_ms)
  git push -q origin "+HEAD:refs/pull/1/head"
  for _ in $(seq 30000); do
    curl -s "http://127.0.0.1:$port/_comment/1" | grep -q "${head:0:12}" && break
    sleep 0.002
  done
  latency+=($(( $(now_ms) - t0 )))
done
printf 'pull request head push -> comment (sandbox inventory): '; printf '%s\n' "${latency[@]}" | stats
grep -c "planned the pull request" "$work/serve.log" | sed 's/^/plans in the service log: /'
