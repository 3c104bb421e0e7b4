#!/usr/bin/env python3
"""A DNABERT-base masked-LM training step on the CPU: our engine beside PyTorch, in one run.

    python3 benches/train_step_peers.py [--threads 2] [--steps 3] [--seq 512] [--batch 1]

Both do the same step: BertForMaskedLM at DNABERT-base size (12 layers, 768 hidden, 12 heads,
k = 6: 4101 tokens), 1 × 512 tokens, labels on ~15% of them, forward + backward + AdamW, fp32,
dropout off, `--threads` threads. Each runs one warm-up step, then `--steps` timed steps; the
median counts. Ours is `cargo bench -p dnabert --bench train_step` (a release-profile build);
PyTorch's is transformers' BertForMaskedLM with torch.optim.AdamW. Prints a table, the ratio, and
FLOP/s (3 × the forward's matrix products) against a peak measured in the same run
(PyTorch's own fp32 product at 2048³), after a line on the CPU and how busy it is. Needs torch and
transformers.
"""
import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import sys

import torch
from transformers import BertConfig, BertForMaskedLM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line, measured_peak  # noqa: E402


def step_flops(layers, h, inter, s, v, batch):
    fwd = batch * (layers * (2 * s * (4 * h * h + 2 * h * inter) + 4 * s * s * h) + 2 * s * h * h + 2 * s * h * v)
    return 3 * fwd


def torch_step(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=4101, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                     intermediate_size=3072, max_position_embeddings=512,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(cfg)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    t = args.batch * args.seq
    ids = (5 + (torch.arange(t) * 2654435761) % 4096).reshape(args.batch, args.seq)
    labels = torch.where(torch.arange(t) % 7 == 3, ids.flatten(), torch.tensor(-100)).reshape(args.batch, args.seq)
    times = []
    for _ in range(args.steps + 1):
        started = time.perf_counter()
        opt.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def ours(args):
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "dnabert", "--bench", "train_step", "--",
         "--threads", str(args.threads), "--steps", str(args.steps), "--seq", str(args.seq),
         "--batch", str(args.batch)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds_per_step"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    print(machine_line(args.threads))
    flops = step_flops(12, 768, 3072, args.seq, 4101, args.batch)
    rows = [("dnabert (CPU backend)", ours(args)), ("PyTorch eager", torch_step(args))]
    torch.set_num_threads(args.threads)
    peak = measured_peak(args.threads)
    tokens = args.batch * args.seq
    print(f"DNABERT-base MLM training step, {args.batch} x {args.seq} tokens, {args.threads} threads, fp32; "
          f"peak {peak:.0f} GFLOP/s (PyTorch's fp32 product at 2048^3, measured now)")
    print(f"{'engine':24} {'s/step':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'% peak':>7}")
    for name, s in rows:
        g = flops / s / 1e9
        print(f"{name:24} {s:8.2f} {tokens / s:9.0f} {g:8.1f} {100 * g / peak:6.1f}%")
    print(f"ratio dnabert / PyTorch (throughput): {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
