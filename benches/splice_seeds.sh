#!/usr/bin/env bash
# The splice benchmark of results/splice-chrx.md, as one command: the chrX dataset (decoy
# negatives, a gene-disjoint split), the random-weights model, fine-tuning of the pretrained and
# the random model with each seed (JOBS at a time, one thread each), and one report that puts
# the pretrained model beside the random one, the GT/AG rule and a PWM.
#
#   benches/splice_seeds.sh                     # windows of 100 bases, seeds 0,1,2
#   WINDOW=400 NEGATIVES=gene-body SPLIT=random benches/splice_seeds.sh   # the seed's setting
#
# Environment (defaults in brackets): DNABERT [target/release/dnabert], RUNS [runs],
# WINDOW [100], NEGATIVES [decoy], SPLIT [gene], SEEDS [0,1,2], JOBS [2],
# PRETRAINED [models/dnabert6-chrx-4x256] and its NAME [pretrained] (another NAME keeps
# another pretrained model's runs apart and reuses the random ones), TAG [w$WINDOW-$NEGATIVES-$SPLIT].
# A run whose test_predictions.tsv exists is not run again, so an interrupted benchmark resumes.
set -euo pipefail
cd "$(dirname "$0")/.."

DNABERT=${DNABERT:-target/release/dnabert}
RUNS=${RUNS:-runs}
WINDOW=${WINDOW:-100}
NEGATIVES=${NEGATIVES:-decoy}
SPLIT=${SPLIT:-gene}
SEEDS=${SEEDS:-0,1,2}
JOBS=${JOBS:-2}
PRETRAINED=${PRETRAINED:-models/dnabert6-chrx-4x256}
NAME=${NAME:-pretrained}
TAG=${TAG:-w$WINDOW-$NEGATIVES-$SPLIT}
DATA=$RUNS/splice-chrx-$TAG
GENOME=../shared/data/grch37_chrX_1-70Mb.fa.gz
ANNOTATION=../shared/data/grch37_chrX_1-70Mb.gencode24.gff3

[ -x "$DNABERT" ] || { echo "no $DNABERT: cargo build --release -p dnabert" >&2; exit 1; }
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -f "$DATA/summary.json" ]; then
  "$DNABERT" splice-sites --fasta "$GENOME" --annotation "$ANNOTATION" --output "$DATA" \
    --window "$WINDOW" --negative-kind "$NEGATIVES" --split "$SPLIT"
fi
if [ ! -f "$RUNS/init-small/config.json" ]; then
  "$DNABERT" init --config tests/configs/model-small.yaml --output "$RUNS/init-small"
fi

# One fine-tuning run: NAME MODEL SEED. Both configs hold the same hyperparameters.
finetune() {
  local out=$RUNS/finetune-splice-$TAG-$1-seed$3 config=pretrained
  [ "$1" = random ] && config=random
  [ -f "$out/test_predictions.tsv" ] && return 0
  "$DNABERT" finetune --config "tests/configs/finetune-splice-$config.yaml" --model "$2" \
    --train "$DATA/train.tsv" --validation "$DATA/validation.tsv" --test "$DATA/test.tsv" \
    --output "$out" --seed "$3" --threads 1 >"$out.log" 2>&1 \
    || { echo "fine-tuning failed: $out.log" >&2; return 1; }
  echo "   done: $out ($(tail -1 "$out.log"))"
}

for seed in ${SEEDS//,/ }; do
  for model in "$NAME:$PRETRAINED" "random:$RUNS/init-small"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    echo "== fine-tune ${model%%:*}, seed $seed"
    finetune "${model%%:*}" "${model#*:}" "$seed" &
  done
done
wait  # a failed run has said so; the report below then names its missing file

list() { local s out=(); for s in ${SEEDS//,/ }; do out+=("$RUNS/finetune-splice-$TAG-$1-seed$s/test_predictions.tsv"); done; (IFS=,; echo "${out[*]}"); }
"$DNABERT" splice-report --predictions "$(list "$NAME")" --versus "$(list random)" \
  --versus-name "random weights" --train "$DATA/train.tsv" --test "$DATA/test.tsv" \
  --title "chrX splice sites ($TAG): $NAME 4x256 model ($PRETRAINED)" \
  --output "$RUNS/splice-report-$TAG-$NAME" ${REFERENCE:+--reference}
