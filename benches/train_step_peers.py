#!/usr/bin/env python3
"""A DNABERT-base masked-LM training step on the CPU: our engine beside PyTorch, in one run.

    python3 benches/train_step_peers.py [--threads 2] [--steps 3] [--seq 512] [--batch 1] [--rounds 3]

Both do the same step: BertForMaskedLM at DNABERT-base size (12 layers, 768 hidden, 12 heads,
k = 6: 4101 tokens), `--batch` x `--seq` tokens, labels on ~15% of them, forward + backward +
AdamW, fp32, dropout off, `--threads` threads. Ours is `cargo bench -p dnabert --bench
train_step` (a release-profile build); PyTorch's is transformers' BertForMaskedLM with
torch.optim.AdamW. The engines take turns, `--rounds` times: in each round each runs one warm-up
step, then `--steps` timed steps, and its median counts. On a shared machine the clock drifts by
a third over minutes, so the ratio is taken within each round (the two runs minutes apart at
most) and the median of the rounds' ratios is the figure; each engine's s/step is its median
over the rounds. Prints a table, the ratios, and FLOP/s (3 x the forward's matrix products)
against a peak measured in the same run (the best of PyTorch's, OpenBLAS's and our own fp32
product at 2048^3; see machine.py), after a line on
the CPU and how busy it is. Needs torch and transformers.
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


class TorchStep:
    """PyTorch's model and optimizer, built once; `run` times one round."""

    def __init__(self, args):
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=4101, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=512,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        self.model = BertForMaskedLM(cfg)
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6,
                                     weight_decay=0.01)
        t = args.batch * args.seq
        self.ids = (5 + (torch.arange(t) * 2654435761) % 4096).reshape(args.batch, args.seq)
        self.labels = torch.where(torch.arange(t) % 7 == 3, self.ids.flatten(),
                                  torch.tensor(-100)).reshape(args.batch, args.seq)
        self.steps = args.steps

    def run(self):
        times = []
        for _ in range(self.steps + 1):
            started = time.perf_counter()
            self.opt.zero_grad()
            self.model(input_ids=self.ids, labels=self.labels).loss.backward()
            self.opt.step()
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
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(machine_line(args.threads))
    flops = step_flops(12, 768, 3072, args.seq, 4101, args.batch)
    theirs = TorchStep(args)
    rounds = []
    for r in range(args.rounds):
        rounds.append((ours(args), theirs.run()))
        print(f"round {r + 1}: dnabert {rounds[-1][0]:.2f} s/step, PyTorch {rounds[-1][1]:.2f}", flush=True)
    torch.set_num_threads(args.threads)
    peak, yardsticks = measured_peak(args.threads)
    tokens = args.batch * args.seq
    print(f"peak: the best {yardsticks}")
    print(f"DNABERT-base MLM training step, {args.batch} x {args.seq} tokens, {args.threads} threads, fp32; "
          f"median of {args.rounds} rounds")
    print(f"{'engine':24} {'s/step':>8} {'tokens/s':>9} {'GFLOP/s':>8} {'% peak':>7}")
    for name, i in [("dnabert (CPU backend)", 0), ("PyTorch eager", 1)]:
        s = statistics.median(r[i] for r in rounds)
        g = flops / s / 1e9
        print(f"{name:24} {s:8.2f} {tokens / s:9.0f} {g:8.1f} {100 * g / peak:6.1f}%")
    ratios = [r[1] / r[0] for r in rounds]
    print(f"ratio dnabert / PyTorch (throughput), median of the rounds' ratios: {statistics.median(ratios):.2f} "
          f"(rounds: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
