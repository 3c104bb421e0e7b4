#!/usr/bin/env bash
# One prepared run for a lent GPU (issue 15): the checks, our benchmark, PyTorch's on the same
# card, logs under $OUT, a short table last. Fits one device call of about 8 minutes.
#
#   benches/gpu_session.sh --prepare     here: release build, stripped into .gpu/dnabert (~40 MB;
#                                        a device call carries at most 64 MiB)
#   OUT=DIR benches/gpu_session.sh       on the GPU machine, from the repository root, with
#                                        .gpu carried (the device tool: carry [".gpu"])
#
# The device machine has CUDA, PyTorch and transformers but maybe no Rust toolchain, and
# nothing can be fetched there, so the binary is built here. Steps, each with its own time
# limit so that one hang cannot eat the lease:
#   1. the machine: nvidia-smi, the CUDA libraries that can be found, torch's CUDA
#   2. dnabert cuda-check --run      (every op, the MLM step against PyTorch, embed)   4 min
#   3. dnabert cuda-check --bench    (DNABERT-base train step and embed, MFU)           2.5 min
#   4. benches/gpu_peers.py --skip-ours: PyTorch bf16 autocast + SDPA                  1.5 min
# Without a GPU (how this is rehearsed, and what CI checks) steps 2 and 3 exit 77 and the
# script exits 77 too. GPU_PEERS=0 leaves out step 4 (CI has no torch); PEERS_ARGS adds
# flags to it (a rehearsal on a CPU: "--torch-device cpu --layers 1 --hidden 64 --steps 1").
# Exit status: 0 all ran and passed, 1 a check or step failed, 77 no usable GPU.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  set -e
  cargo build --release -p dnabert
  mkdir -p .gpu
  strip -o .gpu/dnabert target/release/dnabert
  echo "prepared: .gpu/dnabert ($(du -m .gpu/dnabert | cut -f1) MB); carry .gpu"
  exit 0
fi

OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BIN=${DNABERT_BIN:-.gpu/dnabert}
PY=${PYTHON:-python3}
if [ ! -x "$BIN" ]; then
  echo "gpu_session: $BIN not found: run benches/gpu_session.sh --prepare first (or set DNABERT_BIN)" >&2
  exit 1
fi

# 1. The machine, and where the CUDA libraries are: the binary loads libcuda (the driver),
# libnvrtc.so.13 and libcublas.so.13 at run time; pip's nvidia-* packages hold them outside
# the loader's path.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  else
    echo "nvidia-smi: not found"
  fi
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())' 2>&1
} >"$OUT/machine.txt"
libdirs=$("$PY" - <<'EOF' 2>/dev/null
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
dirs = set()
for r in roots:
    for lib in glob.glob(os.path.join(r, "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(lib))
print(":".join(sorted(dirs)))
EOF
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -d "$d" ] && libdirs="$libdirs:$d"
done
export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  for name in libcuda.so.1 libnvrtc.so libcublas.so; do
    found=$( (ldconfig -p 2>/dev/null | grep -o "/[^ ]*$name[^ ]*"; IFS=:; for d in $LD_LIBRARY_PATH; do ls "$d"/$name* 2>/dev/null; done) | sort -u | tr '\n' ' ')
    echo "$name: ${found:-none}"
  done
} >>"$OUT/machine.txt"

# 2-3. Our checks and benchmark.
timeout 240 "$BIN" cuda-check --run >"$OUT/cuda-check-run.log" 2>&1
rc_run=$?
timeout 150 "$BIN" cuda-check --bench >"$OUT/cuda-check-bench.log" 2>&1
rc_bench=$?

# 4. PyTorch on the same card.
# Its MFU against the bf16 GEMM rate our benchmark measured on this card, when it did.
peak=$(grep -o '[0-9.]* TFLOP/s: the MFU denominator' "$OUT/cuda-check-bench.log" | cut -d' ' -f1)
rc_peers=skipped
if [ "${GPU_PEERS:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  timeout 90 "$PY" benches/gpu_peers.py --skip-ours ${peak:+--peak-tflops "$peak"} ${PEERS_ARGS:-} \
    >"$OUT/gpu-peers.log" 2>&1
  rc_peers=$?
fi

status() {
  case "$1" in
    0) echo "ok" ;;
    77) echo "skipped: no usable GPU" ;;
    124) echo "timed out" ;;
    skipped) echo "not run (GPU_PEERS=0)" ;;
    *) echo "failed (exit $1)" ;;
  esac
}
{
  echo "== machine"
  cat "$OUT/machine.txt"
  echo "== cuda-check --run: $(status $rc_run)"
  grep -E '^(gpu|summary)' "$OUT/cuda-check-run.log"
  grep -E '^FAIL' "$OUT/cuda-check-run.log" | head -20
  grep -E '^error' "$OUT/cuda-check-run.log"
  echo "== cuda-check --bench: $(status $rc_bench)"
  grep -E '^bench' "$OUT/cuda-check-bench.log" | cut -f2-
  grep -E '^error' "$OUT/cuda-check-bench.log"
  echo "== PyTorch (gpu_peers.py --skip-ours): $(status $rc_peers)"
  [ -f "$OUT/gpu-peers.log" ] && tail -n 8 "$OUT/gpu-peers.log"
  echo "== logs in $OUT"
} | tee "$OUT/summary.txt"

if [ "$rc_run" = 77 ] && [ "$rc_bench" = 77 ]; then
  exit 77
fi
for rc in $rc_run $rc_bench $rc_peers; do
  [ "$rc" = 0 ] || [ "$rc" = skipped ] || exit 1
done
exit 0
