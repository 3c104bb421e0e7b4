process DNABERT_PRETRAIN {
    tag "$meta.id"
    label 'process_high'
    label 'process_gpu'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(fasta)
    path config
    tuple val(meta2), path(init_model)

    output:
    tuple val(meta), path("${prefix}/model"), emit: model
    tuple val(meta), path("${prefix}/metrics.jsonl"), emit: metrics
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def device = task.accelerator ? '--device cuda' : ''
    prefix = task.ext.prefix ?: "${meta.id}_pretrain"
    def init = init_model ? "--init-from $init_model" : ''
    def genomes = fasta instanceof List ? fasta.join(',') : fasta
    """
    dnabert pretrain \\
        $device \\
        --config $config \\
        --fasta $genomes \\
        --output $prefix \\
        --threads $task.cpus \\
        $init \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_pretrain"
    """
    mkdir -p $prefix/model
    touch $prefix/model/config.json $prefix/model/vocab.txt $prefix/model/model.safetensors $prefix/metrics.jsonl
    """
}
