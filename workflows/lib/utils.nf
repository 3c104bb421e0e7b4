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

// One software_versions.yml for the run, as nf-core pipelines publish it, from the `versions`
// topic every module emits to: each process once (its chunks' tasks report the same tool and
// version), so the file is a YAML map with unique keys.
workflow collectVersions {
    main:
    channel.topic('versions')
        .unique()
        .map { process, tool, version -> "${process}:\n    ${tool}: ${version}\n" }
        .collectFile(name: 'software_versions.yml', storeDir: "${params.outdir}/pipeline_info", sort: true)
}
