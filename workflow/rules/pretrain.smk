# Masked-language-model pretraining over the genome. The run folder keeps its checkpoint when
# a job is killed (only model/ and metrics.jsonl are declared outputs), and `resume: true`
# continues from it, so a rerun loses at most `checkpoint_every` steps.


rule pretrain_model:
    input:
        genome=genome,
        config=run_config("pretrain", "pretrain.yaml"),
    output:
        model=directory(f"{OUT}/pretrain/{{sample}}/model"),
        metrics=report(
            f"{OUT}/pretrain/{{sample}}/metrics.jsonl",
            caption="../report/pretrain.rst",
            category="Pretraining",
        ),
    log:
        f"{OUT}/logs/pretrain.{{sample}}.log",
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=config["pretrain"]["mem_mb"],
        runtime=config["pretrain"]["runtime"],
    params:
        dnabert=config["dnabert"],
        run=lambda wc, output: os.path.dirname(output.metrics),
        init=(
            f"--init-from {config['pretrain']['init_model']}"
            if config["pretrain"].get("init_model")
            else ""
        ),
        resume="--resume-if-possible" if config["pretrain"]["resume"] else "--overwrite",
    shell:
        "{params.dnabert} pretrain --config {input.config} --fasta {input.genome}"
        " --output {params.run} --threads {threads} {params.init} {params.resume} > {log} 2>&1"


rule pretrain_report:
    input:
        metrics=rules.pretrain_model.output.metrics,
    output:
        html=report(
            f"{OUT}/report/{{sample}}_pretrain/report.html",
            caption="../report/dnabert_report.rst",
            category="Pretraining",
        ),
    log:
        f"{OUT}/logs/pretrain_report.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        run=lambda wc, input: os.path.dirname(input.metrics),
        dir=lambda wc, output: os.path.dirname(output.html),
        title=lambda wc: f"DNABERT pretrain: {wc.sample}",
    shell:
        "{params.dnabert} report {params.run} --output {params.dir}"
        " --title '{params.title}' > {log} 2>&1"


rule pretrain:
    input:
        each(rules.pretrain_model.output.model),
        each(rules.pretrain_report.output),
