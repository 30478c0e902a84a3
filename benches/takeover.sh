#!/usr/bin/env bash
# Takeover time of the `[ha]` service: runs the integration test `serve_ha` (a real 3-member etcd
# on 127.0.77.1-3, one PostgreSQL node with sshd, two `pgitops serve` instances, lease TTL 3 s,
# poll 2 s) PGITOPS_BENCH_RUNS times (default 5) and prints each run's figures and the medians:
#   kill -9 mid-apply  : from SIGKILL of the leader to the standby's "leader (term N)" log line;
#   kill -9 after DROP : the same, the leader killed right after its DROP DATABASE;
#   SIGSTOP            : from SIGSTOP of the leader to the other's "leader (term N)";
#   SIGTERM            : from SIGTERM of the leader (it resigns) to the other's "leader (term N)".
# The bound asserted by the test is TTL + one poll (5 s). Debug build, as the test suite runs.
# Run as root: bash benches/takeover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${PGITOPS_BENCH_RUNS:-5}
cargo test --test it serve_ha --no-run -q 2>/dev/null
out=$(mktemp /tmp/pgitops-takeover.XXXXXX)
trap 'rm -f "$out" "$out.all"' EXIT
for i in $(seq "$runs"); do
  cargo test -q --test it serve_ha::a_standby -- --nocapture >"$out" 2>&1 || {
    cp "$out" /tmp/pgitops-takeover-failed.log
    echo "run $i failed; its output is in /tmp/pgitops-takeover-failed.log" >&2
    exit 1
  }
  kill=$(sed -n 's/.*takeover after kill -9: \([0-9.]*\) s.*/\1/p' "$out")
  drop=$(sed -n 's/.*takeover after kill -9 right after a DROP: \([0-9.]*\) s.*/\1/p' "$out")
  stop=$(sed -n 's/.*takeover after SIGSTOP: \([0-9.]*\) s.*/\1/p' "$out")
  term=$(sed -n 's/.*takeover after SIGTERM (resign): \([0-9.]*\) s.*/\1/p' "$out")
  echo "run $i: kill -9 mid-apply ${kill} s, kill -9 after DROP ${drop} s, SIGSTOP ${stop} s, SIGTERM ${term} s"
  echo "$kill $drop $stop $term" >>"$out.all"
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "median of $runs (lease TTL 3 s, poll 2 s):" \
  "kill -9 mid-apply $(cut -d' ' -f1 "$out.all" | median) s," \
  "kill -9 after DROP $(cut -d' ' -f2 "$out.all" | median) s," \
  "SIGSTOP $(cut -d' ' -f3 "$out.all" | median) s," \
  "SIGTERM (resign) $(cut -d' ' -f4 "$out.all" | median) s"
rm -f "$out.all"
