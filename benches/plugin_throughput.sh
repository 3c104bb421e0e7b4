#!/usr/bin/env bash
# Plugin throughput through the host boundary, on the chrX data (../shared/data): make-dataset
# with the promoter task, and with a WAT task that emits 200 windows per transcript (the
# boundary under load). Prints the whole run's wall time beside the time spent inside the
# plugin (summary.json: plugin_calls, plugin_seconds), so one sees whether the plugin is the
# bottleneck. Then the splice-site task both ways: `splice-sites` (built in) and make-dataset
# with plugins/splice-sites (three passes over the genome, the decoy scan inside the plugin),
# and plugins/peaks given every line of the annotation as a feature (`types=*`: annotation
# records/s through the boundary).
# A benchmark, not a test: timings depend on the machine (its CPU is printed).
#
#   benches/plugin_throughput.sh [path/to/dnabert]     (default: target/release/dnabert)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/dnabert}
data=../shared/data
cargo build --release --target wasm32-unknown-unknown --manifest-path plugins/Cargo.toml -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
grep -m1 'model name' /proc/cpuinfo || true
uptime
cat > "$work/many.wat" <<'WAT'
(module
  (import "dnabert" "label" (func $label (param i32 i32) (result i32)))
  (import "dnabert" "emit" (func $emit (param i64 i64 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "w")
  (func (export "dnabert_abi_version") (result i32) (i32.const 1))
  (func (export "dnabert_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "dnabert_task_start") (param i32 i32) (drop (call $label (i32.const 16) (i32.const 1))))
  ;; 200 windows of 100 bases at 3,000,000, 3,000,001, … of the record, whatever the transcript.
  (func (export "dnabert_task_transcript") (param i32 i32) (local $i i64)
    (loop $l
      (call $emit (i64.add (i64.const 3000000) (local.get $i)) (i64.add (i64.const 3000100) (local.get $i))
                  (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const 200))))))
WAT
release=plugins/target/wasm32-unknown-unknown/release
for run in "$release/promoter.wasm" "$work/many.wat" "$release/splice_sites.wasm" \
  "$release/peaks.wasm --config types=* --split random"; do
  read -r plugin args <<<"$run"
  out="$work/out"
  rm -rf "$out"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086 # $args: the run's own flags, split on purpose
  "$bin" make-dataset --fasta "$data/grch37_chrX_1-70Mb.fa.gz" \
    --annotation "$data/grch37_chrX_1-70Mb.gencode24.gff3" --plugin "$plugin" $args \
    --max-per-class 1000000 --output "$out" 2>/dev/null
  end=$(date +%s.%N)
  python3 - "$out/summary.json" "$start" "$end" "$(basename "$plugin")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
t = s["plugin_seconds"]
print(f"{sys.argv[4]}: run {wall:.2f} s; in the plugin {t:.3f} s ({100 * t / wall:.1f}%): "
      f"{s['plugin_calls'] / t:.0f} calls/s, {s['emitted'] / t:.0f} windows/s emitted"
      + (f", {s['features']} annotation lines" if s.get("features") else ""))
PY
done
start=$(date +%s.%N)
"$bin" splice-sites --fasta "$data/grch37_chrX_1-70Mb.fa.gz" \
  --annotation "$data/grch37_chrX_1-70Mb.gencode24.gff3" --output "$work/builtin" 2>/dev/null
end=$(date +%s.%N)
python3 -c "import sys; print(f'splice-sites (built in): run {float(sys.argv[2]) - float(sys.argv[1]):.2f} s')" "$start" "$end"
