# Scatter a genome into chunks, embed each chunk as its own job, gather one .npy + .tsv.


checkpoint split_fasta:
    input:
        genome=config["genome"],
    output:
        directory(f"{OUT}/chunks/{ID}"),
    params:
        chunk_bases=config["embed"]["chunk_bases"],
    log:
        f"{OUT}/logs/split_fasta.{ID}.log",
    shell:
        "{DNABERT} split-fasta --input {input.genome} --output {output}"
        " --chunk-bases {params.chunk_bases} > {log} 2>&1"


rule embed_chunk:
    input:
        fasta=f"{OUT}/chunks/{ID}/{{chunk}}.fa",
        model=MODEL,
        select=[config["embed"]["select"]] if config["embed"].get("select") else [],
        select_annotation=(
            [config["embed"]["select_annotation"]]
            if config["embed"].get("select_annotation")
            else []
        ),
    output:
        npy=f"{OUT}/embed_chunks/{ID}/{{chunk}}.npy",
        tsv=f"{OUT}/embed_chunks/{ID}/{{chunk}}.tsv",
    params:
        prefix=lambda wc, output: output.npy[: -len(".npy")],
        select=lambda wc, input: (
            (f"--select {input.select}" if input.select else "")
            + (f" --annotation {input.select_annotation}" if input.select_annotation else "")
        ),
        args=" ".join(
            [f"--pooling {config['embed']['pooling']}"]
            + (
                [f"--window-tokens {config['embed']['window_tokens']}"]
                if config["embed"].get("window_tokens")
                else []
            )
            + [config["embed"]["extra_args"]]
        ),
    threads: config["embed"]["threads"]
    resources:
        mem_mb=config["embed"]["mem_mb"],
        runtime=config["embed"]["runtime"],
    log:
        f"{OUT}/logs/embed.{ID}.{{chunk}}.log",
    shell:
        "{DNABERT} embed --model {input.model} --input {input.fasta} --output {params.prefix}"
        " --threads {threads} {params.select} {params.args} > {log} 2>&1"


def embed_parts(wildcards):
    chunks_dir = checkpoints.split_fasta.get().output[0]
    chunks = sorted(glob_wildcards(os.path.join(chunks_dir, "{chunk}.fa")).chunk)
    return expand(f"{OUT}/embed_chunks/{ID}/{{chunk}}.{{ext}}", chunk=chunks, ext=["npy", "tsv"])


rule gather_embeddings:
    input:
        chunks=f"{OUT}/chunks/{ID}",
        parts=embed_parts,
    output:
        npy=f"{OUT}/embeddings/{ID}.npy",
        tsv=f"{OUT}/embeddings/{ID}.tsv",
    params:
        prefix=f"{OUT}/embeddings/{ID}",
    log:
        f"{OUT}/logs/gather_embeddings.{ID}.log",
    shell:
        "{DNABERT} gather-embeddings --manifest {input.chunks}/manifest.tsv"
        " --output {params.prefix} {input.parts} > {log} 2>&1"


rule embed:
    input:
        f"{OUT}/embeddings/{ID}.npy",
        f"{OUT}/embeddings/{ID}.tsv",
