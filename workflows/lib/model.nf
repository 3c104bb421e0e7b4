/*
 * The model a workflow runs: a local folder as it is, or a Hugging Face Hub id (ORG/NAME or
 * ORG/NAME@REVISION, as transformers names models) fetched by DNABERT_DOWNLOAD into a plain
 * folder that every later task stages. A folder of that name wins, as in transformers.
 */
include { DNABERT_DOWNLOAD } from '../../modules/dnabert/dnabert/download/main'

workflow MODEL {
    take:
    source // channel: val(folder or Hub id)

    main:
    sources = source.branch { m ->
        local: file(m).exists()
            return [[id: file(m).name], file(m)]
        hub: true
            return [[id: m.replace('/', '--').replace('@', '-')], m]
    }
    DNABERT_DOWNLOAD(sources.hub)

    emit:
    model = sources.local.mix(DNABERT_DOWNLOAD.out.model).first() // [ meta, folder ]
}
