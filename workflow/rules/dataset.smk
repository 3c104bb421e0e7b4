# A fine-tuning dataset from the genome, its annotation and a task plugin (docs/plugins.md).


rule make_dataset:
    input:
        genome=genome,
        annotation=annotation,
        plugin=dataset_plugin,
    output:
        train=f"{OUT}/dataset/{ID}/train.tsv",
        validation=f"{OUT}/dataset/{ID}/validation.tsv",
        test=f"{OUT}/dataset/{ID}/test.tsv",
        summary=f"{OUT}/dataset/{ID}/summary.json",
    log:
        f"{OUT}/logs/make_dataset.{ID}.log",
    params:
        dnabert=config["dnabert"],
        dir=lambda wc, output: os.path.dirname(output.summary),
        args=" ".join(
            [f"--config {kv}" for kv in config["dataset"]["config"]]
            + [config["dataset"]["extra_args"]]
        ),
    shell:
        "{params.dnabert} make-dataset --fasta {input.genome} --annotation {input.annotation}"
        " --plugin {input.plugin} --output {params.dir} {params.args} > {log} 2>&1"


rule dataset:
    input:
        rules.make_dataset.output,
