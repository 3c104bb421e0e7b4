#!/usr/bin/env nextflow
/*
 * Splice-site prediction: build donor / acceptor / neither windows from a genome and its GFF3 or
 * GTF annotation, fine-tune a DNABERT model on them, score the test split with the seed's
 * donor and acceptor tables, and report. With a sample sheet, one dataset and model per genome.
 *
 *   nextflow run workflows/finetune.nf -profile test
 *   nextflow run workflows/finetune.nf --genome genome.fa.gz --annotation genes.gff3 \
 *       --model models/dnabert6-chrx-4x256 --finetune_config my.yaml --outdir results
 *
 * Also the `finetune` step of workflows/main.nf.
 */
nextflow.enable.dsl = 2
// The modules emit their versions to the `versions` topic (nf-core's convention): a preview
// in Nextflow 24.04-24.10, on by default from 25.04.
nextflow.preview.topic = true

include { DNABERT_SPLICESITES  } from '../modules/dnabert/dnabert/splicesites/main'
include { DNABERT_FINETUNE     } from '../modules/dnabert/dnabert/finetune/main'
include { DNABERT_SPLICEREPORT } from '../modules/dnabert/dnabert/splicereport/main'
include { DNABERT_REPORT       } from '../modules/dnabert/dnabert/report/main'
include { MODEL                } from './lib/model'
include { inputGenomes         } from './lib/samplesheet'
include { startRun; requireParams; collectVersions } from './lib/utils'

workflow FINETUNE {
    take:
    genomes // channel: [ meta, genome, annotation ]
    model   // value channel: [ meta, folder ]

    main:
    DNABERT_SPLICESITES(genomes)
    DNABERT_FINETUNE(
        DNABERT_SPLICESITES.out.tables,
        model,
        file(params.finetune_config, checkIfExists: true)
    )
    // The report puts the GT/AG rule and a PWM (learnt on train) beside the model, on test.
    DNABERT_SPLICEREPORT(
        DNABERT_FINETUNE.out.predictions
            .join(DNABERT_SPLICESITES.out.tables)
            .map { m, predictions, train, validation, test -> [m, predictions, train, test] }
    )
    // Curves, the test confusion matrix and the splice tables as HTML and for MultiQC.
    DNABERT_REPORT(
        DNABERT_FINETUNE.out.metrics
            .join(DNABERT_FINETUNE.out.curves)
            .join(DNABERT_FINETUNE.out.model)
            .join(DNABERT_SPLICEREPORT.out.report)
            .map { m, metrics, curves, folder, json, md -> [m + [stage: 'finetune'], [], [metrics, curves, folder], [json]] }
    )

    emit:
    model = DNABERT_FINETUNE.out.model // [ meta, folder ]
}

workflow {
    startRun('workflows/finetune.nf')
    requireParams(['model', 'finetune_config', 'outdir'])
    MODEL(Channel.value(params.model))
    FINETUNE(inputGenomes(true), MODEL.out.model)
    collectVersions()
}
