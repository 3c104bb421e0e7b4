#!/usr/bin/env bash
# `nf-core modules lint --all` over modules/, by hand (not in CI: nf-core's tooling reads
# nf-core/modules' meta-schema.json from a clone of that GitHub repository, and CI reaches
# only the package registries).
#
#   tests/engines/nf_core_lint.sh NF_CORE_MODULES    a checkout (or bare clone) of nf-core/modules
#
# nf-core tools 4.2.1 comes from PyPI into a scratch venv. The linter's "local clone" of
# nf-core/modules is stood up offline from the checkout's modules/meta-schema.json alone
# (in a scratch XDG_CONFIG_HOME, with -N: no pull), and the modules are linted in a scratch copy
# of this repository's modules/, .nf-core.yml and tests/config/. The linter runs
# `nextflow inspect` to resolve each module's container and wants Nextflow >= 25.04.4 for it:
# that release comes from Maven Central into the scratch folder (nextflow-inspect-pom.xml says
# why it is not the pipelines' 24.10.0). Needs Maven and a JDK. Exit status: the linter's.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
upstream=${1:?usage: $0 NF_CORE_MODULES (a checkout of github.com/nf-core/modules)}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

python3 -m venv "$scratch/venv"
"$repo/tests/engines/nextflow_launcher.sh" "$repo/tests/engines/nextflow-inspect-pom.xml" "$scratch/nextflow"
export PATH="$scratch/nextflow/bin:$PATH"
"$scratch/venv/bin/pip" install --quiet --disable-pip-version-check nf-core==4.2.1

# The linter's cache of nf-core/modules: one commit holding the meta-schema (and the
# .nf-core.yml every modules repository has), tracking origin.
export XDG_CONFIG_HOME="$scratch/config"
clone="$XDG_CONFIG_HOME/nfcore/nf-core/modules"
mkdir -p "$clone/modules"
git -C "$upstream" show HEAD:modules/meta-schema.json >"$clone/modules/meta-schema.json"
printf 'repository_type: modules\norg_path: nf-core\n' >"$clone/.nf-core.yml"
git -C "$clone" init -q -b master
git -C "$clone" remote add origin https://github.com/nf-core/modules.git
git -C "$clone" add -A
git -C "$clone" -c user.email=lint@localhost -c user.name=lint commit -qm "meta-schema of $(git -C "$upstream" rev-parse --short HEAD)"
git -C "$clone" update-ref refs/remotes/origin/master HEAD
git -C "$clone" branch -q --set-upstream-to=origin/master master

# The modules as a repository of their own (the linter wants a git work tree).
work="$scratch/modules-repo"
mkdir -p "$work/tests"
cp -r "$repo/modules" "$repo/.nf-core.yml" "$work/"
cp -r "$repo/tests/config" "$work/tests/"
git -C "$work" init -q
git -C "$work" add -A
git -C "$work" -c user.email=lint@localhost -c user.name=lint commit -qm modules
cd "$work"
COLUMNS=200 "$scratch/venv/bin/nf-core" modules -N lint --all --dir .
