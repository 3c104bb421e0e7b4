#!/usr/bin/env nextflow
/*
 * Embed genomes with a DNABERT model, one task per chunk:
 *   split-fasta (scatter) -> embed (per chunk) -> gather-embeddings (one .npy + .tsv per genome)
 *   -> report.
 *
 *   nextflow run workflows/embed.nf -profile test
 *   nextflow run workflows/embed.nf --genome genome.fa.gz --model models/dnabert6-chrx-4x256 --outdir results
 *   nextflow run workflows/embed.nf --input samplesheet.csv --model zhihan1996/DNA_bert_6 --outdir results
 *
 * Also the `embed` step of workflows/main.nf (nextflow run workflows --step embed).
 */
nextflow.enable.dsl = 2
// The modules emit their versions to the `versions` topic (nf-core's convention): a preview
// in Nextflow 24.04-24.10, on by default from 25.04.
nextflow.preview.topic = true

include { DNABERT_SPLITFASTA       } from '../modules/dnabert/dnabert/splitfasta/main'
include { DNABERT_EMBED            } from '../modules/dnabert/dnabert/embed/main'
include { DNABERT_GATHEREMBEDDINGS } from '../modules/dnabert/dnabert/gatherembeddings/main'
include { DNABERT_REPORT           } from '../modules/dnabert/dnabert/report/main'
include { MODEL                    } from './lib/model'
include { inputGenomes             } from './lib/samplesheet'
include { startRun; requireParams; collectVersions } from './lib/utils'

workflow EMBED {
    take:
    genomes // channel: [ meta, genome, annotation or [] ]
    model   // value channel: [ meta, folder ]

    main:
    DNABERT_SPLITFASTA(genomes.map { m, genome, annotation -> [m, genome] })

    // A chunk task is named by its chunk (its outputs must be, for gather-embeddings) and
    // carries its genome's id, by which the parts are grouped back.
    chunks = DNABERT_SPLITFASTA.out.chunks.flatMap { m, files ->
        (files instanceof List ? files : [files]).collect { f -> [[id: f.baseName, genome: m.id], f] }
    }
    def selector = params.select ? file(params.select, checkIfExists: true) : []
    def select_annotation = params.select_annotation ? file(params.select_annotation, checkIfExists: true) : []
    DNABERT_EMBED(chunks, model, selector, select_annotation)

    parts = DNABERT_EMBED.out.embeddings
        .map { m, npy, tsv -> [m.genome, [npy, tsv]] }
        .groupTuple()
        .map { genome, pairs -> [genome, pairs.flatten().sort { a, b -> a.name <=> b.name }] }
    DNABERT_GATHEREMBEDDINGS(
        DNABERT_SPLITFASTA.out.manifest
            .map { m, manifest -> [m.id, m, manifest] }
            .join(parts)
            .map { id, m, manifest, files -> [m, manifest, files] }
    )
    // Rows, norms and a 2-D projection coloured by record, as HTML and for MultiQC.
    DNABERT_REPORT(DNABERT_GATHEREMBEDDINGS.out.embeddings.map { m, npy, tsv -> [m + [stage: 'embed'], [], [], [npy, tsv]] })

    emit:
    embeddings = DNABERT_GATHEREMBEDDINGS.out.embeddings // [ meta, npy, tsv ]
}

workflow {
    startRun('workflows/embed.nf')
    requireParams(['model', 'outdir'])
    MODEL(Channel.value(params.model))
    EMBED(inputGenomes(false), MODEL.out.model)
    collectVersions()
}
