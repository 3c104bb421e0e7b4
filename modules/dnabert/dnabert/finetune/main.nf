process DNABERT_FINETUNE {
    tag "$meta.id"
    label 'process_high'
    label 'process_gpu'

    container "${ workflow.containerEngine in ['singularity', 'apptainer'] ? 'dnabert-0.1.0.sif' : 'dnabert:0.1.0' }"

    input:
    tuple val(meta), path(train), path(validation), path(test)
    tuple val(meta2), path(model)
    path config

    output:
    tuple val(meta), path("${prefix}/model"), emit: model
    tuple val(meta), path("${prefix}/test_predictions.tsv"), emit: predictions
    tuple val(meta), path("${prefix}/metrics.json"), emit: metrics
    tuple val(meta), path("${prefix}/metrics.jsonl"), emit: curves
    tuple val("${task.process}"), val('dnabert'), eval("dnabert --version | sed 's/^dnabert //'"), emit: versions_dnabert, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def device = task.accelerator ? '--device cuda' : ''
    prefix = task.ext.prefix ?: "${meta.id}_finetune"
    """
    dnabert finetune \\
        $device \\
        --config $config \\
        --model $model \\
        --train $train \\
        --validation $validation \\
        --test $test \\
        --output $prefix \\
        --threads $task.cpus \\
        $args
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}_finetune"
    """
    mkdir -p $prefix/model
    touch $prefix/model/config.json $prefix/model/vocab.txt $prefix/model/model.safetensors
    printf 'id\\tlabel\\tpredicted\\n' > $prefix/test_predictions.tsv
    echo '{}' > $prefix/metrics.json
    touch $prefix/metrics.jsonl
    """
}
