//! The workflows on real engines, local executor: Nextflow (`-profile test`, `-stub-run`, and an
//! interrupted run continued with `-resume`) and Snakemake (every target), with the model as a
//! folder and as a Hugging Face Hub id (served by the stand-in). Each must produce the same bytes
//! as the steps run by hand (`pipelines::by_hand`).

use crate::common::standin;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pipelines::*;

#[test]
fn gathered_chunks_equal_a_single_embed_run_for_records_that_were_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    dnabert(&[
        "embed",
        "--model",
        repo().join("models/dnabert6-chrx-4x256").to_str().unwrap(),
        "--input",
        repo()
            .join("tests/fixtures/mini-genome/genome.fa")
            .to_str()
            .unwrap(),
        "--output",
        whole.to_str().unwrap(),
        "--pooling",
        "mean",
        "--window-tokens",
        "254",
        "--threads",
        "2",
        "--quiet",
    ]);
    let rows = |prefix: &Path, id: &str| -> (Vec<String>, Vec<u8>) {
        let tsv = std::fs::read_to_string(prefix.with_extension("tsv")).unwrap();
        let npy = std::fs::read(prefix.with_extension("npy")).unwrap();
        let (_, cols, at) = dnabert::npy::read_header(&prefix.with_extension("npy")).unwrap();
        let mut lines = vec![];
        let mut bytes = vec![];
        for l in tsv
            .lines()
            .skip(1)
            .filter(|l| l.starts_with(&format!("{id}\t")))
        {
            let f: Vec<&str> = l.split('\t').collect();
            lines.push(format!("{}\t{}\t{}", f[0], f[1], f[2]));
            let row: usize = f[3].parse().unwrap();
            let start = at as usize + row * cols * 4;
            bytes.extend_from_slice(&npy[start..start + cols * 4]);
        }
        (lines, bytes)
    };
    let gathered = by_hand().join("embeddings/genome");
    // chrM (6 kb) shares a chunk with chr2's last piece and is not cut: exactly as in one run.
    let (g, w) = (rows(&gathered, "chrM"), rows(&whole, "chrM"));
    assert!(!g.0.is_empty());
    assert_eq!(g, w);
    // chr1 (40 kb) is cut in two at 20 kb: the same windows, but none spans the cut.
    let (g1, w1) = (rows(&gathered, "chr1"), rows(&whole, "chr1"));
    assert!(g1.0.iter().all(|l| {
        let f: Vec<u64> = l.split('\t').skip(1).map(|x| x.parse().unwrap()).collect();
        f[1] <= 20_000 || f[0] >= 20_000
    }));
    assert_ne!(g1.0, w1.0);
}

#[test]
fn nextflow_stub_runs_every_workflow() {
    let Some(nf) = engine("nextflow") else { return };
    let dir = tempfile::tempdir().unwrap();
    for wf in ["embed", "pretrain", "finetune"] {
        run(&mut nextflow(dir.path(), &nf, wf, "test", &["-stub-run"]));
    }
    for f in [
        "embeddings/genome.npy",
        "pretrain/genome/model/config.json",
        "finetune/genome_splice_report.md",
        "pipeline_info/software_versions.yml",
        "report/genome_embed/report.html",
        "report/genome_pretrain/report.html",
        "report/genome_finetune/report.html",
    ] {
        assert!(
            dir.path().join("out").join(f).exists(),
            "stub run left no {f}"
        );
    }
}

