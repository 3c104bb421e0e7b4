#!/usr/bin/env bash
# Resolves a Nextflow release and its dependencies from Maven Central into a classpath and
# writes a launcher that starts it with `java nextflow.cli.Launcher` on the machine's JDK
# (never downloading at run time: NXF_OFFLINE). Used by install.sh (the pipelines' Nextflow,
# nextflow-pom.xml) and nf_core_lint.sh (the linter's, nextflow-inspect-pom.xml).
#
#   tests/engines/nextflow_launcher.sh POM DIR     -> DIR/nextflow.classpath, DIR/bin/nextflow
set -euo pipefail
pom=${1:?usage: $0 POM DIR}
dir=$(realpath -m "${2:?usage: $0 POM DIR}")
mkdir -p "$dir/bin"
mvn --batch-mode --quiet -f "$pom" \
  dependency:build-classpath -Dmdep.outputFile="$dir/nextflow.classpath"
cat > "$dir/bin/nextflow" <<LAUNCHER
#!/bin/sh
# Nextflow from Maven Central's jars (tests/engines/nextflow_launcher.sh); never downloads at run time.
# The JVM flags are those of Nextflow's own launcher: Groovy and Kryo reach into java.base.
export NXF_OFFLINE=\${NXF_OFFLINE:-true}
opens=""
for p in java.lang java.io java.nio java.net java.util java.util.concurrent.locks \\
    java.util.concurrent.atomic java.util.regex java.util.stream sun.nio.ch sun.nio.fs \\
    sun.net.www.protocol.http sun.net.www.protocol.https sun.net.www.protocol.ftp \\
    sun.net.www.protocol.file jdk.internal.misc jdk.internal.vm; do
  opens="\$opens --add-opens=java.base/\$p=ALL-UNNAMED"
done
exec java -Dfile.encoding=UTF-8 -XX:+TieredCompilation -XX:TieredStopAtLevel=1 \\
  \${NXF_JVM_OPTS:--Xms128m -Xmx1g} \$opens \\
  -cp "\$(cat "$dir/nextflow.classpath")" nextflow.cli.Launcher "\$@"
LAUNCHER
chmod +x "$dir/bin/nextflow"
