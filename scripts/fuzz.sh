#!/usr/bin/env bash
# Fuzzes the loader (YAML -> validated model -> plan -> SQL and HBA) for N minutes (default 10)
# with examples/fuzz_loader.rs, a structure-aware mutation fuzzer that needs only the stable
# toolchain. Seeds: the test inventory, examples-repo and the shared Pigsty corpus.
# Prints execs, execs/s, crashes and the slowest input; crashes are kept in target/fuzz/crashes.
# Exit: 0 no crash, 1 crashes, 3 an input ran past 10 s, other: the fuzzer died (the input it
# was running is kept as a crash).
#   scripts/fuzz.sh [minutes]        FUZZ_SEED=n to repeat a run, FUZZ_OUT=dir for the output
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-10}
out=${FUZZ_OUT:-$root/target/fuzz}
cd "$root"
cargo build --release --locked -q --example fuzz_loader
seeds=(--seeds tests/it/support --seeds examples-repo)
corpus=${PGITOPS_CORPUS:-$root/../shared/corpus/pigsty}
[ -d "$corpus" ] && seeds+=(--seeds "$corpus")
seed=${FUZZ_SEED:-$(date +%s)}
echo "fuzzing for $minutes minute(s), seed $seed, output in $out"
set +e
target/release/examples/fuzz_loader --seconds $((minutes * 60)) --seed "$seed" --out "$out" "${seeds[@]}"
rc=$?
set -e
if [ "$rc" -gt 3 ]; then
  mkdir -p "$out/crashes"
  kept="$out/crashes/died-$(date +%s).yml"
  cp "$out/current.yml" "$kept"
  echo "crashes: the fuzzer died (exit $rc); the input it was running is kept as $kept"
fi
exit "$rc"
