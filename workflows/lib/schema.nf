/*
 * Parameters checked against nextflow_schema.json before any task starts, and --help made from
 * it: what nf-core's nf-schema plugin does (validateParameters(), paramsHelp()). The plugin is
 * not on Maven Central (nor any registry these machines reach), and Nextflow fetches plugins
 * from its own registry at run time, which a cluster without network cannot; so the checks the
 * schema states are done here, in plain Groovy: unknown parameters (with the nearest known
 * name), types, enums, minimums, patterns, files that must exist.
 */
import groovy.json.JsonSlurper

// name -> [group: the group's title, prop: the property's schema], in the schema's order.
def schemaParams(String path) {
    def schema = new JsonSlurper().parse(new File(path))
    def out = [:]
    schema['$defs'].each { group, defn ->
        defn.properties.each { name, prop -> out[name] = [group: defn.title ?: group, prop: prop, hidden: prop.hidden ?: false] }
    }
    out
}

def editDistance(String a, String b) {
    def d = (0..b.length()).collect { it }
    for (int i = 1; i <= a.length(); i++) {
        def prev = d[0]
        d[0] = i
        for (int j = 1; j <= b.length(); j++) {
            def keep = d[j]
            d[j] = [d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)].min()
            prev = keep
        }
    }
    d[b.length()]
}

// The known name a mistyped one most likely meant: the same letters without - and _ (a
// --chunk-bases for --chunk_bases), else the closest within two edits.
def nearest(String name, Collection known) {
    def squash = { String s -> s.toLowerCase().replaceAll(/[-_]/, '') }
    def same = known.find { squash(it) == squash(name) }
    if (same) return same
    def best = known.min { editDistance(name, it) }
    best != null && editDistance(name, best) <= 2 ? best : null
}

// Why `value` does not fit `prop`, or null when it does.
def problemWith(String name, value, Map prop) {
    def type = prop.type
    if (value instanceof Boolean && type != 'boolean') {
        return "needs a value (--${name} <${type}>)"
    }
    switch (type) {
        case 'integer':
            if (!(value instanceof Integer || value instanceof Long || (value instanceof String && value ==~ /-?\d+/))) {
                return "'${value}' is not an integer"
            }
            break
        case 'number':
            if (!(value instanceof Number || (value instanceof String && value.isNumber()))) {
                return "'${value}' is not a number"
            }
            break
        case 'boolean':
            if (!(value instanceof Boolean || value.toString() in ['true', 'false'])) {
                return "'${value}' is not true or false"
            }
            break
    }
    def text = value.toString()
    if (prop.enum && !(text in prop.enum.collect { it.toString() })) {
        return "'${text}' is not one of ${prop.enum.join(', ')}"
    }
    if (prop.minimum != null && text.isNumber() && (text as BigDecimal) < (prop.minimum as BigDecimal)) {
        return "${text} is below the minimum ${prop.minimum}"
    }
    if (prop.pattern && !(text =~ prop.pattern).find()) {
        return "'${text}' does not match ${prop.pattern}"
    }
    if (prop.exists && prop.format in ['file-path', 'directory-path', 'path'] && !text.contains('://') && !file(text).exists()) {
        return "${text} does not exist"
    }
    null
}

// Stops the run, before any task starts, listing every parameter that the schema refuses.
def validateParameters(String schemaPath) {
    def known = schemaParams(schemaPath)
    def problems = []
    params.each { name, value ->
        if (!known.containsKey(name)) {
            def guess = nearest(name, known.keySet())
            problems << "--${name}: not a parameter of these workflows" + (guess ? " (did you mean --${guess}?)" : '')
        } else if (value != null && value != '') {
            def why = problemWith(name, value, known[name].prop)
            if (why) problems << "--${name}: ${why}"
        }
    }
    if (problems) {
        error "Parameters refused (${schemaPath}; nextflow run workflows --help lists them all):\n  " + problems.join('\n  ')
    }
}

// --help: every parameter of the schema by group, with its type, default and description.
def paramsHelp(String schemaPath, String usage) {
    def known = schemaParams(schemaPath)
    def width = known.keySet()*.length().max() + 2
    def lines = ["Usage: ${usage}", '']
    known.groupBy { it.value.group }.each { group, entries ->
        lines << group
        entries.each { name, p ->
            if (p.hidden) return
            def type = p.prop.enum ? p.prop.enum.join('|') : p.prop.type
            // The value this run would use (the config's and profile's), not only the schema's.
            def now = name == 'help' ? null : params[name]
            def deflt = now != null ? " [now: ${now}]" : ''
            lines << "  --${name.padRight(width)} ${type.padRight(14)} ${p.prop.description ?: ''}${deflt}"
        }
        lines << ''
    }
    lines.join('\n')
}
