process DNABERT_SPLITFASTA {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(fasta)

    output:
    tuple val(meta), path("${prefix}/chunk_*.fa"), emit: chunks
    tuple val(meta), path("${prefix}/manifest.tsv"), emit: manifest
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}_chunks"
    """
    dnabert split-fasta \\
        --input $fasta \\
        --output $prefix \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_chunks"
    """
    mkdir -p $prefix
    touch $prefix/chunk_00001.fa
    printf 'chunk\\tpiece_id\\tseq_id\\toffset\\tlength\\n' > $prefix/manifest.tsv
    """
}
