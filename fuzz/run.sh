#!/usr/bin/env bash
# Runs every fuzz target over its committed seeds (fuzz/corpus/TARGET) for a fixed number of
# executions from a fixed seed, so a run is reproducible (CI's is the same sequence as this
# one); new inputs go to a scratch folder, so the tree stays clean. Prints each target's
# executions and coverage. Exit non-zero on the first crash (libFuzzer leaves the input in
# fuzz/artifacts/TARGET/: make it a regression test).
#
#   fuzz/run.sh [RUNS=20000] [TARGET...]        RUNS=0: for SECONDS (default 60) instead
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20000}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
# No debug info (cargo-fuzz asks for line tables): 170 MB per target instead of 440 MB, nine
# of them, and shorter links; a crash's stack still names its functions.
# FUZZ_DEBUGINFO=1 keeps the line tables.
if [ "${FUZZ_DEBUGINFO:-0}" != 1 ]; then
  export RUSTFLAGS="${RUSTFLAGS:-} -Cdebuginfo=0"
fi
cargo +nightly fuzz build
if [ "$runs" = 0 ]; then
  bound=(-max_total_time="${SECONDS_PER_TARGET:-60}")
else
  bound=(-runs="$runs" -seed=1 -max_total_time=300)
fi
scratch=$(mktemp -d -p "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
trap 'rm -rf "$scratch"' EXIT
# The targets write each input to a file there (fuzz/src/lib.rs), removed with it.
export DNABERT_FUZZ_SCRATCH="$scratch/inputs"
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  log="$scratch/$t.log"
  started=$(date +%s)
  # -rss_limit_mb: a parser that allocates what a hostile header claims is a finding too.
  if ! cargo +nightly fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      "${bound[@]}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz: $t FAILED (see fuzz/artifacts/$t/)"
    exit 1
  fi
  done_runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  echo "fuzz: $t: $done_runs executions in $(( $(date +%s) - started )) s, coverage $cov edges, no crash"
done
