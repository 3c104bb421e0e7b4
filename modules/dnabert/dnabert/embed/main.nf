process DNABERT_EMBED {
    tag "$meta.id"
    label 'process_medium'
    label 'process_gpu'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(fasta)
    tuple val(meta2), path(model)
    path(selector)
    path(select_annotation)

    output:
    tuple val(meta), path("${prefix}.npy"), path("${prefix}.tsv"), emit: embeddings
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def device = task.accelerator ? '--device cuda' : ''
    def select = selector ? "--select $selector" : ''
    def select_ann = select_annotation ? "--annotation $select_annotation" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    dnabert embed \\
        $device \\
        --model $model \\
        --input $fasta \\
        --output $prefix \\
        --threads $task.cpus \\
        $select \\
        $select_ann \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.npy
    printf 'seq_id\\tstart\\tend\\trow\\n' > ${prefix}.tsv
    """
}
