# A fine-tuning dataset from the genome, its annotation and a task plugin (docs/plugins.md).


rule make_dataset:
    input:
        genome=genome,
        annotation=annotation,
        plugin=dataset_plugin,
    output:
        train=f"{OUT}/dataset/{{sample}}/train.tsv",
        validation=f"{OUT}/dataset/{{sample}}/validation.tsv",
        test=f"{OUT}/dataset/{{sample}}/test.tsv",
        summary=f"{OUT}/dataset/{{sample}}/summary.json",
    log:
        f"{OUT}/logs/make_dataset.{{sample}}.log",
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
        each(rules.make_dataset.output),
