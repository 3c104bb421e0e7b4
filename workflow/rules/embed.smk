# Scatter each genome into chunks, embed each chunk as its own job, gather one .npy + .tsv per
# genome (each sample of config `samples`, or config `genome` as `id`).


checkpoint split_fasta:
    input:
        genome=genome,
    output:
        directory(f"{OUT}/chunks/{{sample}}"),
    log:
        f"{OUT}/logs/split_fasta.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        chunk_bases=config["embed"]["chunk_bases"],
    shell:
        "{params.dnabert} split-fasta --input {input.genome} --output {output}"
        " --chunk-bases {params.chunk_bases} > {log} 2>&1"


rule embed_chunk:
    input:
        fasta=f"{OUT}/chunks/{{sample}}/{{chunk}}.fa",
        model=MODEL,
        select=optional(config["embed"].get("select")),
        select_annotation=optional(config["embed"].get("select_annotation")),
    output:
        npy=f"{OUT}/embed_chunks/{{sample}}/{{chunk}}.npy",
        tsv=f"{OUT}/embed_chunks/{{sample}}/{{chunk}}.tsv",
    log:
        f"{OUT}/logs/embed.{{sample}}.{{chunk}}.log",
    threads: config["embed"]["threads"]
    resources:
        mem_mb=config["embed"]["mem_mb"],
        runtime=config["embed"]["runtime"],
    params:
        dnabert=config["dnabert"],
        prefix=lambda wc, output: output.npy.removesuffix(".npy"),
        select=embed_select,
        args=" ".join(
            [f"--pooling {config['embed']['pooling']}"]
            + (
                [f"--window-tokens {config['embed']['window_tokens']}"]
                if config["embed"].get("window_tokens")
                else []
            )
            + [config["embed"]["extra_args"]]
        ),
    shell:
        "{params.dnabert} embed --model {input.model} --input {input.fasta}"
        " --output {params.prefix} --threads {threads} {params.select} {params.args}"
        " > {log} 2>&1"


rule gather_embeddings:
    input:
        chunks=f"{OUT}/chunks/{{sample}}",
        parts=embed_parts,
    output:
        npy=f"{OUT}/embeddings/{{sample}}.npy",
        tsv=report(
            f"{OUT}/embeddings/{{sample}}.tsv",
            caption="../report/embeddings.rst",
            category="Embeddings",
        ),
    log:
        f"{OUT}/logs/gather_embeddings.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        prefix=lambda wc, output: output.npy.removesuffix(".npy"),
    shell:
        "{params.dnabert} gather-embeddings --manifest {input.chunks}/manifest.tsv"
        " --output {params.prefix} {input.parts} > {log} 2>&1"


rule embed_report:
    input:
        npy=rules.gather_embeddings.output.npy,
        tsv=rules.gather_embeddings.output.tsv,
    output:
        html=report(
            f"{OUT}/report/{{sample}}_embed/report.html",
            caption="../report/dnabert_report.rst",
            category="Embeddings",
        ),
    log:
        f"{OUT}/logs/embed_report.{{sample}}.log",
    params:
        dnabert=config["dnabert"],
        dir=lambda wc, output: os.path.dirname(output.html),
        title=lambda wc: f"DNABERT embed: {wc.sample}",
    shell:
        "{params.dnabert} report {input.npy} --output {params.dir}"
        " --title '{params.title}' > {log} 2>&1"


rule embed:
    input:
        each(rules.gather_embeddings.output),
        each(rules.embed_report.output),
