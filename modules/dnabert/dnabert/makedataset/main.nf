process DNABERT_MAKEDATASET {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(fasta), path(annotation)
    path(plugin)

    output:
    tuple val(meta), path("${prefix}/train.tsv"), path("${prefix}/validation.tsv"), path("${prefix}/test.tsv"), emit: tables
    tuple val(meta), path("${prefix}/summary.json"), path("${prefix}/summary.md"), emit: summary
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}_dataset"
    """
    dnabert make-dataset \\
        --plugin $plugin \\
        --fasta $fasta \\
        --annotation $annotation \\
        --output $prefix \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_dataset"
    """
    mkdir -p $prefix
    for split in train validation test; do printf 'sequence\\tlabel\\n' > $prefix/\$split.tsv; done
    echo '{}' > $prefix/summary.json
    touch $prefix/summary.md
    """
}
