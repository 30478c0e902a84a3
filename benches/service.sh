#!/usr/bin/env bash
# Service benchmarks on sandbox nodes (scripts/sandbox.sh), `pgitops serve` watching a bare
# remote on disk (the notify trigger; the poll interval is 60 s so it cannot help), its SSH
# masters warm after the first apply. Side by side in one run:
#   (a) one new user on a 3-node cluster, PGITOPS_BENCH_PUSHES (default 15) pushes:
#       push -> final note on the remote, and the apply step inside the service (the note's `ms`:
#       plan + execute + state, without fetch and notes push); against `ansible-playbook
#       pgsql-user.yml` doing the same user (the real Pigsty home, ControlPersist warm);
#   (b) an HBA change on 30 hosts (10 clusters x 3), PGITOPS_BENCH_RUNS (default 7) pushes: the
#       same two figures, against one `ansible-playbook pgsql.yml -t pg_hba,...` over the 30
#       hosts with forks=10;
#   (c) the idle service over PGITOPS_BENCH_IDLE seconds (default 30): RSS and CPU time;
#   (d) the release binary's size.
# PGITOPS_BENCH_ONLY=user|hba runs one of (a) and (b).
# Run as root: bash benches/service.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cargo build --release --locked -q
bin=$root/target/release/pgitops
pushes=${PGITOPS_BENCH_PUSHES:-15}
runs=${PGITOPS_BENCH_RUNS:-7}
idle=${PGITOPS_BENCH_IDLE:-30}
export PGITOPS_SANDBOX=/dev/shm/pgitops-bench-service
work=$(mktemp -d /tmp/pgitops-bench-service.XXXXXX)
serve=""
stop() { [ -n "$serve" ] && kill -TERM "$serve" 2>/dev/null && wait "$serve" 2>/dev/null; serve=""; }
cleanup() { stop; bash "$root/scripts/sandbox.sh" down >/dev/null; rm -rf "$work"; }
trap cleanup EXIT
source "$root/benches/common.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
commit() { git -c user.name=b -c user.email=b@b commit -qam "$1" >/dev/null; git rev-parse HEAD; }

note_wait() { # commit: waits for a final note on the remote (the time is taken right after)
  local doc
  for _ in $(seq 6000); do
    doc=$(git --git-dir "$work/remote.git" notes --ref=pgitops show "$1" 2>/dev/null || true)
    case "$doc" in *'"status": "success"'*) return 0 ;;
    *'"status": "failure"'*|*'"status": "held"'*|*'"status": "invalid"'*)
      echo "note on $1 is not success: $doc" >&2; exit 1 ;;
    esac
    sleep 0.002
  done
  echo "no note on $1; see $work/serve.log" >&2; exit 1
}
note_ms() { # commit: its note's last run's `ms` (the apply step inside the service)
  git --git-dir "$work/remote.git" notes --ref=pgitops show "$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][-1]["ms"])'
}

bench() { # name, clusters, change-kind (user|hba), count
  local name=$1 kind=$3 count=$4
  CLUSTERS=$2
  stop
  bash "$root/scripts/sandbox.sh" down >/dev/null
  PGITOPS_SANDBOX_CLUSTERS=$2 bash "$root/scripts/sandbox.sh" up >/dev/null
  rm -rf "$work/remote.git" "$work/state" "$work/w"
  git init -q --bare -b main "$work/remote.git"
  git init -q -b main "$work/w" && cd "$work/w"
  git remote add origin "$work/remote.git"
  inventory 0 127.0.0.0/8 > pigsty.yml && git add -A && commit base >/dev/null && git push -q origin HEAD:main
  bash "$root/scripts/sandbox.sh" config "$work/remote.git" "$work/state" 127.0.0.1:9189 60 > "$work/pgitops.toml"
  "$bin" serve --config "$work/pgitops.toml" 2>"$work/serve.log" &
  serve=$!
  note_wait "$(git rev-parse HEAD)"
  local latency=() step=()
  for i in $(seq 1 "$count"); do
    if [ "$kind" = user ]; then inventory "$i" 127.0.0.0/8 > pigsty.yml; else inventory 0 "127.$((i % 2)).0.0/8" > pigsty.yml; fi
    local c t0; c=$(commit "change $i")
    git push -q origin HEAD:main
    t0=$(now_ms)
    note_wait "$c"
    latency+=($(( $(now_ms) - t0 )))
    step+=("$(note_ms "$c")")
  done
  printf '%s push -> note: ' "$name"; printf '%s\n' "${latency[@]}" | stats
  printf '%s apply step in the service (warm masters): ' "$name"; printf '%s\n' "${step[@]}" | stats
  if [ "$name" = "one-user-3-nodes" ]; then
    local cpu0 hz; hz=$(getconf CLK_TCK)
    cpu0=$(awk '{print $14 + $15}' "/proc/$serve/stat"); sleep "$idle"
    echo "idle ${idle} s: RSS $(( $(awk '/VmRSS/ {print $2}' "/proc/$serve/status") / 1024 )) MB, CPU $(( ($(awk '{print $14 + $15}' "/proc/$serve/stat") - cpu0) * 1000 / hz )) ms"
  fi
  stop
  local home times=(); home=$(pigsty_home)
  for i in $(seq 1 "$count"); do
    if [ "$kind" = user ]; then
      inventory $((count + i)) 127.0.0.0/8 > "$home/pigsty.yml"
      local s; s=$(now_ms)
      (cd "$home" && ansible-playbook pgsql-user.yml -i pigsty.yml -l pg-b0 -e "username=bench_u$((count + i - 1))" >/dev/null)
      times+=($(( $(now_ms) - s )))
    else
      inventory 0 "127.$((i % 2)).0.0/8" > "$home/pigsty.yml"
      local s; s=$(now_ms)
      (cd "$home" && ansible-playbook pgsql.yml -i pigsty.yml -l 'pg-b*' -t pg_hba,pg_reload,pgbouncer_hba,pgbouncer_reload -f 10 >/dev/null)
      times+=($(( $(now_ms) - s )))
    fi
  done
  printf '%s ansible-playbook: ' "$name"; printf '%s\n' "${times[@]}" | stats
  cd "$root"
}

three="127.0.50.11,127.0.50.12,127.0.50.13"
thirty=""
for c in $(seq 0 9); do thirty+="127.0.51.$((c * 3 + 1)),127.0.51.$((c * 3 + 2)),127.0.51.$((c * 3 + 3)) "; done
only=${PGITOPS_BENCH_ONLY:-all}   # all, user or hba
[ "$only" = hba ] || bench "one-user-3-nodes" "$three" user "$pushes"
[ "$only" = user ] || bench "hba-30-hosts" "$thirty" hba "$runs"
echo "release binary: $(( $(stat -c %s "$bin") / 1024 / 1024 )) MB"
