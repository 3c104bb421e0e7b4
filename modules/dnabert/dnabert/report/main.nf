process DNABERT_REPORT {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    // Each run's files staged as one folder, so that the report finds them side by side:
    // pretrain: [metrics.jsonl]; finetune: [metrics.json, metrics.jsonl, model]; either may be
    // []. Others: splice-report JSONs, embed outputs (the .npy with its .tsv).
    tuple val(meta), path(pretrain, stageAs: 'pretrain/*'), path(finetune, stageAs: 'finetune/*'), path(others, stageAs: 'others/*')

    output:
    tuple val(meta), path("${prefix}/report.html"), emit: html
    tuple val(meta), path("${prefix}/*.svg"), emit: svg, optional: true
    path("${prefix}/*_mqc.json"), emit: multiqc, optional: true
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}_report"
    // An embed output is named by its .npy (its .tsv is staged beside it).
    def named = (pretrain ? ['pretrain'] : []) + (finetune ? ['finetune'] : []) +
        (others instanceof List ? others : [others]).collect { it.toString() }.findAll { it && !it.endsWith('.tsv') }
    """
    dnabert report \\
        ${named.join(' ')} \\
        --output $prefix \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_report"
    """
    mkdir -p ${prefix}
    touch ${prefix}/report.html
    """
}
