#!/usr/bin/env python3
"""`dnabert embed` beside PyTorch and ONNX Runtime, at DNABERT-base size, in one run.

    python3 benches/embed_peers.py [--windows 16] [--threads 2] [--skip-build]

Makes a DNABERT-base model (12 layers, 768 hidden, 12 heads, k = 6, random weights: speed does
not depend on their values) in a temporary folder, cuts real chrX sequence from
../shared/data into windows of 510 6-mers (512 tokens with [CLS] and [SEP]), and times, on the
same weights and the same token ids, batch 1, fp32:

  dnabert   `dnabert embed` (release build), tract on the graph we export; tokens/s as the
            binary reports it (model loading and graph optimisation excluded)
  ort       ONNX Runtime on the same exported graph (a fair peer for the engine)
  ort-torch ONNX Runtime on PyTorch's own export of the model
  torch     PyTorch eager, transformers BertModel

Each peer runs one warm-up window first, then all windows; tokens/s counts k-mer tokens plus
[CLS]/[SEP], i.e. 512 per window. It prints a table, the ratios to ONNX Runtime, the max abs
difference of our per-token output from PyTorch's, and a FLOP/s estimate against the CPU's
fp32 peak. Needs torch, transformers, onnxruntime, numpy and safetensors.
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
import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hf_reference import ROOT, SHARED, export_onnx, read_chrx  # noqa: E402

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
    ap.add_argument("--engine", default=None)
    ap.add_argument("--peak-gflops", type=float, default=230.0, help="the CPU's fp32 peak (2 Zen 4 cores: ~230)")
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
    fasta = work / "in.fa"
    fasta.write_text("".join(f">w{i}\n{r}\n" for i, r in enumerate(records)))
    vocab = {t: i for i, t in enumerate((mdir / "vocab.txt").read_text().split("\n"))}
    ids = np.array(
        [[2] + [vocab.get(r[j : j + 6], 1) for j in range(510)] + [3] for r in records], dtype=np.int64
    )
    mask = np.ones_like(ids)

    results = {}

    # dnabert: export our graph first (also the graph ORT runs), then embed from the folder.
    subprocess.run([binary, "export-onnx", "--model", mdir], check=True, capture_output=True)
    ours_onnx = mdir / "model.onnx"
    out = subprocess.run(
        [binary, "embed", "--quiet", "--model", mdir, "--input", fasta, "--output", work / "emb",
         "--batch-size", "1", "--threads", str(args.threads)] + (["--engine", args.engine] if args.engine else []),
        check=True, capture_output=True, text=True,
    )
    m = re.search(r"in ([\d.]+) s \((\d+) tokens/s\)", out.stderr)
    secs = float(m.group(1))
    # The binary counts k-mer tokens; count [CLS]/[SEP] too, like the peers, over all windows.
    results[f"dnabert ({args.engine or 'tract'})"] = len(records) * SEQ_TOKENS / secs
    ours = np.load(work / "emb.npy")

    def time_windows(fn):
        fn(ids[:1], mask[:1])  # warm-up
        t0 = time.perf_counter()
        outs = [fn(ids[i : i + 1], mask[i : i + 1]) for i in range(1, len(records))]
        return (len(records) - 1) * SEQ_TOKENS / (time.perf_counter() - t0), outs

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(ours_onnx), so, providers=["CPUExecutionProvider"])
    results["onnxruntime (our graph)"], oouts = time_windows(
        lambda i, m: sess.run(["last_hidden_state"], {"input_ids": i, "attention_mask": m})[0]
    )

    # PyTorch before its ONNX export: tracing leaves the module altered.
    with torch.inference_mode():
        results["pytorch eager"], touts = time_windows(
            lambda i, m: model(input_ids=torch.from_numpy(i), attention_mask=torch.from_numpy(m)).last_hidden_state.numpy()
        )
    torch_onnx = work / "torch.onnx"
    export_onnx(model, torch_onnx, torch.from_numpy(ids[:1]))
    sess2 = ort.InferenceSession(str(torch_onnx), so, providers=["CPUExecutionProvider"])
    results["onnxruntime (PyTorch export)"], _ = time_windows(
        lambda i, m: sess2.run(["last_hidden_state"], {"input_ids": i, "attention_mask": m})[0]
    )

    # Our rows are the k-mer tokens (no [CLS]/[SEP]) of every window, window 0 included.
    ref = np.concatenate([o[0, 1:-1] for o in touts])
    diff = np.abs(ours[510:] - ref).max()
    diff_ort = np.abs(ours[510:] - np.concatenate([o[0, 1:-1] for o in oouts])).max()

    ort_speed = results["onnxruntime (our graph)"]
    fl = flops_per_window(cfg)
    print(f"\nDNABERT-base (12 x 768, 512 tokens), batch 1, fp32, {args.threads} threads, {len(records)} windows")
    print(f"{'engine':32} {'tokens/s':>10} {'vs ORT':>8} {'GFLOP/s':>9} {'% of peak':>10}")
    for name, tps in results.items():
        gf = tps / SEQ_TOKENS * fl / 1e9
        print(f"{name:32} {tps:10.0f} {tps / ort_speed:8.2f} {gf:9.1f} {100 * gf / args.peak_gflops:9.0f}%")
    print(f"max abs difference of dnabert's per-token output: {diff:.2e} from PyTorch, {diff_ort:.2e} from ORT")
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
