# What the rules share: the config, validated, and the paths every rule derives from it.
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


def genome(wildcards):
    return required("genome", "every target needs it")


def annotation(wildcards):
    return required("annotation", "the finetune and dataset targets need it")


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
    chunks_dir = checkpoints.split_fasta.get().output[0]
    chunks = sorted(glob_wildcards(os.path.join(chunks_dir, "{chunk}.fa")).chunk)
    return expand(
        f"{OUT}/embed_chunks/{ID}/{{chunk}}.{{ext}}", chunk=chunks, ext=["npy", "tsv"]
    )


def embed_select(wildcards, input):
    return (f"--select {input.select}" if input.select else "") + (
        f" --annotation {input.select_annotation}" if input.select_annotation else ""
    )


def optional(value):
    """A list of one path, or none: an input that may be left out."""
    return [value] if value else []
