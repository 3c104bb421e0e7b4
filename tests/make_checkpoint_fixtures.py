#!/usr/bin/env python3
"""Regenerates the checkpoint fixtures: the weights of tests/fixtures/tiny-k6 and tiny-k3-base
(made by tests/make_fixtures.py, whose expected outputs they share) saved the ways DNABERT users
have them, and hostile files the reader must refuse.

Run by hand (not in CI), from the repository root, with PyTorch and transformers:

    python3 tests/make_checkpoint_fixtures.py

It writes, under tests/fixtures/:
  tiny-k6-bin/        a published-style DNABERT folder: config.json with the DNABERT fork's extra
                      keys, vocab.txt, and pytorch_model.bin only (torch.save's zip format) of the
                      BertForMaskedLM state dict, with the `position_ids` buffer and the tied
                      decoder weight and bias in it, as the 2020 checkpoints have
  tiny-k3-legacy/     tiny-k3-base's bare BertModel in the legacy (pre-1.6) torch.save format,
                      LayerNorm parameters named gamma/beta, one tensor saved as a strided view
  tiny-k3-sharded-bin/ the same weights in two shards with pytorch_model.bin.index.json, as
                      transformers 4 writes them
  checkpoints/dtypes.bin      f16, bf16, f64 and int64 tensors with known values
  checkpoints/os_system.bin   a torch.save zip whose pickle calls os.system (must be refused)
  checkpoints/huge_storage.bin a storage claiming 2^50 floats in a 24-byte entry
  checkpoints/huge_view.bin   a 1000 x 1000 view of a 6-element storage
"""
import json
import pickle
import shutil
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"


def fresh(path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def published_k6():
    out = fresh(FIX / "tiny-k6-bin")
    src = FIX / "tiny-k6"
    config = json.loads((src / "config.json").read_text())
    # Keys the DNABERT fork of transformers wrote into its configs; they must be ignored.
    config.update({"num_rnn_layer": 2, "rnn": "lstm", "rnn_dropout": 0.0, "rnn_hidden": 768, "split": 10})
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copy(src / "vocab.txt", out / "vocab.txt")
    w = load_file(src / "model.safetensors")
    sd = OrderedDict()
    sd["bert.embeddings.position_ids"] = torch.arange(config["max_position_embeddings"]).expand((1, -1))
    for name, t in w.items():
        sd[name] = t
    # Tied, as in the model: the decoder's weight is the word embedding table, one storage.
    sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    torch.save(sd, out / "pytorch_model.bin")


def legacy_k3():
    src = FIX / "tiny-k3-base"
    w = load_file(src / "model.safetensors")
    sd = OrderedDict()
    for name, t in w.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        sd[name] = t
    q = "encoder.layer.0.attention.self.query.weight"
    sd[q] = sd[q].t().contiguous().t()  # same values, column-major strides
    assert not sd[q].is_contiguous()
    out = fresh(FIX / "tiny-k3-legacy")
    for f in ("config.json", "vocab.txt"):
        shutil.copy(src / f, out / f)
    torch.save(sd, out / "pytorch_model.bin", _use_new_zipfile_serialization=False)

    sharded = fresh(FIX / "tiny-k3-sharded-bin")
    for f in ("config.json", "vocab.txt"):
        shutil.copy(src / f, sharded / f)
    names = list(w)
    half = len(names) // 2
    weight_map = {}
    for i, part in enumerate([names[:half], names[half:]]):
        shard = f"pytorch_model-{i + 1:05d}-of-00002.bin"
        torch.save(OrderedDict((n, w[n]) for n in part), sharded / shard)
        weight_map.update({n: shard for n in part})
    total = sum(t.numel() * t.element_size() for t in w.values())
    (sharded / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n"
    )


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned-by-checkpoint",))


def storage_pickle(numel, size, stride):
    """data.pkl of {"w": tensor} whose storage claims `numel` floats and whose view is `size`."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj == "STORAGE":
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    class Rebuild:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, ("STORAGE", 0, size, stride, False, OrderedDict()))

    import io

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(OrderedDict(w=Rebuild()))
    return buf.getvalue()


def write_zip(path, pickled, storage):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", storage)
        z.writestr("archive/version", "3\n")


def hostile_and_dtypes():
    out = fresh(FIX / "checkpoints")
    torch.save(
        OrderedDict(
            half=torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16),
            bf16=torch.tensor([1.5, -2.25, 3.0e38], dtype=torch.bfloat16),
            double=torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float64),
            ints=torch.arange(4),
        ),
        out / "dtypes.bin",
    )
    torch.save({"w": torch.zeros(2), "payload": Evil()}, out / "os_system.bin")
    write_zip(out / "huge_storage.bin", storage_pickle(1 << 50, (2, 3), (3, 1)), bytes(24))
    write_zip(out / "huge_view.bin", storage_pickle(6, (1000, 1000), (1000, 1)), bytes(24))


def main():
    published_k6()
    legacy_k3()
    hostile_and_dtypes()
    for d in ("tiny-k6-bin", "tiny-k3-legacy", "tiny-k3-sharded-bin", "checkpoints"):
        for p in sorted((FIX / d).iterdir()):
            print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
