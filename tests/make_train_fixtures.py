#!/usr/bin/env python3
"""Regenerates the gradient-parity fixture that the Rust training engine is held to.

Run by hand (not in CI), from the repository root, with PyTorch, transformers and safetensors:

    python3 tests/make_train_fixtures.py

Writes tests/fixtures/train_k3.safetensors: a tiny random BertForMaskedLM (k = 3, 2 layers ×
32 hidden, LayerNorms randomised, dropout off) and one fixed batch of 2 rows × 16 tokens, the
second row padded, with masked-LM labels; then PyTorch's masked-LM loss, the gradient of every
parameter, and every parameter after one torch.optim.AdamW step (lr 1e-3, betas 0.9/0.98,
eps 1e-6, weight decay 0.01 except on biases and LayerNorm parameters, as BERT trains).

Keys: "param/<name>", "grad/<name>", "after/<name>" under Hugging Face's names (the decoder
weight is tied to the word embeddings and appears once, as them; the decoder bias appears as
cls.predictions.bias), and "ids", "mask", "labels", "loss".

The same for DNABERT's classification head, a BertForSequenceClassification with 3 classes on the
same token ids (before masking), under "classify/": "classify/param/<name>",
"classify/grad/<name>", "classify/labels", "classify/loss".

And BioNeMo's splice-site head (the hidden state of each row's centre token, (len - 1) // 2 of
its real tokens, → Linear(32, 8) → ReLU → Linear(8, 3)) over a BertModel without pooler, under
"centre/": "centre/param/<name>", "centre/grad/<name>", "centre/loss" (labels as classify's).
"""
import numpy as np
import torch
from safetensors.numpy import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

from hf_reference import ROOT

OUT = ROOT / "tests" / "fixtures" / "train_k3.safetensors"


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    cfg = BertConfig(
        vocab_size=69, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=32, type_vocab_size=2, initializer_range=0.2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    model = BertForMaskedLM(cfg)
    model.train()
    for name, p in model.named_parameters():
        if "LayerNorm" in name:
            p.data = (1.0 + 0.3 * torch.randn(p.shape, generator=gen)) if name.endswith("weight") else 0.2 * torch.randn(p.shape, generator=gen)
    # A distinct decoder bias, so its gradient is checked for real.
    model.cls.predictions.bias.data = 0.1 * torch.randn(cfg.vocab_size, generator=gen)

    b, s = 2, 16
    ids = torch.randint(5, 69, (b, s), generator=gen)
    ids[:, 0], ids[0, -1] = 2, 3
    mask = torch.ones(b, s, dtype=torch.long)
    mask[1, 11:] = 0
    ids[1, 10], ids[1, 11:] = 3, 0
    unmasked = ids.clone()
    labels = torch.full((b, s), -100)
    for row, pos in [(0, [2, 5, 6, 7, 12]), (1, [1, 3, 4, 8])]:
        for p in pos:
            labels[row, p] = ids[row, p]
            ids[row, p] = 4  # [MASK]

    names = {id(p): n for n, p in model.named_parameters()}
    def hf_name(n):
        return "cls.predictions.bias" if n == "cls.predictions.decoder.bias" else n

    out = {f"param/{hf_name(n)}": p.detach().numpy().copy() for n, p in model.named_parameters()}
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    out.update({f"grad/{hf_name(n)}": p.grad.numpy().copy() for n, p in model.named_parameters()})
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith(".bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.98), eps=1e-6,
    )
    opt.step()
    out.update({f"after/{hf_name(n)}": p.detach().numpy().copy() for n, p in model.named_parameters()})
    out["ids"] = ids.numpy().astype(np.int64)
    out["mask"] = mask.numpy().astype(np.int64)
    out["labels"] = labels.numpy().astype(np.int64)
    out["loss"] = np.array([loss.item()], dtype=np.float32)

    # DNABERT's classification head on the unmasked ids.
    cfg.num_labels = 3
    clf = BertForSequenceClassification(cfg)
    clf.train()
    for name, p in clf.named_parameters():
        if "LayerNorm" in name:
            p.data = (1.0 + 0.3 * torch.randn(p.shape, generator=gen)) if name.endswith("weight") else 0.2 * torch.randn(p.shape, generator=gen)
    out.update({f"classify/param/{n}": p.detach().numpy().copy() for n, p in clf.named_parameters()})
    class_labels = torch.tensor([0, 2])
    closs = clf(input_ids=unmasked, attention_mask=mask, labels=class_labels).loss
    closs.backward()
    out.update({f"classify/grad/{n}": p.grad.numpy().copy() for n, p in clf.named_parameters()})
    out["classify/ids"] = unmasked.numpy().astype(np.int64)
    out["classify/labels"] = class_labels.numpy().astype(np.int64)
    out["classify/loss"] = np.array([closs.item()], dtype=np.float32)

    # The centre-token (splice-site) head.
    class Centre(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = BertModel(cfg, add_pooling_layer=False)
            self.classifier = torch.nn.Module()
            self.classifier.dense = torch.nn.Linear(cfg.hidden_size, 8)
            self.classifier.out_proj = torch.nn.Linear(8, 3)

        def forward(self, ids, mask):
            hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
            centre = (mask.sum(1) - 1) // 2
            picked = hidden[torch.arange(ids.shape[0]), centre]
            return self.classifier.out_proj(torch.relu(self.classifier.dense(picked)))

    cen = Centre()
    cen.train()
    for name, p in cen.named_parameters():
        if "LayerNorm" in name:
            p.data = (1.0 + 0.3 * torch.randn(p.shape, generator=gen)) if name.endswith("weight") else 0.2 * torch.randn(p.shape, generator=gen)
        elif name.startswith("classifier.") and name.endswith("bias"):
            p.data = 0.1 * torch.randn(p.shape, generator=gen)
    out.update({f"centre/param/{n}": p.detach().numpy().copy() for n, p in cen.named_parameters()})
    cl = torch.nn.functional.cross_entropy(cen(unmasked, mask), class_labels)
    cl.backward()
    out.update({f"centre/grad/{n}": p.grad.numpy().copy() for n, p in cen.named_parameters()})
    out["centre/loss"] = np.array([cl.item()], dtype=np.float32)
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, OUT)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes, loss {loss.item():.6f}, {len(names)} tensors")


if __name__ == "__main__":
    main()
