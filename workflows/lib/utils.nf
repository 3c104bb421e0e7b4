/*
 * Small helpers shared by the workflows.
 */

// Stops the run, before any task starts, when a parameter the workflow needs is missing.
def requireParams(List names) {
    def missing = names.findAll { params[it] == null || params[it] == '' }
    if (missing) {
        error "Missing parameter(s): ${missing.collect { '--' + it }.join(', ')}. " +
            "Try -profile test for the bundled data, or see nextflow_schema.json."
    }
}

// One versions.yml for the run, as nf-core pipelines publish it.
workflow collectVersions {
    take:
    versions

    main:
    versions
        .unique()
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true)
}
