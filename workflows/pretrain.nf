#!/usr/bin/env nextflow
/*
 * Masked-language-model pretraining over a genome (DNABERT's k-mer span masking), then the
 * training curves' report. With a sample sheet, one model per genome.
 *
 *   nextflow run workflows/pretrain.nf -profile test
 *   nextflow run workflows/pretrain.nf --genome genome.fa.gz --pretrain_config my.yaml --outdir results
 *
 * The YAML config holds the model shape, masking and training settings (see
 * workflows/assets/pretrain-test.yaml); the genome and run folder come from here. Also the
 * `pretrain` step of workflows/main.nf.
 */
nextflow.enable.dsl = 2
// The modules emit their versions to the `versions` topic (nf-core's convention): a preview
// in Nextflow 24.04-24.10, on by default from 25.04.
nextflow.preview.topic = true

include { DNABERT_PRETRAIN } from '../modules/dnabert/dnabert/pretrain/main'
include { DNABERT_REPORT   } from '../modules/dnabert/dnabert/report/main'
include { MODEL            } from './lib/model'
include { inputGenomes     } from './lib/samplesheet'
include { startRun; requireParams; collectVersions } from './lib/utils'

workflow PRETRAIN {
    take:
    genomes    // channel: [ meta, genome, annotation or [] ]
    init_model // value channel: [ meta, folder ], or [ [id: 'none'], [] ] for fresh weights

    main:
    DNABERT_PRETRAIN(
        genomes.map { m, genome, annotation -> [m, genome] },
        file(params.pretrain_config, checkIfExists: true),
        init_model
    )
    // Training curves (loss, masked accuracy, learning rate, tokens/s) as HTML and for MultiQC.
    DNABERT_REPORT(DNABERT_PRETRAIN.out.metrics.map { m, metrics -> [m + [stage: 'pretrain'], metrics, [], []] })

    emit:
    model = DNABERT_PRETRAIN.out.model // [ meta, folder ]
}

workflow {
    startRun('workflows/pretrain.nf')
    requireParams(['pretrain_config', 'outdir'])
    // --init_model: a folder or a Hub id to continue from; none: a fresh model.
    init_model = Channel.value([[id: 'none'], []])
    if (params.init_model) {
        MODEL(Channel.value(params.init_model))
        init_model = MODEL.out.model
    }
    PRETRAIN(inputGenomes(false), init_model)
    collectVersions()
}
