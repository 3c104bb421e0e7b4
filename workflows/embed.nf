#!/usr/bin/env nextflow
/*
 * Embed a genome with a DNABERT model, one task per chunk:
 *   split-fasta (scatter) -> embed (per chunk) -> gather-embeddings (one .npy + .tsv).
 *
 *   nextflow run workflows/embed.nf -profile test
 *   nextflow run workflows/embed.nf --genome genome.fa.gz --model models/dnabert6-chrx-4x256 --outdir results
 *   nextflow run workflows/embed.nf --genome genome.fa.gz --model zhihan1996/DNA_bert_6 --outdir results
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
include { requireParams; collectVersions } from './lib/utils'

workflow {
    requireParams(['genome', 'model', 'outdir'])
    def genome = file(params.genome, checkIfExists: true)
    def meta   = [id: params.id ?: genome.simpleName]
    MODEL(Channel.value(params.model))

    DNABERT_SPLITFASTA(Channel.of([meta, genome]))

    chunks = DNABERT_SPLITFASTA.out.chunks.flatMap { m, files ->
        (files instanceof List ? files : [files]).collect { f -> [[id: f.baseName, genome: m.id], f] }
    }
    def selector = params.select ? file(params.select, checkIfExists: true) : []
    def select_annotation = params.select_annotation ? file(params.select_annotation, checkIfExists: true) : []
    DNABERT_EMBED(chunks, MODEL.out.model, selector, select_annotation)

    parts = DNABERT_EMBED.out.embeddings
        .flatMap { m, npy, tsv -> [npy, tsv] }
        .collect(sort: { a, b -> a.name <=> b.name })
        .map { files -> [files] }
    DNABERT_GATHEREMBEDDINGS(DNABERT_SPLITFASTA.out.manifest.combine(parts))
    // Rows, norms and a 2-D projection coloured by record, as HTML and for MultiQC.
    DNABERT_REPORT(DNABERT_GATHEREMBEDDINGS.out.embeddings.map { m, npy, tsv -> [m + [stage: 'embed'], [], [], [npy, tsv]] })

    collectVersions()
}
