/*
 * The genomes a run works on, as [meta, genome, annotation or []]: the rows of --input (a CSV
 * sample sheet, nf-core style) or the single --genome / --annotation. Every problem is named
 * with the sheet's line before any task starts.
 *
 *   id,genome,annotation
 *   human_chrX,data/chrX.fa.gz,data/chrX.gff3
 *   mouse_chr1,https://example.org/mm39_chr1.fa.gz,
 */

def readSamplesheet(String path, boolean needAnnotation) {
    def sheet = file(path, checkIfExists: true)
    def lines = sheet.readLines()
    def where = { int i -> "${path}:${i + 1}" }
    if (!lines) error "${path}: empty sample sheet (header id,genome[,annotation] and a row per genome)"
    def header = lines[0].split(',', -1)*.trim()
    def unknown = header - ['id', 'genome', 'annotation']
    if (!('id' in header) || !('genome' in header) || unknown) {
        error "${where(0)}: the header must be id,genome[,annotation], not '${lines[0]}'"
    }
    def rows = []
    def seen = [:]
    lines.eachWithIndex { line, i ->
        if (i == 0 || !line.trim()) return
        def cells = line.split(',', -1)*.trim()
        if (cells.size() != header.size()) {
            error "${where(i)}: ${cells.size()} fields, the header has ${header.size()}"
        }
        def row = [header, cells].transpose().collectEntries()
        if (!(row.id ==~ /[A-Za-z0-9._-]+/)) {
            error "${where(i)}: id '${row.id}' must be letters, digits, '.', '_' or '-' (it names the outputs)"
        }
        if (seen[row.id]) error "${where(i)}: id '${row.id}' is also on line ${seen[row.id]}"
        seen[row.id] = i + 1
        def existing = { String kind, String p ->
            if (!p) return []
            // Relative paths are relative to the sheet, as nf-core pipelines read them.
            def f = p.contains('://') || p.startsWith('/') ? file(p) : sheet.parent.resolve(p)
            if (!p.contains('://') && !f.exists()) error "${where(i)}: ${kind} ${p} does not exist"
            f
        }
        def genome = existing('genome', row.genome)
        if (!genome) error "${where(i)}: no genome"
        def annotation = existing('annotation', row.annotation ?: '')
        if (needAnnotation && !annotation) error "${where(i)}: no annotation (this workflow needs one per genome)"
        rows << [[id: row.id], genome, annotation]
    }
    if (!rows) error "${path}: no rows under the header"
    rows
}

// --input's rows, or the one genome of --genome (with --annotation, --id).
def inputGenomes(boolean needAnnotation) {
    if (params.input) {
        // A profile may set --genome (-profile test does): the sheet wins, and says so.
        if (params.genome) log.warn "--input ${params.input} lists the genomes: --genome ${params.genome} is not used"
        return Channel.fromList(readSamplesheet(params.input, needAnnotation))
    }
    if (!params.genome) error "Missing parameter: --genome (or --input with a sample sheet). Try -profile test for the bundled data."
    if (needAnnotation && !params.annotation) error "Missing parameter: --annotation (the genome's GFF3 or GTF)"
    def genome = file(params.genome, checkIfExists: true)
    def annotation = needAnnotation ? file(params.annotation, checkIfExists: true) : []
    Channel.of([[id: params.id ?: genome.simpleName], genome, annotation])
}