/// Parameters are checked against nextflow_schema.json before any task starts: a typo and a
/// wrong value both named (with the name meant), from a workflow script and from main.nf;
/// --help lists the schema's parameters and exits; main.nf runs each --step.
#[test]
fn nextflow_checks_parameters_before_any_task_and_main_nf_runs_each_step() {
    let Some(nf) = engine("nextflow") else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = run_failing(&mut nextflow(
        dir.path(),
        &nf,
        "embed",
        "test",
        &["--pooling", "avg", "--chunkbases", "5000"],
    ));
    assert!(
        text.contains("--pooling: 'avg' is not one of none, cls, mean"),
        "{text}"
    );
    assert!(
        text.contains(
            "--chunkbases: not a parameter of these workflows (did you mean --chunk_bases?)"
        ),
        "{text}"
    );
    assert!(!text.contains("Submitted process"), "{text}");
    let tasks = std::fs::read_dir(dir.path().join("work"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tasks, 0, "a task ran");
    let text = run_failing(&mut nextflow(
        dir.path(),
        &nf,
        "",
        "test",
        &["--step", "train"],
    ));
    assert!(
        text.contains("--step: 'train' is not one of embed, pretrain, finetune"),
        "{text}"
    );
    let help = run(&mut nextflow(dir.path(), &nf, "", "test", &["--help"]));
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: nextflow run workflows"), "{help}");
    for p in [
        "--step",
        "--input",
        "--chunk_bases",
        "--finetune_config",
        "--slurm_queue",
    ] {
        assert!(
            help.contains(&format!("  {p} ")),
            "--help has no {p}:\n{help}"
        );
    }
    assert!(!help.contains("Submitted process"), "{help}");
    for step in ["embed", "pretrain", "finetune"] {
        let out = run(&mut nextflow(
            dir.path(),
            &nf,
            "",
            "test",
            &["--step", step, "-stub-run"],
        ));
        let log = String::from_utf8_lossy(&out.stdout);
        let first = match step {
            "embed" => "EMBED:DNABERT_SPLITFASTA",
            "pretrain" => "PRETRAIN:DNABERT_PRETRAIN",
            _ => "FINETUNE:DNABERT_SPLICESITES",
        };
        assert!(log.contains(first), "--step {step}: {log}");
        assert!(dir
            .path()
            .join(format!("out/report/genome_{step}/report.html"))
            .exists());
    }
}

/// `dir/sheets/samples.csv`: the mini genome twice, as alpha (a copy beside the sheet, by a
/// relative path) and beta (by its absolute path), neither with an annotation.
fn two_genome_sheet(dir: &Path) -> PathBuf {
    let genome = repo().join("tests/fixtures/mini-genome/genome.fa");
    let sheets = dir.join("sheets");
    std::fs::create_dir_all(&sheets).unwrap();
    std::fs::copy(&genome, sheets.join("g.fa")).unwrap();
    let sheet = sheets.join("samples.csv");
    std::fs::write(
        &sheet,
        format!(
            "id,genome,annotation\nalpha,g.fa,\nbeta,{},\n",
            genome.display()
        ),
    )
    .unwrap();
    sheet
}

/// A sample sheet embeds each of its genomes in one run (paths relative to the sheet or
/// absolute), each as a single `embed` of it would; a bad sheet is named with its line.
#[test]
fn nextflow_sample_sheet_embeds_every_genome() {
    let Some(nf) = engine("nextflow") else { return };
    let dir = tempfile::tempdir().unwrap();
    let sheet = two_genome_sheet(dir.path());
    run(&mut nextflow(
        dir.path(),
        &nf,
        "",
        "test",
        &["--input", sheet.to_str().unwrap()],
    ));
    let want = std::fs::read(by_hand().join("embeddings/genome.npy")).unwrap();
    for id in ["alpha", "beta"] {
        let got = std::fs::read(dir.path().join(format!("out/embeddings/{id}.npy"))).unwrap();
        assert!(got == want, "{id}.npy differs from the by-hand run");
        assert!(dir
            .path()
            .join(format!("out/report/{id}_embed/report.html"))
            .exists());
    }
    std::fs::write(&sheet, "id,genome\nalpha,g.fa\nalpha,g.fa\n").unwrap();
    let text = run_failing(&mut nextflow(
        dir.path(),
        &nf,
        "embed",
        "test",
        &["--input", sheet.to_str().unwrap()],
    ));
    assert!(
        text.contains("samples.csv:3: id 'alpha' is also on line 2"),
        "{text}"
    );
    std::fs::write(&sheet, "id,genome\nalpha,missing.fa\n").unwrap();
    let text = run_failing(&mut nextflow(
        dir.path(),
        &nf,
        "embed",
        "test",
        &["--input", sheet.to_str().unwrap()],
    ));
    assert!(
        text.contains("samples.csv:2: genome missing.fa does not exist"),
        "{text}"
    );
}

/// Whether a DNABERT_EMBED task of this work folder has finished.
fn an_embed_task_finished(work: &Path) -> bool {
    let Ok(level1) = std::fs::read_dir(work) else {
        return false;
    };
    level1
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .any(|task| {
            let p = task.path();
            std::fs::read_to_string(p.join(".command.sh"))
                .is_ok_and(|s| s.contains("dnabert embed"))
                && std::fs::read_to_string(p.join(".exitcode")).is_ok_and(|s| s.trim() == "0")
        })
}

#[test]
fn nextflow_embed_continues_with_resume_after_an_interrupted_run() {
    let Some(nf) = engine("nextflow") else { return };
    let dir = tempfile::tempdir().unwrap();

    // SIGTERM (what SLURM sends at a time limit) once the first chunk is embedded.
    let mut child = nextflow(dir.path(), &nf, "embed", "test", &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !an_embed_task_finished(&dir.path().join("work")) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "nextflow ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no embed task finished in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert!(!status.success(), "the interrupted run reported success");
    assert!(
        !dir.path().join("out/embeddings/genome.npy").exists(),
        "the run finished before the interruption landed: nothing was resumed"
    );

    let out = run(&mut nextflow(
        dir.path(),
        &nf,
        "embed",
        "test",
        &["-resume"],
    ));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("Cached process > EMBED:DNABERT_SPLITFASTA"),
        "{log}"
    );
    assert!(
        log.contains("Cached process > EMBED:DNABERT_EMBED"),
        "{log}"
    );
    assert!(
        log.contains("Submitted process > EMBED:DNABERT_GATHEREMBEDDINGS"),
        "{log}"
    );
    assert_same_as_by_hand("nextflow -resume", &dir.path().join("out"), EMBED_FILES);
    assert_reports("nextflow", &dir.path().join("out"), &["embed"]);
}

#[test]
fn nextflow_finetune_and_pretrain_match_the_by_hand_run() {
    let Some(nf) = engine("nextflow") else { return };
    let dir = tempfile::tempdir().unwrap();
    for wf in ["finetune", "pretrain"] {
        run(&mut nextflow(dir.path(), &nf, wf, "test", &[]));
    }
    assert_same_as_by_hand("nextflow", &dir.path().join("out"), &SAME_FILES[2..]);
    assert_reports(
        "nextflow",
        &dir.path().join("out"),
        &["finetune", "pretrain"],
    );
}

#[test]
fn snakemake_every_target_matches_the_by_hand_run() {
    let Some(smk) = engine("snakemake") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(&mut snakemake(&smk, &out, &["--cores", "2"]));
    assert_same_as_by_hand("snakemake", &out, SAME_FILES);
    assert_reports("snakemake", &out, &["embed", "pretrain", "finetune"]);
    // A second run finds everything up to date and runs nothing.
    let again = run(&mut snakemake(&smk, &out, &["--cores", "2"]));
    let text = String::from_utf8_lossy(&again.stdout).to_string()
        + &String::from_utf8_lossy(&again.stderr);
    assert!(text.contains("Nothing to be done"), "{text}");
    // The run's report (snakemake --report): self-contained HTML with the workflow's
    // description and the outputs marked report(), under their categories.
    let html = dir.path().join("report.html");
    run(&mut snakemake(
        &smk,
        &out,
        &["--report", html.to_str().unwrap()],
    ));
    let page = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "Splice sites",
        "Pretraining",
        "Embeddings",
        "donor and acceptor",
    ] {
        assert!(page.contains(needle), "report.html has no '{needle}'");
    }
}

