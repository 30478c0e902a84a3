#!/usr/bin/env bash
# Service benchmarks on a sandbox node (scripts/sandbox.sh), `pgitops serve` watching a bare
# remote on disk (the notify trigger; the poll interval is 60 s so it cannot help):
#   (a) push -> note latency: PGITOPS_BENCH_PUSHES (default 20) pushes, each adding a user;
#       the time from `git push` returning to the service's final note on the remote;
#   (b) the idle service over PGITOPS_BENCH_IDLE seconds (default 60): RSS and CPU time used.
# Run as root: bash benches/serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
pushes=${PGITOPS_BENCH_PUSHES:-20}
idle=${PGITOPS_BENCH_IDLE:-60}
export PGITOPS_SANDBOX=/dev/shm/pgitops-bench-serve PGITOPS_SANDBOX_CLUSTERS=127.0.53.11
work=$(mktemp -d /tmp/pgitops-bench-serve.XXXXXX)
serve=""
cleanup() { [ -n "$serve" ] && kill -TERM "$serve" 2>/dev/null; wait 2>/dev/null; bash "$root/scripts/sandbox.sh" down >/dev/null; rm -rf "$work"; }
trap cleanup EXIT
bash scripts/sandbox.sh up >/dev/null
sb=$PGITOPS_SANDBOX
git init -q --bare -b main "$work/remote.git"
git init -q -b main "$work/w" && cd "$work/w"
git remote add origin "$work/remote.git"
inventory() { # users
  printf '%s\n' "all:" "  children:" "    pg-b:" "      hosts: { 127.0.53.11: { pg_seq: 1, pg_role: primary } }" "      vars:" "        pg_cluster: pg-b" "        pg_users:"
  printf '          - { name: dbuser_base, password: Base.Pass }\n'
  for u in $(seq 1 "$1"); do printf '          - { name: bench_u%s, password: Bench.Pass.%s }\n' "$u" "$u"; done
  printf '%s\n' "  vars:" "    admin_ip: 127.0.0.1" "    pg_version: 15" "    pg_bin_dir: /usr/lib/postgresql/15/bin" "    node_firewall_intranet: [ 127.0.0.0/8 ]" \
    "    pg_default_hba_rules: [ { user: '\${dbsu}', db: all, addr: local, auth: ident, title: dbsu } ]"
}
commit() { git -c user.name=b -c user.email=b@b commit -qam "$1" >/dev/null; git rev-parse HEAD; }
inventory 0 > pigsty.yml && git add -A && commit base >/dev/null && git push -q origin HEAD:main
bash "$root/scripts/sandbox.sh" config "$work/remote.git" "$work/state" 127.0.0.1:9188 60 > "$work/pgitops.toml"
"$bin" serve --config "$work/pgitops.toml" 2>"$work/serve.log" &
serve=$!
note_final() { # commit: waits until the remote holds a final note on it
  local s
  for _ in $(seq 3000); do
    s=$(git --git-dir "$work/remote.git" notes --ref=pgitops show "$1" 2>/dev/null | grep -m1 '^  "status"' || true)
    case "$s" in *success*|*failure*|*held*|*invalid*|*no-change*) return 0 ;; esac
    sleep 0.005
  done
  echo "no note on $1; see $work/serve.log" >&2; exit 1
}
note_final "$(git rev-parse HEAD)"
times=()
for i in $(seq 1 "$pushes"); do
  inventory "$i" > pigsty.yml
  c=$(commit "user $i")
  git push -q origin HEAD:main
  t0=$(date +%s%N)
  note_final "$c"
  times+=($(( ($(date +%s%N) - t0) / 1000000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "push -> note (notify trigger): median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
cpu() { awk '{print $14 + $15}' "/proc/$serve/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$serve/status"; }
hz=$(getconf CLK_TCK)
c0=$(cpu); sleep "$idle"; c1=$(cpu)
echo "idle ${idle} s: RSS $(( $(rss) / 1024 )) MB, CPU $(( (c1 - c0) * 1000 / hz )) ms"
