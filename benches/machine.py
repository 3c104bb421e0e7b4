"""What the peer benchmarks print about the machine before timing anything: the CPU, its
vector extensions, how busy it is now, and a peak measured in the same run."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

PEAK_N = 2048
ROOT = Path(__file__).resolve().parent.parent

# One PEAK_N^3 product in numpy, on OpenBLAS (the wheel's own), best of 5: run in a child so
# that OPENBLAS_NUM_THREADS takes effect whatever the caller imported first.
_NUMPY_PEAK = f"""
import time, numpy as np
a, b = np.random.rand({PEAK_N}, {PEAK_N}).astype(np.float32), np.random.rand({PEAK_N}, {PEAK_N}).astype(np.float32)
a @ b
best = 0.0
for _ in range(5):
    t0 = time.perf_counter(); a @ b
    best = max(best, 2 * {PEAK_N}**3 / (time.perf_counter() - t0) / 1e9)
print(best)
"""


def _torch_peak():
    a, b = torch.rand(PEAK_N, PEAK_N), torch.rand(PEAK_N, PEAK_N)
    a @ b
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * PEAK_N**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _numpy_peak(threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _NUMPY_PEAK], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def _our_peak(threads):
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "dnabert", "--bench", "gemm_shapes", "--",
         "--peak", str(PEAK_N), "--threads", str(threads)],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["gflops"]


def measured_peak(threads):
    """The best GFLOP/s of one fp32 PEAK_N^3 product on `threads` threads among three
    yardsticks measured now: PyTorch (MKL/oneDNN), numpy (OpenBLAS) and our own kernel (`cargo
    bench --bench gemm_shapes -- --peak`). Returns (best, a line naming each): the '% of peak'
    columns are shares of what this CPU gave the fastest of them, not of a datasheet figure."""
    torch.set_num_threads(threads)
    rates = {"PyTorch": _torch_peak(), "OpenBLAS": _numpy_peak(threads), "dnabert": _our_peak(threads)}
    line = ", ".join(f"{k} {v:.0f}" for k, v in rates.items())
    return max(rates.values()), f"{PEAK_N}^3 fp32 product on {threads} threads, GFLOP/s: {line}"


def cpu_flags():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def busy_share(seconds=2.0):
    """The share of all cores' time spent busy over the next `seconds` (from /proc/stat):
    what the load average says about the last minute, but for now."""
    def sample():
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = f[3] + f[4]
        return sum(f), idle
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


def machine_line(threads):
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), "unknown CPU")
    wanted = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"]
    flags = cpu_flags()
    load = os.getloadavg()
    busy = busy_share()
    warn = "  (NOT IDLE: the figures below are not a measurement)" if busy > 0.10 else ""
    return (f"CPU: {model}, {os.cpu_count()} cores; {', '.join(f for f in wanted if f in flags)}; "
            f"busy {100 * busy:.0f}% over the last 2 s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{warn}")