/// The Snakemake workflow as its ecosystem checks it: `--lint` clean (the catalog's check,
/// run on .test as the catalog does), snakefmt-formatted, and each target asking only for what
/// it needs: embed runs with no annotation, finetune without one says which key to set, and
/// a run with no genome says so before any job starts.
/// The Snakemake workflow reads the same sample sheet as the Nextflow pipeline: each genome
/// embedded as a single run of it would be; a bad sheet, or a row without the annotation a
/// target needs, is named with its line before any job runs.
#[test]
fn snakemake_sample_sheet_embeds_every_genome() {
    let Some(smk) = engine("snakemake") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sheet = two_genome_sheet(dir.path());
    let out = dir.path().join("out");
    let samples = format!("samples={}", sheet.display());
    run(&mut snakemake(
        &smk,
        &out,
        &[&samples, "--cores", "2", "embed"],
    ));
    let want = std::fs::read(by_hand().join("embeddings/genome.npy")).unwrap();
    for id in ["alpha", "beta"] {
        let got = std::fs::read(out.join(format!("embeddings/{id}.npy"))).unwrap();
        assert!(got == want, "{id}.npy differs from the by-hand run");
        assert!(out.join(format!("report/{id}_embed/report.html")).exists());
    }
    assert!(!out.join("embeddings/genome.npy").exists());
    let text = run_failing(&mut snakemake(&smk, &out, &[&samples, "-n", "finetune"]));
    assert!(
        text.contains("samples.csv:2: sample 'alpha' has no annotation"),
        "{text}"
    );
    for (bad, expect) in [
        (
            "id,genome\nalpha,g.fa\nalpha,g.fa\n",
            "samples.csv:3: id 'alpha' is also on line 2",
        ),
        (
            "id,genome\nalpha,missing.fa\n",
            "samples.csv:2: genome missing.fa does not exist",
        ),
        (
            "id,fasta\nalpha,g.fa\n",
            "samples.csv:1: the header must be",
        ),
    ] {
        std::fs::write(&sheet, bad).unwrap();
        let text = run_failing(&mut snakemake(&smk, &out, &[&samples, "-n", "embed"]));
        assert!(text.contains(expect), "should say {expect:?}: {text}");
    }
}

