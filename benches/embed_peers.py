#!/usr/bin/env python3
"""`dnabert embed` beside PyTorch and ONNX Runtime, at DNABERT-base size, in one run.

    python3 benches/embed_peers.py [--windows 16] [--threads 2] [--rounds 2] [--skip-build]

Makes a DNABERT-base model (12 layers, 768 hidden, 12 heads, k = 6, random weights: speed does
not depend on their values) in a temporary folder, cuts real chrX sequence from
../shared/data into windows of 510 6-mers (512 tokens with [CLS] and [SEP]), and times, on the
same weights and the same token ids, batch 1, all `--threads`:

  dnabert native fp32   `dnabert embed --engine native` (release build): our encoder on our
                        kernels, one window per thread; tokens/s as the binary reports it
                        (model loading excluded)
  dnabert native bf16   the same with `--precision bf16` (CPUs with AVX512-BF16 only)
  dnabert native int16  the same with `--precision int16` (CPUs with AVX512-VNNI only)
  dnabert native int8   the same with `--precision int8` (CPUs with AVX512-VNNI only)
  dnabert tract fp32    `dnabert embed --engine tract` on the graph we export
  onnxruntime fp32      ONNX Runtime on that same graph
  onnxruntime int8      ONNX Runtime's own dynamic int8 quantisation of it (quantize_dynamic)
  pytorch eager fp32    transformers' BertModel

Each peer runs one warm-up window first, then all windows; tokens/s counts k-mer tokens plus
[CLS]/[SEP], i.e. 512 per window. The engines run in `--rounds` interleaved rounds and each
one's best round counts (a shared machine's speed varies from minute to minute). It prints the
CPU, its vector extensions and the load average first (a run on a busy machine is no
measurement), then per engine: tokens/s, the ratio to ONNX Runtime fp32, GFLOP/s and its share
of a peak measured in the same run (the best of PyTorch's, OpenBLAS's and our fp32 product at
2048^3), and the error against
PyTorch's fp32 output: max abs, and per token row |e - ref| / |ref| (max and mean). Needs torch,
transformers, onnxruntime, onnx, numpy and safetensors.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic
import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_reference import ROOT, SHARED, read_chrx  # noqa: E402
from machine import PEAK_N, cpu_flags, machine_line, measured_peak  # noqa: E402

SEQ_TOKENS = 512


def flops_per_window(cfg, s=SEQ_TOKENS):
    h, i, l = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    per_layer = 2 * s * (4 * h * h + 2 * h * i) + 2 * 2 * s * s * h
    return l * per_layer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=16)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each engine's best counts")
    ap.add_argument("--only", default="", help="comma-separated parts of engine names to run (default: all); "
                    "ONNX Runtime fp32 (the ratios' base) and PyTorch (the errors' reference) always run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "-p", "dnabert"], cwd=ROOT, check=True)
    binary = ROOT / "target" / "release" / "dnabert"

    work = Path(tempfile.mkdtemp(prefix="dnabert-bench-"))
    cfg = json.loads((SHARED / "dnabert_vocab" / "config_k6.json").read_text())
    torch.manual_seed(0)
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False).eval()
    mdir = work / "base"
    model.save_pretrained(mdir, safe_serialization=True)
    shutil.copy(SHARED / "dnabert_vocab" / "vocab_k6.txt", mdir / "vocab.txt")

    # Inputs: real sequence, one window of 510 6-mers per record.
    seq = read_chrx(3_000_000, 3_000_000 + args.windows * 515 + 515)
    records = [seq[i * 515 : (i + 1) * 515] for i in range(args.windows + 1)]
    # Ours reads the windows the peers time (1..), not the peers' warm-up window 0: with one
    # window per thread, an odd count would leave a core idle for the last window.
    fasta = work / "in.fa"
    fasta.write_text("".join(f">w{i}\n{r}\n" for i, r in enumerate(records) if i > 0))
    vocab = {t: i for i, t in enumerate((mdir / "vocab.txt").read_text().split("\n"))}
    ids = np.array(
        [[2] + [vocab.get(r[j : j + 6], 1) for j in range(510)] + [3] for r in records], dtype=np.int64
    )
    mask = np.ones_like(ids)

    print(machine_line(args.threads))
    results, outputs = {}, {}

    # dnabert: export our graph first (also the graph ORT runs), then embed from the folder.
    subprocess.run([binary, "export-onnx", "--model", mdir], check=True, capture_output=True)
    ours_onnx = mdir / "model.onnx"
    graphless = work / "weights-only"
    graphless.mkdir()
    for f in ("config.json", "vocab.txt", "model.safetensors"):
        shutil.copy(mdir / f, graphless / f)

    def dnabert(engine, precision):
        # The folder with model.onnx would be run by tract as is: give native the weights alone.
        folder = mdir if engine == "tract" else graphless
        out = subprocess.run(
            [binary, "embed", "--quiet", "--model", folder, "--input", fasta, "--output", work / "emb",
             "--batch-size", "1", "--threads", str(args.threads), "--engine", engine, "--precision", precision],
            check=True, capture_output=True, text=True,
        )
        m = re.search(r"in ([\d.]+) s \((\d+) tokens/s\)", out.stderr)
        # The binary counts k-mer tokens; count [CLS]/[SEP] too, like the peers, over all windows.
        return (len(records) - 1) * SEQ_TOKENS / float(m.group(1)), np.load(work / "emb.npy")

    def time_windows(fn):
        fn(ids[:1], mask[:1])  # warm-up
        t0 = time.perf_counter()
        outs = [fn(ids[i : i + 1], mask[i : i + 1]) for i in range(1, len(records))]
        return (len(records) - 1) * SEQ_TOKENS / (time.perf_counter() - t0), outs

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(ours_onnx), so, providers=["CPUExecutionProvider"])
    quantised = work / "model.int8.onnx"
    quantize_dynamic(str(ours_onnx), str(quantised), weight_type=QuantType.QInt8)
    sess_q = ort.InferenceSession(str(quantised), so, providers=["CPUExecutionProvider"])

    def ort_run(session):
        return time_windows(lambda i, m: session.run(["last_hidden_state"], {"input_ids": i, "attention_mask": m})[0])

    def torch_run():
        with torch.inference_mode():
            return time_windows(
                lambda i, m: model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m)).last_hidden_state.numpy()
            )

    engines = {
        "dnabert native fp32": lambda: dnabert("native", "fp32"),
        "dnabert tract fp32": lambda: dnabert("tract", "fp32"),
        "onnxruntime fp32 (our graph)": lambda: ort_run(sess),
        "onnxruntime int8 dynamic": lambda: ort_run(sess_q),
        "pytorch eager fp32": torch_run,
    }
    if "avx512_bf16" in cpu_flags():
        engines["dnabert native bf16"] = lambda: dnabert("native", "bf16")
    if "avx512_vnni" in cpu_flags():
        engines["dnabert native int16"] = lambda: dnabert("native", "int16")
        engines["dnabert native int8"] = lambda: dnabert("native", "int8")
    if args.only:
        keep = [w.strip() for w in args.only.split(",")] + ["onnxruntime fp32", "pytorch eager fp32"]
        engines = {n: f for n, f in engines.items() if any(w in n for w in keep)}
    # Rounds interleave the engines, so a slow spell of a shared machine hits all; the best
    # round counts.
    for _ in range(args.rounds):
        for name, run in engines.items():
            tps, out = run()
            results[name] = max(results.get(name, 0.0), tps)
            outputs[name] = out

    # Our rows are the k-mer tokens (no [CLS]/[SEP]) of every window; the peers' windows 1..
    ref = np.concatenate([o[0, 1:-1] for o in outputs["pytorch eager fp32"]])

    def rows_of(name):
        out = outputs[name]
        if name.startswith("dnabert"):
            return out
        return np.concatenate([o[0, 1:-1] for o in out])

    ort_speed = results["onnxruntime fp32 (our graph)"]
    peak, yardsticks = measured_peak(args.threads)
    fl = flops_per_window(cfg)
    print(f"peak: the best {yardsticks}")
    print(f"DNABERT-base (12 x 768, 512 tokens), batch 1, {args.threads} threads, {len(records) - 1} windows (the peers after a warm-up one), "
          f"best of {args.rounds} interleaved rounds")
    print(f"{'engine':30} {'tokens/s':>9} {'vs ORT':>7} {'GFLOP/s':>8} {'of peak':>8} {'max abs':>9} {'row rel max':>11} {'row rel mean':>12}")
    for name, tps in sorted(results.items(), key=lambda kv: -kv[1]):
        gf = tps / SEQ_TOKENS * fl / 1e9
        got = rows_of(name)
        rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
        print(f"{name:30} {tps:9.0f} {tps / ort_speed:7.2f} {gf:8.1f} {100 * gf / peak:7.0f}% "
              f"{np.abs(got - ref).max():9.1e} {rel.max():11.1e} {rel.mean():12.1e}")
    print("errors: against PyTorch fp32's per-token output (max abs; per row, |e - ref| / |ref|)")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
