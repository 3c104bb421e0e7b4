#!/usr/bin/env python3
"""Where int8's error comes from, and int16's: fake quantisation of DNABERT-base's linear layers in PyTorch.

    python3 benches/int8_error_budget.py [--windows 4]

Issue 14 asks for embeddings within 1e-2 relative error per row of fp32. `embed --precision
int8` measures 2.1% mean on the model `embed_peers.py` builds (ONNX Runtime's own dynamic
int8: 3.0%). This script asks whether any dynamic int8 scheme of the linear layers could meet
the bound, by simulating the quantisation in PyTorch on the same model (DNABERT-base, random
weights, seed 0) and the same real chrX windows, with each source of error alone:

  w8 a8          what `gemm/int8.rs` does: weights symmetric per output feature, activations
                 asymmetric per token (u8)
  w8 only        weights quantised, activations exact
  a8 only        activations quantised, weights exact
  w8/k-group G   weights with one scale per G consecutive inputs (finer than per feature)
  w8 clip C      weight scales from C x the largest magnitude (clipping outliers)
  w16 a16        both 16-bit (codes in +-32767)
  int16 kernel   what `gemm/int16.rs` does: both symmetric in +-q, q = floor(sqrt((2^31 - 1) / k))
                 (1672 at k = 768, 836 at k = 3072, so that exact i32 sums over all of k
                 cannot overflow), weights per output feature, activations per token about
                 the row's midpoint
  int16 blocked 256  the same with q = 2896, what sums exact over blocks of 256 k would allow
                 (a blocked kernel measured ~10% slower)
and prints the per-row relative error |e - ref| / |ref| (max, mean) of the last hidden state.
The simulation reproduces the binary's measured w8 a8 error (2.05% here, 2.1% measured), so its
other rows say what each change could buy without writing its kernel. Needs torch and
transformers.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import torch
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hf_reference import SHARED, read_chrx  # noqa: E402


def quant_weight(w, bits=8, group=None, clip=1.0):
    """Symmetric, per output feature (row of W), or per `group` inputs within it."""
    o, i = w.shape
    g = group or i
    wg = w.reshape(o, i // g, g)
    top = 2 ** (bits - 1) - 1
    s = wg.abs().amax(-1, keepdim=True) * clip / top
    return ((wg / s).round().clamp(-top, top) * s).reshape(o, i)


def quant_act(x, bits=8):
    """Asymmetric per token: codes 0..2^bits - 1 over the row's [min, max]."""
    mn, mx = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    s = (mx - mn).clamp_min(1e-30) / (2**bits - 1)
    return ((x - mn) / s).round() * s + mn


def int16_code(k, block=None):
    """The code for sums exact over blocks of k (all of k: `gemm/int16.rs`): block * q^2 <= 2^31 - 1."""
    k = min(k, block or k)
    return min(math.isqrt((2**31 - 1) // k), 32767)


def quant_weight_int16(w, block=None):
    q = int16_code(w.shape[1], block)
    s = w.abs().amax(-1, keepdim=True) / q
    return (w / s).round().clamp(-q, q) * s


def quant_act_int16(x, block=None):
    """Symmetric in +-q about the token's midpoint."""
    q = int16_code(x.shape[-1], block)
    mn, mx = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    mid, s = (mn + mx) / 2, (mx - mn).clamp_min(1e-30) / (2 * q)
    return ((x - mid) / s).round().clamp(-q, q) * s + mid


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=4)
    args = ap.parse_args()
    cfg = json.loads((SHARED / "dnabert_vocab" / "config_k6.json").read_text())
    torch.manual_seed(0)
    model = BertModel(BertConfig(**cfg), add_pooling_layer=False).eval()
    words = (SHARED / "dnabert_vocab" / "vocab_k6.txt").read_text().split("\n")
    vocab = {t: i for i, t in enumerate(words)}
    # The windows embed_peers.py times (it starts at the same position).
    seq = read_chrx(3_000_000, 3_000_000 + args.windows * 515)
    ids = torch.tensor(
        [[2] + [vocab.get(seq[w * 515 + j : w * 515 + j + 6], 1) for j in range(510)] + [3] for w in range(args.windows)]
    )
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    exact = {n: m.weight.data.clone() for n, m in linears.items()}

    def last_hidden():
        with torch.inference_mode():
            return model(input_ids=ids).last_hidden_state[:, 1:-1].reshape(-1, cfg["hidden_size"]).clone()

    ref = last_hidden()

    def error(weights, act_bits):
        hooks = []
        for n, m in linears.items():
            m.weight.data = weights(exact[n]) if weights else exact[n].clone()
            if callable(act_bits):
                hooks.append(m.register_forward_pre_hook(lambda mod, a: (act_bits(a[0]),)))
            elif act_bits:
                hooks.append(m.register_forward_pre_hook(lambda mod, a: (quant_act(a[0], act_bits),)))
        got = last_hidden()
        for h in hooks:
            h.remove()
        rel = (got - ref).norm(dim=1) / ref.norm(dim=1)
        return rel.max().item(), rel.mean().item()

    schemes = {
        "w8 a8 (gemm/int8.rs)": (quant_weight, 8),
        "w8 only": (quant_weight, 0),
        "a8 only": (None, 8),
        **{f"w8/k-group {g} a8": (lambda w, g=g: quant_weight(w, group=g), 8) for g in (256, 64, 32)},
        **{f"w8/k-group {g} only": (lambda w, g=g: quant_weight(w, group=g), 0) for g in (32,)},
        **{f"w8 clip {c} a8": (lambda w, c=c: quant_weight(w, clip=c), 8) for c in (0.9,)},
        "w16 a16": (lambda w: quant_weight(w, bits=16), 16),
        "int16 kernel (gemm/int16.rs)": (quant_weight_int16, quant_act_int16),
        "int16 blocked 256": (
            lambda w: quant_weight_int16(w, block=256),
            lambda x: quant_act_int16(x, block=256),
        ),
    }
    print(f"DNABERT-base, random weights (seed 0), {args.windows} chrX windows of 512 tokens; "
          "per-row relative error of the last hidden state against fp32")
    print(f"{'scheme':28} {'row rel max':>11} {'row rel mean':>12}")
    for name, (weights, bits) in schemes.items():
        mx, mean = error(weights, bits)
        print(f"{name:28} {mx:11.2e} {mean:12.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