#[test]
fn snakemake_lint_snakefmt_and_per_target_inputs() {
    let (Some(smk), Some(fmt)) = (engine("snakemake"), engine("snakefmt")) else {
        return;
    };
    let lint = run(Command::new(&smk)
        .current_dir(repo())
        .args(["--lint", "--directory", ".test"]));
    let text =
        String::from_utf8_lossy(&lint.stdout).to_string() + &String::from_utf8_lossy(&lint.stderr);
    assert!(!text.contains("Lints for"), "{text}");
    run(Command::new(&fmt)
        .current_dir(repo())
        .args(["--check", "workflow/"]));

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(&mut snakemake(&smk, &out, &["annotation=", "-n", "embed"]));
    let text = run_failing(&mut snakemake(
        &smk,
        &out,
        &["annotation=", "-n", "finetune"],
    ));
    assert!(
        text.contains(
            "config `annotation` is not set, and the finetune and dataset targets need it"
        ),
        "{text}"
    );
    let text = run_failing(
        Command::new(&smk)
            .current_dir(repo())
            .env("PATH", path_env())
            .args(["-n", "embed", "--config"])
            .arg(format!("outdir={}", out.display())),
    );
    assert!(
        text.contains("config `genome` is not set, and every target needs it"),
        "{text}"
    );
}

#[test]
fn a_hub_id_as_the_model_runs_through_nextflow_and_snakemake() {
    let (Some(nf), Some(sm)) = (engine("nextflow"), engine("snakemake")) else {
        return;
    };
    // The bundled model, served as org/dnabert6-chrx: the same bytes must come out.
    let shipped = repo().join("models/dnabert6-chrx-4x256");
    let mut files: Vec<_> = std::fs::read_dir(&shipped)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let Some(hub) = standin::StandIn::start(&[("org/dnabert6-chrx", files)], &[]) else {
        return;
    };
    let endpoint = hub.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let hf_home = dir.path().join("hf");
    let mut cmd = nextflow(
        dir.path(),
        &nf,
        "embed",
        "test",
        &["--model", "org/dnabert6-chrx"],
    );
    run(cmd.env("HF_ENDPOINT", &endpoint).env("HF_HOME", &hf_home));
    assert_same_as_by_hand("nextflow, Hub id", &dir.path().join("out"), EMBED_FILES);
    let versions =
        std::fs::read_to_string(dir.path().join("out/pipeline_info/software_versions.yml"))
            .unwrap();
    // From the `versions` topic: a YAML map, each process once (the chunks' DNABERT_EMBED tasks
    // report one version), each naming dnabert's.
    let parsed: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> =
        serde_yaml::from_str(&versions).unwrap_or_else(|e| panic!("{e}:\n{versions}"));
    let want = env!("CARGO_PKG_VERSION");
    for process in [
        "DNABERT_DOWNLOAD",
        "DNABERT_SPLITFASTA",
        "DNABERT_EMBED",
        "DNABERT_GATHEREMBEDDINGS",
    ] {
        // Keys are task.process: qualified by the subworkflow (MODEL:DNABERT_DOWNLOAD).
        let entries: Vec<_> = parsed
            .iter()
            .filter(|(k, _)| k.rsplit(':').next() == Some(process))
            .collect();
        assert_eq!(entries.len(), 1, "{process} once:\n{versions}");
        assert_eq!(entries[0].1["dnabert"], want, "{versions}");
    }
    assert_eq!(
        versions.matches("DNABERT_EMBED:\n").count(),
        1,
        "{versions}"
    );

    let out = dir.path().join("snakemake");
    let mut cmd = snakemake(
        &sm,
        &out,
        &["model=org/dnabert6-chrx", "--cores", "2", "embed"],
    );
    run(cmd.env("HF_ENDPOINT", &endpoint).env("HF_HOME", &hf_home));
    assert_same_as_by_hand("snakemake, Hub id", &out, EMBED_FILES);
    assert!(out.join("models/org--dnabert6-chrx/config.json").is_file());
    let api = hub
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/revision/"))
        .count();
    assert_eq!(api, 2, "one download per workflow run");
}
