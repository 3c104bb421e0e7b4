# A Hugging Face Hub model (config model: ORG/NAME[@REVISION]) fetched into a plain folder,
# once, before the rules that read it. HF_TOKEN (private models), HF_ENDPOINT and HF_HOME come
# from the environment; the token is never printed.

if HUB_MODEL:

    rule download_model:
        output:
            directory(MODEL),
        log:
            f"{OUT}/logs/download_model.log",
        # Where Snakemake runs: compute nodes often have no network.
        localrule: True
        params:
            dnabert=config["dnabert"],
            model=MODEL_NAME,
        shell:
            "{params.dnabert} download {params.model} --output {output} 2> {log}"
