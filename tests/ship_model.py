#!/usr/bin/env python3
"""Copies a trained model folder into models/ with its weights stored as float16 (half the
size; `dnabert` and transformers read f16 checkpoints), for the repository to ship.

    python3 tests/ship_model.py runs/pretrain-chrx-small-stage2/model models/dnabert6-chrx-4x256

Needs numpy and safetensors. The model card (README.md in the target) is written by hand.
"""
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for name in ("config.json", "vocab.txt"):
    shutil.copy(src / name, dst / name)
tensors = load_file(src / "model.safetensors")
save_file({k: v.astype(np.float16) for k, v in tensors.items()}, dst / "model.safetensors")
print(f"{dst}: {sum(v.size for v in tensors.values())} parameters, "
      f"{(dst / 'model.safetensors').stat().st_size} bytes")
