process DNABERT_PREDICT {
    tag "$meta.id"
    label 'process_medium'
    label 'process_gpu'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(input)
    tuple val(meta2), path(model)

    output:
    tuple val(meta), path("${prefix}.predictions.tsv"), emit: predictions
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def device = task.accelerator ? '--device cuda' : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    dnabert predict \\
        $device \\
        --model $model \\
        --input $input \\
        --output ${prefix}.predictions.tsv \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    printf 'id\\tstart\\tend\\tpredicted\\n' > ${prefix}.predictions.tsv
    """
}
