//! A lint of the pipeline files, no engine needed: nf-core's module conventions (each module's
//! meta.yml documents exactly its inputs and outputs; tag, one standard resource label,
//! container, task.ext.args, versions to the `versions` topic through `eval`, the GPU through
//! task.accelerator, a stub), the workflows' includes, and the container
//! recipes (sources that exist; hadolint where installed, which CI requires).

use std::path::{Path, PathBuf};

use crate::pipelines::*;
use serde_yaml::Value;

/// The block of a process between `name:` and the next section (or the closing brace).
fn section<'a>(src: &'a str, name: &str) -> Vec<&'a str> {
    let sections = [
        "input:", "output:", "when:", "script:", "stub:", "exec:", "shell:",
    ];
    src.lines()
        .skip_while(|l| l.trim() != name)
        .skip(1)
        .take_while(|l| !sections.contains(&l.trim()) && l.trim() != "}")
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with("//"))
        .collect()
}

/// Channel element names of a `tuple val(a), path(b)` / `path x` / `val(x)` declaration.
fn names(decl: &str) -> Vec<String> {
    let decl = decl.split(", emit:").next().unwrap().trim();
    let decl = decl.strip_prefix("tuple ").unwrap_or(decl);
    let mut out = vec![];
    let mut rest = decl;
    while let Some(i) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        rest = &rest[i..];
        let (kind, after) = rest.split_at(rest.find(['(', ' ']).unwrap_or(rest.len()));
        assert!(
            matches!(kind, "val" | "path" | "env" | "eval"),
            "cannot read '{decl}'"
        );
        let after = after.trim_start();
        let (inner, next) = if let Some(a) = after.strip_prefix('(') {
            let close = a.find(')').unwrap_or_else(|| panic!("no ')' in '{decl}'"));
            (&a[..close], &a[close + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let name = inner.split(',').next().unwrap().trim();
        // The outer quotes only: an eval command keeps the quotes inside it.
        let name = ['"', '\'']
            .iter()
            .find_map(|q| name.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(name);
        out.push(name.to_owned());
        rest = next.trim_start_matches([',', ' ']);
    }
    out
}

fn emit(decl: &str) -> Option<String> {
    // `emit: NAME` or `emit: NAME, topic: TOPIC`.
    decl.split("emit:")
        .nth(1)
        .map(|e| e.split(',').next().unwrap_or(e).trim().to_owned())
}

/// The name of one meta.yml channel element: a single-key map with a type and a description.
fn yaml_name(element: &Value) -> String {
    let map = element.as_mapping().expect("each element a map");
    assert_eq!(map.len(), 1);
    let (k, v) = map.iter().next().unwrap();
    for key in ["type", "description"] {
        assert!(v.get(key).is_some(), "{k:?} has no {key}");
    }
    k.as_str().unwrap().to_owned()
}

/// The names of a meta.yml channel: a list of single-key maps.
fn yaml_names(channel: &Value) -> Vec<String> {
    channel
        .as_sequence()
        .unwrap_or_else(|| panic!("a channel must be a list: {channel:?}"))
        .iter()
        .map(yaml_name)
        .collect()
}

fn module_problems(dir: &Path) -> Vec<String> {
    let mut bad = vec![];
    let name = dir.file_name().unwrap().to_str().unwrap();
    let src = std::fs::read_to_string(dir.join("main.nf")).unwrap();
    let Ok(meta) = std::fs::read_to_string(dir.join("meta.yml")) else {
        return vec![format!("{name}: no meta.yml")];
    };
    let meta: Value = serde_yaml::from_str(&meta).unwrap();

    let process = format!("process DNABERT_{} {{", name.to_uppercase());
    for (needle, what) in [
        (process.as_str(), "a process named after its folder"),
        ("tag \"$meta.id\"", "tag \"$meta.id\""),
        ("label 'process_", "a resource label"),
        ("container \"", "a container"),
        ("task.ext.args", "task.ext.args"),
        ("task.ext.when", "when: task.ext.when"),
        (
            "eval(\"dnabert --version | sed 's/^dnabert //'\"), emit: versions_dnabert, topic: versions",
            "versions emitted to the `versions` topic through eval",
        ),
        ("stub:", "a stub: block"),
    ] {
        if !src.contains(needle) {
            bad.push(format!("{name}: main.nf has no {what}"));
        }
    }
    if src.contains("versions.yml") {
        bad.push(format!(
            "{name}: writes a versions.yml (nf-core's legacy form; the topic replaces it)"
        ));
    }
    // nf-core lint's check_process_labels: exactly one of its standard labels.
    const STANDARD: [&str; 7] = [
        "process_single",
        "process_low",
        "process_medium",
        "process_high",
        "process_long",
        "process_low_memory",
        "process_high_memory",
    ];
    let standard = STANDARD
        .iter()
        .filter(|l| src.contains(&format!("label '{l}'")))
        .count();
    if standard != 1 {
        bad.push(format!(
            "{name}: {standard} standard resource labels, not one"
        ));
    }
    if src.contains("label 'process_gpu'") != src.contains("task.accelerator ?") {
        bad.push(format!(
            "{name}: a process_gpu module chooses the GPU by task.accelerator (and only it)"
        ));
    }
    if meta["name"].as_str() != Some(&format!("dnabert_{name}")) {
        bad.push(format!("{name}: meta.yml name is {:?}", meta["name"]));
    }
    for key in ["description", "keywords", "tools", "authors", "maintainers"] {
        if meta.get(key).is_none() {
            bad.push(format!("{name}: meta.yml has no {key}"));
        }
    }
    // nf-core's meta-schema: a tool's link fields, where present, are URLs (a field that
    // cannot be one is left out; homepage or doi satisfies the schema's "one of").
    for tool in meta["tools"].as_sequence().into_iter().flatten() {
        for (tool_name, fields) in tool.as_mapping().into_iter().flatten() {
            for link in ["homepage", "documentation", "tool_dev_url"] {
                if let Some(v) = fields.get(link) {
                    let url = v.as_str().unwrap_or("");
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        bad.push(format!(
                            "{name}: meta.yml tools.{}.{link} is not a URL: {url:?}",
                            tool_name.as_str().unwrap_or("?")
                        ));
                    }
                }
            }
        }
    }

    // As nf-core's correct_meta_inputs reads them: a tuple is a list of its elements, a plain
    // input one element on its own (a single-key map, not a list of one).
    let inputs: Vec<(bool, Vec<String>)> = section(&src, "input:")
        .iter()
        .map(|d| (d.trim_start().starts_with("tuple"), names(d)))
        .collect();
    let meta_inputs: Vec<(bool, Vec<String>)> = meta["input"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|c| {
                    if c.is_sequence() {
                        (true, yaml_names(c))
                    } else {
                        (false, vec![yaml_name(c)])
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if inputs != meta_inputs {
        bad.push(format!(
            "{name}: inputs {inputs:?} but meta.yml documents {meta_inputs:?}"
        ));
    }

    let outputs: Vec<(String, Vec<String>)> = section(&src, "output:")
        .iter()
        .map(|d| {
            (
                emit(d).unwrap_or_else(|| format!("(no emit: {d})")),
                names(d),
            )
        })
        .collect();
    let meta_outputs: Vec<(String, Vec<String>)> = meta["output"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let channel = v.as_sequence().unwrap();
                    // A tuple channel is one list of elements; a plain path is one element.
                    let elements = match &channel[..] {
                        [one] if one.is_sequence() => yaml_names(one),
                        _ => yaml_names(v),
                    };
                    (k.as_str().unwrap().to_owned(), elements)
                })
                .collect()
        })
        .unwrap_or_default();
    if outputs != meta_outputs {
        bad.push(format!(
            "{name}: outputs {outputs:?} but meta.yml documents {meta_outputs:?}"
        ));
    }
    let topic = meta["topics"]["versions"]
        .as_sequence()
        .and_then(|t| t.first())
        .map(yaml_names);
    let versions = outputs
        .iter()
        .find(|(e, _)| e == "versions_dnabert")
        .map(|(_, n)| n.clone());
    if topic.is_none() || topic != versions {
        bad.push(format!(
            "{name}: meta.yml topics.versions {topic:?} is not the versions output {versions:?}"
        ));
    }
    bad
}

fn modules() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("modules/dnabert/dnabert"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("main.nf").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn every_subcommand_has_a_module_and_every_module_follows_nf_core_conventions() {
    let mods = modules();
    let found: Vec<&str> = mods
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    // The subcommands that are not pipeline steps: tools for a person at a terminal.
    const NOT_STEPS: [&str; 6] = [
        "export-onnx",
        "convert",
        "init",
        "cuda-check",
        "vocab",
        "config-reference",
    ];
    let subcommands = dnabert::cli::subcommands();
    for s in NOT_STEPS {
        assert!(subcommands.iter().any(|c| c == s), "{s} is no subcommand");
    }
    for sub in subcommands
        .iter()
        .filter(|s| !NOT_STEPS.contains(&s.as_str()))
    {
        let module = sub.replace('-', "");
        assert!(
            found.contains(&module.as_str()),
            "subcommand {sub} has no module modules/dnabert/dnabert/{module}: {found:?}"
        );
    }
    let problems: Vec<String> = mods.iter().flat_map(|m| module_problems(m)).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_lint_catches_a_meta_yml_that_does_not_match_its_module() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("embed");
    std::fs::create_dir(&module).unwrap();
    let src = repo().join("modules/dnabert/dnabert/embed");
    std::fs::copy(src.join("main.nf"), module.join("main.nf")).unwrap();
    let meta = std::fs::read_to_string(src.join("meta.yml")).unwrap();
    // Each variant of the meta.yml must be flagged with a problem that mentions `what`.
    let flagged = |variant: &str, what: &str| {
        std::fs::write(module.join("meta.yml"), variant).unwrap();
        let problems = module_problems(&module);
        assert!(
            problems.iter().any(|p| p.contains(what)),
            "{what}: {problems:?}"
        );
    };
    flagged(&meta.replace("- fasta:", "- genome:"), "inputs");
    flagged(&meta.replace("  embeddings:", "  vectors:"), "outputs");
    // A plain input written as a tuple of one (what nf-core's linter rejects).
    let mut as_tuple: Value = serde_yaml::from_str(&meta).unwrap();
    let inputs = as_tuple["input"].as_sequence_mut().unwrap();
    let plain = inputs.iter().position(|c| !c.is_sequence()).unwrap();
    inputs[plain] = Value::Sequence(vec![inputs[plain].clone()]);
    flagged(&serde_yaml::to_string(&as_tuple).unwrap(), "inputs");
    flagged(
        &meta.replace(
            "    homepage: https://",
            "    documentation: README.md of this repository\n    homepage: https://",
        ),
        "documentation is not a URL",
    );
    std::fs::write(module.join("meta.yml"), &meta).unwrap();
    let main = std::fs::read_to_string(module.join("main.nf")).unwrap();
    let cut = main.find("    stub:").unwrap();
    std::fs::write(module.join("main.nf"), format!("{}}}\n", &main[..cut])).unwrap();
    let problems = module_problems(&module);
    assert!(problems.iter().any(|p| p.contains("stub")), "{problems:?}");
}

#[test]
fn workflows_include_modules_and_rules_that_exist() {
    let wf = repo().join("workflows");
    for script in ["embed.nf", "pretrain.nf", "finetune.nf"] {
        let src = std::fs::read_to_string(wf.join(script)).unwrap();
        let includes: Vec<&str> = src
            .lines()
            .filter_map(|l| l.trim().strip_prefix("include {"))
            .map(|l| l.split('\'').nth(1).unwrap())
            .collect();
        assert!(!includes.is_empty(), "{script} includes nothing");
        for inc in includes {
            let path = wf.join(format!("{inc}.nf"));
            assert!(path.exists(), "{script}: {} does not exist", path.display());
        }
    }
    // Every parameter the workflows read is declared in nextflow_schema.json.
    let schema = std::fs::read_to_string(wf.join("nextflow_schema.json")).unwrap();
    let config = std::fs::read_to_string(wf.join("nextflow.config")).unwrap();
    let params: Vec<&str> = config
        .lines()
        .skip_while(|l| l.trim() != "params {")
        .take_while(|l| l.trim() != "}")
        .filter_map(|l| l.trim().split_once('=').map(|(k, _)| k.trim()))
        .collect();
    assert!(params.len() > 8);
    for p in params {
        assert!(
            schema.contains(&format!("\"{p}\"")),
            "params.{p} is not in nextflow_schema.json"
        );
    }
}

#[test]
fn container_recipes_copy_files_that_exist_and_pass_hadolint() {
    let c = repo().join("containers");
    for file in ["Dockerfile", "Dockerfile.cuda"] {
        let src = std::fs::read_to_string(c.join(file)).unwrap();
        assert!(
            src.matches("\nFROM ").count() >= 2,
            "{file}: not multi-stage"
        );
        for l in src
            .lines()
            .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
        {
            let words: Vec<&str> = l.split_whitespace().collect();
            for source in &words[1..words.len() - 1] {
                assert!(
                    repo().join(source).exists(),
                    "{file}: COPY {source}: no such path"
                );
            }
        }
    }
    let def = std::fs::read_to_string(c.join("dnabert.def")).unwrap();
    let stages: Vec<&str> = def
        .lines()
        .filter_map(|l| l.strip_prefix("Stage: "))
        .collect();
    assert_eq!(stages, ["build", "final"]);
    assert_eq!(def.matches("Bootstrap: docker").count(), 2);
    for l in def.lines().filter_map(|l| l.strip_prefix("%files from ")) {
        assert!(stages.contains(&l.trim()), "%files from {l}: no such stage");
    }
    let mut in_files = false;
    for l in def.lines() {
        if l.starts_with('%') {
            in_files = l.trim() == "%files";
        } else if in_files && !l.trim().is_empty() {
            let source = l.split_whitespace().next().unwrap();
            assert!(
                repo().join(source).exists(),
                "dnabert.def: %files {source}: no such path"
            );
        }
    }
    for section in ["%post", "%runscript", "%test", "%labels", "%help"] {
        assert!(def.contains(section), "dnabert.def has no {section}");
    }

    let Some(hadolint) = engine("hadolint") else {
        return;
    };
    run(std::process::Command::new(hadolint).current_dir(&c).args([
        "--config",
        ".hadolint.yaml",
        "Dockerfile",
        "Dockerfile.cuda",
        "Dockerfile.prebuilt",
    ]));
}
