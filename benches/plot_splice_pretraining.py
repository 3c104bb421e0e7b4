#!/usr/bin/env python3
"""Pretraining against what it buys: held-out masked-k-mer loss and the splice benchmark
(avg MCC, mean ± sd across fine-tuning seeds) against pretraining tokens, in one figure.

    python3 benches/plot_splice_pretraining.py --out results/splice-pretraining.png \
        --metrics 4640000=runs/pretrain-chrx-small-stage3/metrics.jsonl --start-loss 7.1831 \
        --report 4640000=runs/splice-report-w100-decoy-gene-stage2.json \
        --report 9000000=runs/splice-report-w100-decoy-gene-pretrained.json

--metrics OFFSET=FILE: a pretraining run's metrics.jsonl; its tokens are counted from OFFSET
(the tokens of the stages before it); --start-loss: the held-out loss of the weights that run
started from, on its validation batches, drawn at OFFSET. --report TOKENS=FILE: a splice-report JSON of a model
pretrained on TOKENS tokens; its "random weights" baseline is drawn at 0 tokens, its PWM as a
line (the GT/AG rule, far below on decoys, in the legend). Needs matplotlib.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def pair(s):
    n, path = s.split("=", 1)
    return float(n), path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=pair, action="append", default=[])
    ap.add_argument("--report", type=pair, action="append", default=[])
    ap.add_argument("--start-loss", type=float)
    ap.add_argument("--metric", default="avg_mcc")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for offset, path in a.metrics:
        tokens, x, y = offset, [], []
        if a.start_loss is not None:
            x.append(offset / 1e6)
            y.append(a.start_loss)
        for line in open(path):
            r = json.loads(line)
            tokens += r.get("tokens", 0)
            if "val_loss" in r:
                x.append(tokens / 1e6)
                y.append(r["val_loss"])
        left.plot(x, y, marker=".", label=path.split("/")[-2])
    left.set_xlabel("pretraining tokens (millions)")
    left.set_ylabel("held-out masked-k-mer loss")
    left.set_title("Pretraining on the chrX slice")
    left.legend(fontsize=8)

    m = a.metric
    xs, means, sds = [], [], []
    for tokens, path in sorted(a.report):
        r = json.load(open(path))
        if not xs and "random weights" in r["baselines"]:
            b = r["baselines"]["random weights"]
            xs.append(0.0)
            means.append(b["mean"][m])
            sds.append(b["sd"][m])
            if "pwm" in r["baselines"]:
                right.axhline(r["baselines"]["pwm"]["mean"][m], ls="--", c="grey", label="PWM")
            if "gt_ag" in r["baselines"]:
                rule = r["baselines"]["gt_ag"]["mean"][m]
                right.plot([], [], ls=":", c="grey", label=f"GT/AG rule: {rule:.3f} (off scale)")
        xs.append(tokens / 1e6)
        means.append(r["mean"][m])
        sds.append(r["sd"][m])
    right.errorbar(xs, means, yerr=sds, marker="o", capsize=4, label="fine-tuned (mean ± sd)")
    right.set_xlabel("pretraining tokens (millions; 0 = random weights)")
    right.set_ylabel(m)
    right.set_title("Splice sites: decoy negatives, gene split")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=90)
    print(a.out)


if __name__ == "__main__":
    main()
