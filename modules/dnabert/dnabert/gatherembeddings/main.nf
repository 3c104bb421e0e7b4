process DNABERT_GATHEREMBEDDINGS {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(manifest), path(parts, stageAs: 'parts/*')

    output:
    tuple val(meta), path("${prefix}.npy"), path("${prefix}.tsv"), emit: embeddings
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    dnabert gather-embeddings \\
        --manifest $manifest \\
        --output $prefix \\
        $args \\
        $parts
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.npy
    printf 'seq_id\\tstart\\tend\\trow\\n' > ${prefix}.tsv
    """
}
