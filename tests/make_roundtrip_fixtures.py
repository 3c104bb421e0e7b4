#!/usr/bin/env python3
"""Makes model folders with dnabert and opens them with transformers: the check that our folders
round-trip into the Python world, and the fixtures that hold dnabert to what transformers reads.

Run by hand (not in CI), from the repository root, with PyTorch and transformers, after
`cargo build`:

    python3 tests/make_roundtrip_fixtures.py [path/to/dnabert]

It runs, in tests/fixtures/roundtrip/ (paths relative to the repository root, so the folders'
cards read the same on every machine):
  dnabert pretrain   a tiny DNABERT (k = 3) for a few steps on the bundled mini genome
                     (pretrain.yaml)                                         -> mlm/
  dnabert finetune   the [CLS] head and the centre-token head on a table cut from it
                     (table.csv), with label names (cls.yaml, centre.yaml)   -> cls/, centre/
and checks with transformers, failing loudly otherwise:
  - AutoTokenizer on mlm/ gives dnabert's ids for upper-case k-mers (none lower-cased to [UNK]);
  - AutoModelForMaskedLM loads mlm/ with no missing or unexpected weights;
  - AutoModelForSequenceClassification loads cls/ (and centre/, trust_remote_code=True) with
    none missing, and their id2label carry the names;
then writes what transformers computed, for the Rust test (plugin/tests/it/models/roundtrip.rs):
  expected.safetensors   "hidden/i": mlm/'s last hidden state of sequence i (without [CLS] and
                         [SEP]); "cls/i", "centre/i": class probabilities (1 x classes)
  inputs.json            the sequences and transformers' token ids
The configs and the table are kept (the Rust test runs them again, to check that the folders
dnabert writes today are still the ones transformers read here); the run folders are not.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("tests/fixtures/roundtrip")
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target/debug/dnabert")

PRETRAIN = """\
model: {k: 3, layers: 2, hidden: 16, heads: 2, intermediate: 32, max_positions: 64}
data: {validation_fraction: 0.05, min_contig: 200}
masking: {probability: 0.1, style: dnabert}
training: {steps: 4, batch_size: 2, window_tokens: 40, lr: 0.001, warmup_steps: 1, seed: 0,
           checkpoint_every: 4, validate_every: 4, validation_batches: 1, threads: 1}
"""


def finetune_yaml(head):
    return f"""\
num_labels: 3
labels: [donor, acceptor, neither]
head: {head}
head_hidden: 8
epochs: 1
batch_size: 4
lr: 0.001
seed: 0
threads: 1
"""


def read_genome():
    seqs, cur = {}, None
    for line in (ROOT / "tests/fixtures/mini-genome/genome.fa").read_text().splitlines():
        if line.startswith(">"):
            cur = line[1:].split()[0]
            seqs[cur] = []
        else:
            seqs[cur].append(line.strip())
    return {k: "".join(v) for k, v in seqs.items()}


def sequences():
    """Short windows of the mini genome: soft-masked ones upper-cased, one with N and IUPAC."""
    g = next(iter(read_genome().values())).upper()
    acgt = [i for i in range(0, len(g) - 60, 997) if all(c in "ACGT" for c in g[i : i + 60])]
    out = [g[i : i + 20 + 3 * j] for j, i in enumerate(acgt[:6])]
    out.append(out[0][:10] + "N" + out[0][11:25] + "R" + out[0][26:])
    return out


def kmers(seq, k=3):
    return " ".join(seq[i : i + k] for i in range(len(seq) - k + 1))


def run(*args):
    print("$", " ".join(args), flush=True)
    subprocess.run(args, check=True, cwd=ROOT)


def make_folders(work):
    (ROOT / OUT / "pretrain.yaml").write_text(PRETRAIN)
    run(BIN, "pretrain", "--config", str(OUT / "pretrain.yaml"), "--fasta",
        "tests/fixtures/mini-genome/genome.fa", "--output", str(work / "pretrain"))
    shutil.copytree(ROOT / work / "pretrain/model", ROOT / OUT / "mlm")
    # A table of sequences with labels 0/1/2 in turn: numerics, not accuracy, are checked.
    g = next(iter(read_genome().values())).upper()
    rows = ["sequence,label"]
    for i in range(36):
        s = g[500 + 131 * i : 500 + 131 * i + 48]
        if all(c in "ACGT" for c in s):
            rows.append(f"{s},{i % 3}")
    (ROOT / OUT / "table.csv").write_text("\n".join(rows) + "\n")
    for head in ("cls", "centre"):
        (ROOT / OUT / f"{head}.yaml").write_text(finetune_yaml(head))
        run(BIN, "finetune", "--config", str(OUT / f"{head}.yaml"), "--model", str(OUT / "mlm"),
            "--train", str(OUT / "table.csv"), "--output", str(work / head))
        shutil.copytree(ROOT / work / head / "model", ROOT / OUT / head)


def loaded_clean(info, what):
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not bad, f"{what}: transformers reports {bad}"


@torch.no_grad()
def main():
    if OUT.exists():
        shutil.rmtree(ROOT / OUT)
    (ROOT / OUT).mkdir(parents=True)
    work = ROOT / OUT / "work"
    work.mkdir()
    make_folders(work.relative_to(ROOT))
    shutil.rmtree(work)

    seqs = sequences()
    tok = AutoTokenizer.from_pretrained(ROOT / OUT / "mlm")
    vocab = {t: i for i, t in enumerate((ROOT / OUT / "mlm/vocab.txt").read_text().split("\n"))}
    inputs = []
    for s in seqs:
        ids = tok(kmers(s))["input_ids"]
        want = [vocab["[CLS]"]] + [vocab.get(s[i : i + 3], vocab["[UNK]"]) for i in range(len(s) - 2)] + [vocab["[SEP]"]]
        assert ids == want, f"AutoTokenizer gives {ids[:8]}…, DNABERT's vocabulary {want[:8]}…"
        inputs.append({"sequence": s, "input_ids": ids})
    assert all(vocab["[UNK]"] not in x["input_ids"] for x in inputs[:-1]), "upper-case k-mers lower-cased into [UNK]"

    expected = {}
    mlm, info = AutoModelForMaskedLM.from_pretrained(ROOT / OUT / "mlm", output_loading_info=True)
    loaded_clean(info, "mlm")
    mlm.eval()
    for i, x in enumerate(inputs):
        ids = torch.tensor([x["input_ids"]])
        out = mlm(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
        expected[f"hidden/{i}"] = out.hidden_states[-1][0, 1:-1].numpy()
    for head in ("cls", "centre"):
        model, info = AutoModelForSequenceClassification.from_pretrained(
            ROOT / OUT / head, output_loading_info=True, trust_remote_code=(head == "centre")
        )
        loaded_clean(info, head)
        assert model.config.id2label == {0: "donor", 1: "acceptor", 2: "neither"}, model.config.id2label
        model.eval()
        for i, x in enumerate(inputs):
            ids = torch.tensor([x["input_ids"]])
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            expected[f"{head}/{i}"] = torch.softmax(logits, -1).numpy()  # (1, classes)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in expected.items()},
              ROOT / OUT / "expected.safetensors")
    (ROOT / OUT / "inputs.json").write_text(json.dumps(inputs, indent=1) + "\n")
    for p in sorted((ROOT / OUT).rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
