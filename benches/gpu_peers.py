#!/usr/bin/env python3
"""DNABERT-base on one GPU: our GPU backend beside PyTorch, in one run, on the same card.

    python3 benches/gpu_peers.py [--batch 8] [--seq 512] [--steps 10] [--peak-tflops 790]

Training: a masked-LM step (forward, backward, AdamW), BertForMaskedLM at DNABERT-base size
(12 x 768, 12 heads, k = 6: 4101 tokens), `--batch` x `--seq` tokens, labels on every 7th token.
PyTorch runs it with bf16 autocast and SDPA attention (fp32 master weights); ours is
`cargo bench --bench train_step -- --device cuda`, once with fp32 products and once with bf16
ones (mixed precision: bf16 GEMM inputs, fp32 accumulation, fp32 master weights). Embed: BertModel forward only, bf16 (PyTorch); ours is
`dnabert embed --device cuda` (fp32 and bf16 products) of random DNA with a freshly initialised model of the same
size, whole tool included (FASTA reading, windows, writing), from the rate it reports. MFU = model FLOP/s (3 x forward for training, 1 x for embed,
matrix products only) / `--peak-tflops` (the card's dense bf16 peak: ~790 TFLOP/s measured on
H100/H200). Needs torch with CUDA and transformers. `--torch-device cpu` with a small
`--layers/--hidden` checks the script itself on a machine without a GPU.
"""
import argparse
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM, BertModel

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 4101


def forward_flops(layers, h, inter, s, batch, head=True):
    f = batch * (layers * (2 * s * (4 * h * h + 2 * h * inter) + 4 * s * s * h))
    return f + (batch * (2 * s * h * h + 2 * s * h * VOCAB) if head else 0)


def config(args):
    return BertConfig(vocab_size=VOCAB, hidden_size=args.hidden, num_hidden_layers=args.layers,
                      num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden,
                      max_position_embeddings=512, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, attn_implementation="sdpa")


def batch(args, device):
    t = args.batch * args.seq
    ids = (5 + (torch.arange(t) * 2654435761) % 4096).reshape(args.batch, args.seq).to(device)
    labels = torch.where(torch.arange(t, device=device) % 7 == 3, ids.flatten(), -100)
    return ids, labels.reshape(args.batch, args.seq)


def timed(fn, steps, device):
    times = []
    for _ in range(steps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def torch_train(args):
    dev = args.torch_device
    model = BertForMaskedLM(config(args)).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-6,
                            weight_decay=0.01, fused=dev == "cuda")
    ids, labels = batch(args, dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()

    return timed(step, args.steps, dev)


def torch_embed(args):
    dev = args.torch_device
    model = BertModel(config(args), add_pooling_layer=False).to(dev).eval()
    ids, _ = batch(args, dev)

    @torch.inference_mode()
    def fwd():
        with torch.autocast(dev, dtype=torch.bfloat16):
            model(input_ids=ids).last_hidden_state

    return timed(fwd, args.steps, dev)


def ours_train(args, precision, attention="products"):
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "dnabert", "--bench", "train_step", "--", "--device", "cuda",
         "--precision", precision, "--attention", attention,
         "--layers", str(args.layers), "--hidden", str(args.hidden), "--heads", str(args.hidden // 64),
         "--intermediate", str(4 * args.hidden), "--seq", str(args.seq), "--batch", str(args.batch),
         "--steps", str(args.steps)],
        cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds_per_step"], None


def ours_embed(args, precision):
    """tokens/s of `dnabert embed` on `--ours-device`, or (None, why)."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model.yaml").write_text(
            f"k: 6\nlayers: {args.layers}\nhidden: {args.hidden}\nheads: {args.hidden // 64}\n"
            f"intermediate: {4 * args.hidden}\nmax_positions: 512\n")
        bases = args.seq - 2 + 5  # a full window of seq - 2 k-mers per record
        rng = random.Random(0)
        records = max(4 * args.batch, args.steps * args.batch)
        (tmp / "in.fa").write_text("".join(
            f">r{i}\n{''.join(rng.choice('ACGT') for _ in range(bases))}\n" for i in range(records)))
        dnabert = ["cargo", "run", "-q", "--release", "-p", "dnabert", "--"]
        init = subprocess.run(dnabert + ["init", "--config", str(tmp / "model.yaml"), "--output", str(tmp / "m")],
                              cwd=ROOT, capture_output=True, text=True)
        if init.returncode != 0:
            return None, init.stderr.strip()[-300:]
        out = subprocess.run(
            dnabert + ["embed", "--device", args.ours_device, "--precision", precision, "--model", str(tmp / "m"), "--input", str(tmp / "in.fa"),
                       "--output", str(tmp / "out"), "--pooling", "mean", "--batch-size", str(args.batch)],
            cwd=ROOT, capture_output=True, text=True)
        m = re.search(r"\(([\d.]+) tokens/s\)", out.stderr)
        if out.returncode != 0 or not m:
            return None, out.stderr.strip()[-300:]
        return float(m.group(1)), None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--peak-tflops", type=float, default=790.0)
    ap.add_argument("--torch-device", default="cuda")
    ap.add_argument("--skip-ours", action="store_true", help="PyTorch only (checking the script)")
    ap.add_argument("--ours-device", default="cuda", help="dnabert embed --device (cpu checks the script)")
    args = ap.parse_args()
    tokens = args.batch * args.seq
    train_flops = 3 * forward_flops(args.layers, args.hidden, 4 * args.hidden, args.seq, args.batch)
    embed_flops = forward_flops(args.layers, args.hidden, 4 * args.hidden, args.seq, args.batch, head=False)
    name = torch.cuda.get_device_name() if args.torch_device == "cuda" else "cpu"
    print(f"{args.layers} x {args.hidden}, {args.batch} x {args.seq} tokens, {args.steps} timed steps, {name}")
    print(f"{'task':6} {'engine':22} {'precision':10} {'s/step':>8} {'tokens/s':>10} {'TFLOP/s':>8} {'MFU':>6}")
    rows = [("train", "PyTorch (SDPA)", "bf16 amp", torch_train(args), train_flops),
            ("embed", "PyTorch (SDPA)", "bf16 amp", torch_embed(args), embed_flops)]
    # The CPU computes in fp32 only, so checking the script on a CPU runs that one.
    precisions = ["fp32", "bf16"] if args.ours_device != "cpu" else ["fp32"]
    for precision in [] if args.skip_ours else precisions:
        s, err = ours_train(args, precision)
        rows.insert(1, ("train", "dnabert GPU backend", precision, s, train_flops))
        if err:
            print(f"dnabert train ({precision}): {err}")
        rate, err = ours_embed(args, precision)
        if err:
            print(f"dnabert embed ({precision}): {err}")
        rows.append(("embed", f"dnabert ({args.ours_device})", precision,
                     tokens / rate if rate else None, embed_flops))
    if not args.skip_ours and args.ours_device != "cpu":
        # The fused attention kernels (fp32 arithmetic, no tensor cores yet) beside the products.
        s, err = ours_train(args, "fp32", "fused")
        rows.insert(1, ("train", "dnabert fused attention", "fp32", s, train_flops))
        if err:
            print(f"dnabert train (fused attention): {err}")
    for task, engine, prec, s, flops in rows:
        if s is None:
            print(f"{task:6} {engine:22} {prec:10} {'not run':>8}")
            continue
        tf = flops / s / 1e12
        print(f"{task:6} {engine:22} {prec:10} {s:8.4f} {tokens / s:10.0f} {tf:8.1f} {100 * tf / args.peak_tflops:5.1f}%")


if __name__ == "__main__":
    main()
