"""What the peer benchmarks print about the machine before timing anything: the CPU, its
vector extensions, how busy it is now, and a peak measured in the same run."""
import os
import time
from pathlib import Path

import torch

PEAK_N = 2048


def measured_peak(threads):
    """GFLOP/s of the best of 5 fp32 products of PEAK_N^3 in PyTorch (MKL/oneDNN): what the CPU
    gives a well-tuned GEMM now."""
    a, b = torch.rand(PEAK_N, PEAK_N), torch.rand(PEAK_N, PEAK_N)
    a @ b
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * PEAK_N**3 / (time.perf_counter() - t0) / 1e9)
    return best


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
