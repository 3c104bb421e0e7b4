"""Helpers shared by the scripts that run the Python reference (fixtures, benchmarks)."""
import gzip
import os
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
if not SHARED.exists() and "DNABERT_SHARED_DATA" in os.environ:
    SHARED = Path(os.environ["DNABERT_SHARED_DATA"])


def read_chrx(start, end):
    """Bases [start, end) of the single record in ../shared/data's chrX slice."""
    out, pos = [], 0
    with gzip.open(SHARED / "grch37_chrX_1-70Mb.fa.gz", "rt") as f:
        for line in f:
            if line.startswith(">"):
                continue
            line = line.strip()
            if pos + len(line) > start:
                out.append(line[max(0, start - pos) :])
            pos += len(line)
            if pos >= end:
                break
    return "".join(out)[: end - start]


class Encoder(torch.nn.Module):
    """A BertModel seen as input_ids, attention_mask -> last_hidden_state, for ONNX export."""

    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask):
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(bert, path, example_ids):
    """PyTorch's own ONNX export of the encoder, with dynamic batch and sequence axes."""
    torch.onnx.export(
        Encoder(bert),
        (example_ids, torch.ones_like(example_ids)),
        path,
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ["input_ids", "attention_mask", "last_hidden_state"]},
        opset_version=17,
        dynamo=False,
    )
