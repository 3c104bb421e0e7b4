process DNABERT_DOWNLOAD {
    tag "$meta.id"
    label 'process_single'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), val(model)

    output:
    tuple val(meta), path("${prefix}"), emit: model
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    // The task's environment reaches dnabert: HF_TOKEN for a private model, HF_ENDPOINT,
    // HF_HOME / HF_HUB_CACHE for a shared cache. The token is never printed.
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    dnabert download \\
        $model \\
        --output $prefix \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p $prefix
    touch $prefix/config.json $prefix/vocab.txt $prefix/model.safetensors
    """
}
