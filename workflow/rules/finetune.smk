# Splice sites from the genome and its annotation -> fine-tune -> the seed's donor/acceptor table.


rule splice_sites:
    input:
        genome=genome,
        annotation=annotation,
    output:
        train=f"{OUT}/splice_sites/{{sample}}/train.tsv",
        validation=f"{OUT}/splice_sites/{{sample}}/validation.tsv",
        test=f"{OUT}/splice_sites/{{sample}}/test.tsv",
        summary=f"{OUT}/splice_sites/{{sample}}/summary.json",
    log:
        f"{OUT}/logs/splice_sites.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        dir=lambda wc, output: os.path.dirname(output.summary),
        window=config["finetune"]["splice_window"],
        max_per_class=config["finetune"]["max_per_class"],
    shell:
        "{params.dnabert} splice-sites --fasta {input.genome} --annotation {input.annotation}"
        " --output {params.dir} --window {params.window} --max-per-class {params.max_per_class}"
        " 2> {log}"


rule finetune_model:
    input:
        train=rules.splice_sites.output.train,
        validation=rules.splice_sites.output.validation,
        test=rules.splice_sites.output.test,
        model=MODEL,
        config=run_config("finetune", "finetune-splice.yaml"),
    output:
        model=directory(f"{OUT}/finetune/{{sample}}/model"),
        predictions=f"{OUT}/finetune/{{sample}}/test_predictions.tsv",
        metrics=report(
            f"{OUT}/finetune/{{sample}}/metrics.json",
            caption="../report/finetune.rst",
            category="Splice sites",
        ),
    log:
        f"{OUT}/logs/finetune.{{sample}}.log",
    threads: config["finetune"]["threads"]
    resources:
        mem_mb=config["finetune"]["mem_mb"],
        runtime=config["finetune"]["runtime"],
    params:
        dnabert=config["dnabert"],
        run=lambda wc, output: os.path.dirname(output.metrics),
    shell:
        "{params.dnabert} finetune --config {input.config} --model {input.model}"
        " --train {input.train} --validation {input.validation} --test {input.test}"
        " --output {params.run} --threads {threads} > {log} 2>&1"


rule splice_report:
    input:
        predictions=rules.finetune_model.output.predictions,
        train=rules.splice_sites.output.train,
        test=rules.splice_sites.output.test,
    output:
        json=f"{OUT}/finetune/{{sample}}_splice_report.json",
        md=report(
            f"{OUT}/finetune/{{sample}}_splice_report.md",
            caption="../report/splice.rst",
            category="Splice sites",
        ),
    log:
        f"{OUT}/logs/splice_report.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        prefix=lambda wc, output: output.json.removesuffix(".json"),
    shell:
        "{params.dnabert} splice-report --predictions {input.predictions}"
        " --train {input.train} --test {input.test} --output {params.prefix} > {log} 2>&1"


rule finetune_report:
    input:
        metrics=rules.finetune_model.output.metrics,
        splice=rules.splice_report.output.json,
    output:
        html=report(
            f"{OUT}/report/{{sample}}_finetune/report.html",
            caption="../report/dnabert_report.rst",
            category="Splice sites",
        ),
    log:
        f"{OUT}/logs/finetune_report.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        run=lambda wc, input: os.path.dirname(input.metrics),
        dir=lambda wc, output: os.path.dirname(output.html),
        title=lambda wc: f"DNABERT finetune: {wc.sample}",
    shell:
        "{params.dnabert} report {params.run} {input.splice} --output {params.dir}"
        " --title '{params.title}' > {log} 2>&1"


rule finetune:
    input:
        each(rules.splice_report.output),
        each(rules.finetune_report.output),
