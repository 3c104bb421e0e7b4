process DNABERT_SPLICEREPORT {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(predictions), path(train), path(test)

    output:
    tuple val(meta), path("${prefix}.json"), path("${prefix}.md"), emit: report
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}_splice_report"
    """
    dnabert splice-report \\
        --predictions $predictions \\
        --train $train \\
        --test $test \\
        --output $prefix \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_splice_report"
    """
    echo '{}' > ${prefix}.json
    touch ${prefix}.md
    """
}
