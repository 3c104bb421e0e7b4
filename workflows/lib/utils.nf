/*
 * Small helpers shared by the workflows.
 */
include { validateParameters; paramsHelp } from './schema'

// What every workflow does first: --help (the parameters from nextflow_schema.json, then
// exit), else every parameter checked against the schema, before any task starts.
def startRun(String command) {
    def schema = "${projectDir}/nextflow_schema.json"
    if (params.help) {
        log.info paramsHelp(schema, "nextflow run ${command} [-profile test|slurm|gpu|docker|apptainer] [--PARAMETER VALUE ...]")
        System.exit(0)
    }
    validateParameters(schema)
}


// Stops the run, before any task starts, when a parameter the workflow needs is missing.
def requireParams(List names) {
    def missing = names.findAll { params[it] == null || params[it] == '' }
    if (missing) {
        error "Missing parameter(s): ${missing.collect { '--' + it }.join(', ')}. " +
            "Try -profile test for the bundled data, or --help."
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
