#!/usr/bin/env bash
# Builds and checks the CPU image with no registry and no daemon: a Debian bookworm base made by
# debootstrap (minbase, plus procps for Nextflow's task metrics) from Debian's mirror, imported
# into podman; the host's dnabert binary and the bundled model on it (Dockerfile.prebuilt);
# then `dnabert embed` inside the image on the bundled mini genome.
#
#   containers/build_local.sh [BINARY]    default: target/release/dnabert (cargo build --release)
#
# Needs root (debootstrap) and Debian's podman, buildah and debootstrap packages. Tags
# localhost/debian-minbase:bookworm and localhost/dnabert:0.1.0 (the tag the Nextflow modules
# name: run them with -profile podman).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${1:-$repo/target/release/dnabert}")
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ! podman image exists localhost/debian-minbase:bookworm; then
  echo "== base: debootstrap --variant=minbase bookworm"
  debootstrap --variant=minbase --include=procps bookworm "$scratch/rootfs" "$mirror" >"$scratch/debootstrap.log"
  rm -rf "$scratch/rootfs/var/cache/apt/archives/"*.deb "$scratch/rootfs/var/lib/apt/lists/"*
  tar -C "$scratch/rootfs" -c . | podman import - localhost/debian-minbase:bookworm
  rm -rf "$scratch/rootfs"
fi
# Where podman's defaults cannot start a container (no CAP_SYS_RESOURCE, hybrid cgroups), the
# settings that work (podman-sandbox.conf); export them the same way for a Nextflow run after.
if ! podman run --rm localhost/debian-minbase:bookworm true 2>/dev/null; then
  export CONTAINERS_CONF="$repo/containers/podman-sandbox.conf"
  echo "podman's defaults cannot start a container here: CONTAINERS_CONF=$CONTAINERS_CONF"
  podman run --rm localhost/debian-minbase:bookworm true
fi

echo "== image: $bin on the base"
mkdir -p "$scratch/ctx/models"
cp "$bin" "$scratch/ctx/dnabert"
strip "$scratch/ctx/dnabert"
cp -r "$repo/models/dnabert6-chrx-4x256" "$scratch/ctx/models/"
podman build --quiet -f "$repo/containers/Dockerfile.prebuilt" \
  --build-arg REVISION="$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t localhost/dnabert:0.1.0 "$scratch/ctx"
podman image inspect localhost/dnabert:0.1.0 --format '{{json .Labels}}'

echo "== dnabert embed inside the image, on the bundled mini genome"
out="$scratch/out"
mkdir -p "$out"
chmod 777 "$out"
podman run --rm -v "$repo/tests/fixtures/mini-genome:/in:ro" -v "$out:/data" localhost/dnabert:0.1.0 \
  dnabert embed --model /opt/dnabert/models/dnabert6-chrx-4x256 --input /in/genome.fa \
  --output /data/genome --pooling mean --window-tokens 254 --quiet
"$bin" embed --model "$repo/models/dnabert6-chrx-4x256" --input "$repo/tests/fixtures/mini-genome/genome.fa" \
  --output "$scratch/host" --pooling mean --window-tokens 254 --quiet
cmp "$out/genome.npy" "$scratch/host.npy" && cmp "$out/genome.tsv" "$scratch/host.tsv"
echo "the image's embeddings equal the host's byte for byte ($(stat -c %s "$out/genome.npy") bytes)"

# The Nextflow test profile with the image (-profile test,podman), when Nextflow is on PATH
# (. .engines/env): the same embeddings as the host binary's own run of the profile.
if command -v nextflow >/dev/null; then
  echo "== nextflow run workflows/embed.nf -profile test,podman"
  (cd "$scratch" && NXF_OFFLINE=true NXF_ANSI_LOG=false nextflow run "$repo/workflows/embed.nf" \
    -profile test,podman --outdir in-podman -work-dir work-podman >podman.log)
  (cd "$scratch" && PATH="$(dirname "$bin"):$PATH" NXF_OFFLINE=true NXF_ANSI_LOG=false \
    nextflow run "$repo/workflows/embed.nf" -profile test --outdir on-host -work-dir work-host >host.log)
  grep -q "podman run" "$scratch"/work-podman/*/*/.command.run
  cmp "$scratch/in-podman/embeddings/genome.npy" "$scratch/on-host/embeddings/genome.npy"
  cmp "$scratch/in-podman/embeddings/genome.tsv" "$scratch/on-host/embeddings/genome.tsv"
  echo "the pipeline in the image equals the pipeline on the host"
fi
