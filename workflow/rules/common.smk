# What the rules share: the config, validated, and the paths every rule derives from it.
import csv
import os
import re

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

OUT = config["outdir"]
ID = config["id"]


def bundled(path):
    """A file of this repository (the bundled run configs), wherever Snakemake runs."""
    return workflow.source_path(f"../../{path}")


def required(key, who):
    """config[key], a path `who` need(s), or an error that says how to give it. Called from
    input functions, so only the targets that need the path ask for it."""
    value = config.get(key)
    if not value:
        raise WorkflowError(
            f"config `{key}` is not set, and {who}: "
            f"--config {key}=PATH, or set it in config/config.yaml"
        )
    return value


def read_samples(path):
    """The genomes of a sample sheet: CSV id,genome[,annotation], one genome per row, paths
    relative to the sheet (the Nextflow pipeline's --input, read the same way). Every problem
    is named with the sheet's line, before any job starts."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise WorkflowError(f"config `samples`: cannot read {path}: {e.strerror}")
    if not rows:
        raise WorkflowError(
            f"{path}: empty sample sheet (header id,genome[,annotation] and a row per genome)"
        )
    header = [c.strip() for c in rows[0]]
    if not {"id", "genome"} <= set(header) or set(header) - {
        "id",
        "genome",
        "annotation",
    }:
        raise WorkflowError(
            f"{path}:1: the header must be id,genome[,annotation], not '{','.join(rows[0])}'"
        )
    base = os.path.dirname(os.path.abspath(path))
    samples = {}
    for i, cells in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise WorkflowError(
                f"{path}:{i}: {len(cells)} fields, the header has {len(header)}"
            )
        row = dict(zip(header, (c.strip() for c in cells)))
        sample = row["id"]
        if not re.fullmatch(r"[A-Za-z0-9._-]+", sample):
            raise WorkflowError(
                f"{path}:{i}: id '{sample}' must be letters, digits, '.', '_' or '-' "
                "(it names the outputs)"
            )
        if sample in samples:
            raise WorkflowError(
                f"{path}:{i}: id '{sample}' is also on line {samples[sample]['line']}"
            )
        entry = {"line": i, "where": f"{path}:{i}"}
        for kind in ("genome", "annotation"):
            value = row.get(kind, "")
            if not value:
                if kind == "genome":
                    raise WorkflowError(f"{path}:{i}: no genome")
                entry[kind] = None
                continue
            full = os.path.join(base, value)  # an absolute value stays as it is
            if not os.path.exists(full):
                raise WorkflowError(f"{path}:{i}: {kind} {value} does not exist")
            entry[kind] = full
        samples[sample] = entry
    if not samples:
        raise WorkflowError(f"{path}: no rows under the header")
    return samples


# The genomes the targets run on: the sample sheet's rows, or config `genome` as `id`.
SAMPLES = (
    read_samples(config["samples"])
    if config.get("samples")
    else {ID: {"genome": None, "annotation": None, "where": None}}
)


wildcard_constraints:
    sample="|".join(re.escape(s) for s in SAMPLES),


def each(pattern):
    """`pattern` (a rule's output, with {sample}) for every sample."""
    return expand(pattern, sample=list(SAMPLES))


def genome(wildcards):
    sample = SAMPLES[wildcards.sample]
    if sample["where"]:
        return sample["genome"]
    return required("genome", "every target needs it")


def annotation(wildcards):
    sample = SAMPLES[wildcards.sample]
    if not sample["where"]:
        return required("annotation", "the finetune and dataset targets need it")
    if not sample["annotation"]:
        raise WorkflowError(
            f"{sample['where']}: sample '{wildcards.sample}' has no annotation, and the "
            "finetune and dataset targets need one"
        )
    return sample["annotation"]


def dataset_plugin(wildcards):
    plugin = config["dataset"].get("plugin")
    if not plugin:
        raise WorkflowError(
            "config `dataset.plugin` is not set; the dataset target needs a task plugin "
            "(.wasm or .wat, docs/plugins.md): set it in config/config.yaml"
        )
    return plugin


def run_config(stage, asset):
    """The stage's run config: config[stage].config, or the bundled one."""
    return config[stage].get("config") or bundled(f"workflows/assets/{asset}")


# The model: a local folder as it is, or a Hub id fetched once by rule download_model.
# The bundled model is a folder, which source_path does not take: found beside workflow/.
BUNDLED_MODEL = os.path.normpath(
    os.path.join(workflow.basedir, os.pardir, "models", "dnabert6-chrx-4x256")
)
MODEL_NAME = config.get("model") or BUNDLED_MODEL
HUB_MODEL = not os.path.isdir(MODEL_NAME)
MODEL = (
    # ORG/NAME@REV -> ORG--NAME-REV (the "[/]" spares the linter a false absolute path).
    f"{OUT}/models/{re.sub('[/]', '--', MODEL_NAME).replace('@', '-')}"
    if HUB_MODEL
    else MODEL_NAME
)


def embed_parts(wildcards):
    """The per-chunk outputs, once split_fasta has said which chunks there are."""
    chunks_dir = checkpoints.split_fasta.get(sample=wildcards.sample).output[0]
    chunks = sorted(glob_wildcards(os.path.join(chunks_dir, "{chunk}.fa")).chunk)
    return expand(
        f"{OUT}/embed_chunks/{wildcards.sample}/{{chunk}}.{{ext}}",
        chunk=chunks,
        ext=["npy", "tsv"],
    )


def embed_select(wildcards, input):
    return (f"--select {input.select}" if input.select else "") + (
        f" --annotation {input.select_annotation}" if input.select_annotation else ""
    )


def optional(value):
    """A list of one path, or none: an input that may be left out."""
    return [value] if value else []
