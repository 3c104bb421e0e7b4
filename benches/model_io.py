#!/usr/bin/env python3
"""Model input speed beside the Python stack, in one run: opening a DNABERT-base checkpoint
(random weights, 12 x 768, k = 6) saved as safetensors, as pytorch_model.bin (zip) and in the
legacy torch.save format; and downloading it from the Hub stand-in (tests/hub_standin.py) on
loopback, dnabert against huggingface_hub.

    cargo build --release -p dnabert
    python3 benches/model_io.py [--repeats 3]

Needs torch, transformers, safetensors and huggingface_hub. Open times are what `dnabert convert`
reports for reading (every tensor to f32, names checked), beside torch.load(weights_only=True)
and safetensors' load_file (which maps the file and copies lazily, so it is not the same work).
Download times are whole commands (dnabert also checks every file's sha256 and fsyncs it).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForMaskedLM

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
BIN = ROOT / "target" / "release" / "dnabert"


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    ext = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "sha_ni") if f in flags]
    return f"{cpu} ({', '.join(ext)}), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


def make(work):
    cfg = json.loads((SHARED / "dnabert_vocab" / "config_k6.json").read_text())
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(**cfg)).eval()
    dirs = {}
    for name in ("safetensors", "pytorch_model.bin", "legacy pytorch_model.bin"):
        d = work / name.replace(" ", "_")
        d.mkdir()
        (d / "config.json").write_text(json.dumps(cfg))
        shutil.copy(SHARED / "dnabert_vocab" / "vocab_k6.txt", d / "vocab.txt")
        dirs[name] = d
    model.save_pretrained(dirs["safetensors"])
    sd = model.state_dict()
    sd["bert.embeddings.position_ids"] = torch.arange(512).expand((1, -1))
    torch.save(sd, dirs["pytorch_model.bin"] / "pytorch_model.bin")
    torch.save(sd, dirs["legacy pytorch_model.bin"] / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    return dirs


def median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def dnabert_read(folder, out, repeats):
    ts = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        err = subprocess.run([BIN, "convert", "--model", folder, "--output", out], check=True,
                             capture_output=True, text=True).stderr
        ts.append(float(re.search(r"in ([0-9.]+) s, written", err).group(1)))
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dirs = make(work)
        size = (dirs["safetensors"] / "model.safetensors").stat().st_size
        print(f"\nOpening DNABERT-base ({size / 1e6:.0f} MB), median of {a.repeats}, page cache warm:\n")
        print("| checkpoint | dnabert | Python |")
        print("|---|---:|---:|")
        st = dirs["safetensors"] / "model.safetensors"
        py = {
            "safetensors": ("load_file", lambda: load_file(st)),
            "pytorch_model.bin": ("torch.load", lambda: torch.load(dirs["pytorch_model.bin"] / "pytorch_model.bin", weights_only=True)),
            "legacy pytorch_model.bin": ("torch.load", lambda: torch.load(dirs["legacy pytorch_model.bin"] / "pytorch_model.bin", weights_only=True)),
        }
        for name, d in dirs.items():
            ours = dnabert_read(d, work / "converted", a.repeats)
            what, fn = py[name]
            theirs = median_time(fn, a.repeats)
            print(f"| {name} | {ours:.2f} s | {theirs:.2f} s ({what}) |")

        repos = work / "repos" / "org" / "base"
        repos.mkdir(parents=True)
        for f in dirs["safetensors"].iterdir():
            shutil.copy(f, repos / f.name)
        server = subprocess.Popen(["python3", ROOT / "tests" / "hub_standin.py", "--repos", work / "repos"],
                                  stdout=subprocess.PIPE, text=True)
        port = server.stdout.readline().strip()
        env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_DISABLE_PROGRESS_BARS="1")
        env.pop("HF_TOKEN", None)

        def download(cmd, home):
            def run():
                shutil.rmtree(home, ignore_errors=True)
                subprocess.run(cmd, check=True, capture_output=True, env=dict(env, HF_HOME=str(home)))
            return run

        ours = median_time(download([BIN, "download", "org/base"], work / "hf-ours"), a.repeats)
        code = "from huggingface_hub import snapshot_download; snapshot_download('org/base')"
        theirs = median_time(download(["python3", "-c", code], work / "hf-py"), a.repeats)
        server.kill()
        print(f"\nDownloading it from the stand-in on loopback, median of {a.repeats}:\n")
        print("| client | seconds | MB/s |")
        print("|---|---:|---:|")
        for name, t in (("dnabert download", ours), ("huggingface_hub snapshot_download", theirs)):
            print(f"| {name} | {t:.2f} | {size / 1e6 / t:.0f} |")


if __name__ == "__main__":
    main()
