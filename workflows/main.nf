#!/usr/bin/env nextflow
/*
 * The three workflows as one pipeline, one step per run:
 *
 *   nextflow run workflows -profile test                          # --step embed (the default)
 *   nextflow run workflows -profile test --step pretrain
 *   nextflow run workflows --step finetune --input samplesheet.csv --outdir results
 *   nextflow run workflows --help
 *
 * Parameters are checked against nextflow_schema.json before any task starts.
 */
nextflow.enable.dsl = 2
// The modules emit their versions to the `versions` topic (nf-core's convention): a preview
// in Nextflow 24.04-24.10, on by default from 25.04.
nextflow.preview.topic = true

include { EMBED        } from './embed'
include { PRETRAIN     } from './pretrain'
include { FINETUNE     } from './finetune'
include { MODEL        } from './lib/model'
include { inputGenomes } from './lib/samplesheet'
include { startRun; requireParams; collectVersions } from './lib/utils'

workflow {
    startRun('workflows')
    requireParams(['outdir'])
    if (params.step == 'pretrain') {
        init_model = Channel.value([[id: 'none'], []])
        if (params.init_model) {
            MODEL(Channel.value(params.init_model))
            init_model = MODEL.out.model
        }
        PRETRAIN(inputGenomes(false), init_model)
    } else {
        requireParams(['model'])
        MODEL(Channel.value(params.model))
        if (params.step == 'finetune') {
            FINETUNE(inputGenomes(true), MODEL.out.model)
        } else {
            EMBED(inputGenomes(false), MODEL.out.model)
        }
    }
    collectVersions()
}
