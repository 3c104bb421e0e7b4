# Masked-language-model pretraining over the genome. The run folder keeps its checkpoint when
# a job is killed (only model/ and metrics.jsonl are declared outputs), and `resume: true`
# continues from it, so a rerun loses at most `checkpoint_every` steps.


rule pretrain_model:
    input:
        genome=config["genome"],
        config=config["pretrain"]["config"],
    output:
        model=directory(f"{OUT}/pretrain/{ID}/model"),
        metrics=f"{OUT}/pretrain/{ID}/metrics.jsonl",
    params:
        run=f"{OUT}/pretrain/{ID}",
        init=(
            f"--init-from {config['pretrain']['init_model']}"
            if config["pretrain"].get("init_model")
            else ""
        ),
        resume="--resume-if-possible" if config["pretrain"]["resume"] else "--overwrite",
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=config["pretrain"]["mem_mb"],
        runtime=config["pretrain"]["runtime"],
    log:
        f"{OUT}/logs/pretrain.{ID}.log",
    shell:
        "{DNABERT} pretrain --config {input.config} --fasta {input.genome} --output {params.run}"
        " --threads {threads} {params.init} {params.resume} > {log} 2>&1"


rule pretrain:
    input:
        f"{OUT}/pretrain/{ID}/model",
