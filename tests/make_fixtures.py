#!/usr/bin/env python3
"""Regenerates the numeric fixtures that the Rust tests hold `dnabert embed` to.

Run by hand (not in CI), from the repository root, with PyTorch, transformers and safetensors:

    python3 tests/make_fixtures.py

It writes, under tests/fixtures/:
  tiny-k6/            a tiny random DNABERT (k=6) saved by transformers as BertForMaskedLM
                      (names under `bert.`, MLM head present, tied decoder weight absent)
  tiny-k3-base/       a tiny random DNABERT (k=3) saved as a bare BertModel (pooler present)
  tiny-k6-torch-onnx/ the same weights as tiny-k6, with a model.onnx exported by PyTorch
  seqs.fa             real sequences from ../shared/data/grch37_chrX_1-70Mb.fa.gz: exactly
                      510 6-mers, a soft-masked (lowercase) one, one with N and IUPAC letters,
                      one long enough for several windows, a short one
  expected_k6.safetensors, expected_k3.safetensors
                      Hugging Face's last_hidden_state, run window by window and assembled by
                      an implementation of the windowing rules written here independently of
                      the Rust one, for every output mode: "tokens/<id>", "nucleotides/<id>",
                      "cls/<id>", "mean/<id>", and "tokens_w100/<id>" (100-token windows,
                      20 overlapping).

Everything is seeded, so a rerun reproduces the files.
"""
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import BertConfig, BertForMaskedLM, BertModel

from hf_reference import ROOT, SHARED, export_onnx, read_chrx

FIX = ROOT / "tests" / "fixtures"

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_sequences():
    big = read_chrx(2_700_000, 2_720_000)
    n_start = read_chrx(0, 61_000)  # the chromosome opens with 60,000 N
    first_base = next(i for i, c in enumerate(n_start) if c != "N")
    with_n = n_start[first_base - 40 : first_base + 200]
    with_n = with_n[:150] + "RY" + with_n[152:]  # IUPAC codes also become [UNK]
    seqs = {
        "exact510": big[:515],  # 510 6-mers: one full window at max_position_embeddings 512
        "softmasked": big[1000:1300].lower(),
        "with_n": with_n,
        "long": big[5000:6400],  # 1395 6-mers: three windows of 510
        "short": big[9000:9040],
    }
    assert "N" in seqs["with_n"] and all(c in "ACGT" for c in seqs["exact510"])
    return seqs


def kmer_ids(seq, k, vocab):
    seq = seq.upper()
    ids = []
    for i in range(len(seq) - k + 1):
        kmer = seq[i : i + k]
        ids.append(vocab[kmer] if all(c in "ACGT" for c in kmer) else vocab["[UNK]"])
    return ids


def windows(n_tokens, size, overlap):
    if n_tokens <= size:
        return [(0, n_tokens)]
    starts, s = [], 0
    while s + size < n_tokens:
        starts.append(s)
        s += size - overlap
    starts.append(n_tokens - size)
    return [(s, size) for s in starts]


def owner(t, wins):
    """The window in which token t lies furthest from an edge (the earlier one on a tie)."""
    best, best_d = None, -1
    for i, (s, n) in enumerate(wins):
        if s <= t < s + n:
            d = min(t - s, s + n - 1 - t)
            if d > best_d:
                best, best_d = i, d
    return best


@torch.no_grad()
def expected_outputs(model, seqs, k, vocab, size, overlap, modes):
    out = {}
    for name, seq in seqs.items():
        ids = kmer_ids(seq, k, vocab)
        wins = windows(len(ids), size, overlap)
        hidden = []
        for s, n in wins:
            x = torch.tensor([[vocab["[CLS]"]] + ids[s : s + n] + [vocab["[SEP]"]]])
            hidden.append(model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0].numpy())
        tokens = np.stack([hidden[owner(t, wins)][1 + t - wins[owner(t, wins)][0]] for t in range(len(ids))])
        if "tokens" in modes:
            out[f"{modes['tokens']}/{name}"] = tokens
        if "nucleotides" in modes:
            rows = [tokens[max(0, j - k + 1) : min(j, len(ids) - 1) + 1].mean(0) for j in range(len(seq))]
            out[f"nucleotides/{name}"] = np.stack(rows)
        if "cls" in modes:
            out[f"cls/{name}"] = np.stack([h[0] for h in hidden])
        if "mean" in modes:
            out[f"mean/{name}"] = np.stack([h[1:-1].mean(0) for h in hidden])
    return {k_: np.ascontiguousarray(v, dtype=np.float32) for k_, v in out.items()}


def randomise_layer_norms(model, gen):
    for name, p in model.named_parameters():
        if "LayerNorm" in name:
            if name.endswith("weight"):
                p.data = 1.0 + 0.3 * torch.randn(p.shape, generator=gen)
            else:
                p.data = 0.2 * torch.randn(p.shape, generator=gen)


def tiny_config(k, **extra):
    return BertConfig(
        vocab_size=4**k + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.2,
        **extra,
    )


def save_folder(model, k, path, **kwargs):
    if path.exists():
        shutil.rmtree(path)
    model.save_pretrained(path, safe_serialization=True, **kwargs)
    shutil.copy(SHARED / "dnabert_vocab" / f"vocab_k{k}.txt", path / "vocab.txt")


def vocab_of(k):
    lines = (SHARED / "dnabert_vocab" / f"vocab_k{k}.txt").read_text().split("\n")
    return {t: i for i, t in enumerate(lines)}


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    seqs = make_sequences()
    with open(FIX / "seqs.fa", "w") as f:
        for name, seq in seqs.items():
            f.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                f.write(seq[i : i + 60] + "\n")

    # k = 6, saved as BertForMaskedLM.
    mlm = BertForMaskedLM(tiny_config(6)).eval()
    randomise_layer_norms(mlm, gen)
    save_folder(mlm, 6, FIX / "tiny-k6")
    v6 = vocab_of(6)
    expected = expected_outputs(mlm.bert, seqs, 6, v6, 510, 64, {"tokens": "tokens", "nucleotides": 1, "cls": 1, "mean": 1})
    expected.update(expected_outputs(mlm.bert, seqs, 6, v6, 100, 20, {"tokens": "tokens_w100"}))
    save_file(expected, FIX / "expected_k6.safetensors")

    # The same model exported to ONNX by PyTorch, in a folder of its own.
    onnx_dir = FIX / "tiny-k6-torch-onnx"
    if onnx_dir.exists():
        shutil.rmtree(onnx_dir)
    shutil.copytree(FIX / "tiny-k6", onnx_dir)
    x = torch.tensor([[2] + list(range(5, 20)) + [3]])
    export_onnx(mlm.bert, onnx_dir / "model.onnx", torch.tensor([[2] + list(range(5, 20)) + [3]]))
    (onnx_dir / "model.safetensors").unlink()  # the graph alone must suffice

    # k = 3, saved as a bare BertModel with its pooler.
    base = BertModel(tiny_config(3), add_pooling_layer=True).eval()
    randomise_layer_norms(base, gen)
    save_folder(base, 3, FIX / "tiny-k3-base")
    expected3 = expected_outputs(base, seqs, 3, vocab_of(3), 510, 64, {"tokens": "tokens", "nucleotides": 1, "cls": 1, "mean": 1})
    save_file(expected3, FIX / "expected_k3.safetensors")

    for p in sorted(FIX.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
