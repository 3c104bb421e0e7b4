//! Helpers for the tests that run the workflows on real engines (Nextflow, Snakemake, SLURM).
//!
//! Engines are looked up in `.engines/bin` (where `tests/engines/install.sh` puts them) and then
//! on PATH. A missing engine skips its test with a message, unless DNABERT_REQUIRE_ENGINES=1
//! (set by `.ci/run`), where it fails: CI must never pass by skipping.

#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// PATH for the engines and their tasks: this build's `dnabert` first, then the engines.
pub fn path_env() -> OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_dnabert")).parent().unwrap();
    let mut dirs = vec![bin.to_owned(), repo().join(".engines/bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// Says why a test is skipped, or fails it where skipping is not allowed (CI).
pub fn skip(why: &str) {
    let required = std::env::var("DNABERT_REQUIRE_ENGINES").is_ok_and(|v| v == "1");
    assert!(!required, "{why} (DNABERT_REQUIRE_ENGINES=1)");
    eprintln!("SKIPPED: {why}");
}

/// The engine's executable, or `None` (after saying why) when the test should be skipped.
pub fn engine(name: &str) -> Option<PathBuf> {
    let found = std::env::split_paths(&path_env())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        skip(&format!(
            "{name} not found in .engines/bin or on PATH: run tests/engines/install.sh to install \
             the workflow engines"
        ));
    }
    found
}

/// Snakemake keeps its locks and metadata in `.snakemake/` of the working directory, which is
/// the repository for every test's run; two runs at once race there (one removes
/// `.snakemake/locks` while the other writes into it), so the tests' Snakemake runs take turns.
static SNAKEMAKE_DIR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let _turn = (Path::new(cmd.get_program()).file_name() == Some("snakemake".as_ref()))
        .then(|| SNAKEMAKE_DIR.lock().unwrap_or_else(|e| e.into_inner()));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must fail; its stdout and stderr together.
pub fn run_failing(cmd: &mut Command) -> String {
    let _turn = (Path::new(cmd.get_program()).file_name() == Some("snakemake".as_ref()))
        .then(|| SNAKEMAKE_DIR.lock().unwrap_or_else(|e| e.into_inner()));
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{cmd:?} succeeded:\n{text}");
    text
}

pub fn dnabert(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_dnabert")).args(args))
}

/// Files every engine's run must produce byte for byte as the by-hand run does, relative to
/// the output folder.
pub const SAME_FILES: &[&str] = &[
    "embeddings/genome.npy",
    "embeddings/genome.tsv",
    "splice_sites/genome/train.tsv",
    "splice_sites/genome/validation.tsv",
    "splice_sites/genome/test.tsv",
    "finetune/genome/test_predictions.tsv",
    "finetune/genome/model/model.safetensors",
    "finetune/genome_splice_report.json",
    "pretrain/genome/model/model.safetensors",
];
pub const EMBED_FILES: &[&str] = &["embeddings/genome.npy", "embeddings/genome.tsv"];

/// The workflows' steps run by hand with the `test` profile's settings, into a folder shared
/// by the tests of one test binary.
pub fn by_hand() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let o = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
        let r = |p: &str| repo().join(p).to_str().unwrap().to_owned();
        let (genome, model) = (
            r("tests/fixtures/mini-genome/genome.fa"),
            r("models/dnabert6-chrx-4x256"),
        );
        dnabert(&[
            "split-fasta",
            "--input",
            &genome,
            "--output",
            &o("chunks"),
            "--chunk-bases",
            "20000",
        ]);
        let mut parts = vec![];
        for chunk in chunks(&dir.path().join("chunks")) {
            let name = chunk.file_stem().unwrap().to_str().unwrap().to_owned();
            let prefix = o(&format!("parts/{name}"));
            dnabert(&[
                "embed",
                "--model",
                &model,
                "--input",
                chunk.to_str().unwrap(),
                "--output",
                &prefix,
                "--threads",
                "2",
                "--pooling",
                "mean",
                "--window-tokens",
                "254",
                "--quiet",
            ]);
            parts.push(format!("{prefix}.npy"));
        }
        let (manifest, out) = (o("chunks/manifest.tsv"), o("embeddings/genome"));
        let mut gather = vec!["gather-embeddings", "--manifest", manifest.as_str()];
        gather.extend(["--output", out.as_str()]);
        gather.extend(parts.iter().map(String::as_str));
        dnabert(&gather);

        dnabert(&[
            "splice-sites",
            "--fasta",
            &genome,
            "--annotation",
            &r("tests/fixtures/mini-genome/annotation.gff3"),
            "--output",
            &o("splice_sites/genome"),
            "--window",
            "100",
            "--max-per-class",
            "10000",
        ]);
        dnabert(&[
            "finetune",
            "--config",
            &r("workflows/assets/finetune-splice-test.yaml"),
            "--model",
            &model,
            "--train",
            &o("splice_sites/genome/train.tsv"),
            "--validation",
            &o("splice_sites/genome/validation.tsv"),
            "--test",
            &o("splice_sites/genome/test.tsv"),
            "--output",
            &o("finetune/genome"),
            "--threads",
            "2",
        ]);
        dnabert(&[
            "splice-report",
            "--predictions",
            &o("finetune/genome/test_predictions.tsv"),
            "--train",
            &o("splice_sites/genome/train.tsv"),
            "--test",
            &o("splice_sites/genome/test.tsv"),
            "--output",
            &o("finetune/genome_splice_report"),
        ]);
        dnabert(&[
            "pretrain",
            "--config",
            &r("workflows/assets/pretrain-test.yaml"),
            "--fasta",
            &genome,
            "--output",
            &o("pretrain/genome"),
            "--threads",
            "2",
        ]);
        dir
    })
    .path()
}

/// The chunk FASTA files of a split-fasta folder, in order.
pub fn chunks(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "fa"))
        .collect();
    v.sort();
    v
}

/// Asserts that `files` under `got` equal those of the by-hand run, byte for byte.
pub fn assert_same_as_by_hand(engine: &str, got: &Path, files: &[&str]) {
    let want = by_hand();
    for f in files {
        let (a, b) = (got.join(f), want.join(f));
        let a_bytes =
            std::fs::read(&a).unwrap_or_else(|e| panic!("{engine}: {}: {e}", a.display()));
        let b_bytes = std::fs::read(&b).unwrap();
        assert!(
            a_bytes == b_bytes,
            "{engine}: {f} differs from the by-hand run ({} vs {} bytes)",
            a_bytes.len(),
            b_bytes.len()
        );
    }
}

/// Each stage's `dnabert report` page under `out/report/genome_STAGE/`: its title, its
/// sections, and MultiQC files beside it; the embed page counts the gathered rows.
pub fn assert_reports(engine: &str, out: &Path, stages: &[&str]) {
    for stage in stages {
        let dir = out.join(format!("report/genome_{stage}"));
        let html = std::fs::read_to_string(dir.join("report.html"))
            .unwrap_or_else(|e| panic!("{engine}: no {stage} report in {}: {e}", dir.display()));
        assert!(
            html.contains(&format!("<h1>DNABERT {stage}: genome</h1>")),
            "{engine}: {stage} report's title"
        );
        let sections: &[&str] = match *stage {
            "finetune" => &["<section id=\"finetune-", "<section id=\"splice-"],
            "pretrain" => &["<section id=\"pretrain-"],
            _ => &["<section id=\"embed-"],
        };
        for s in sections {
            assert!(html.contains(s), "{engine}: {stage} report has no {s}");
        }
        let mqc = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with("_mqc.json"))
            .count();
        assert!(mqc > 0, "{engine}: {stage} report has no MultiQC files");
        if *stage == "embed" {
            let rows = std::fs::read_to_string(out.join("embeddings/genome.tsv"))
                .unwrap()
                .lines()
                .count()
                - 1;
            assert!(
                html.contains(&format!(": {rows} rows × 256 columns")),
                "{engine}: the embed report does not count {rows} rows"
            );
        }
    }
}

/// `nextflow run workflows/WORKFLOW.nf -profile PROFILE --outdir out [EXTRA]` in `dir`
/// (`nextflow run workflows …` for WORKFLOW "").
pub fn nextflow(
    dir: &Path,
    nextflow: &Path,
    workflow: &str,
    profile: &str,
    extra: &[&str],
) -> Command {
    // "" is the pipeline folder itself (`nextflow run workflows`: main.nf, --step).
    let script = match workflow {
        "" => repo().join("workflows"),
        wf => repo().join(format!("workflows/{wf}.nf")),
    };
    let mut cmd = Command::new(nextflow);
    cmd.current_dir(dir)
        .env("NXF_OFFLINE", "true")
        .env("NXF_HOME", dir.join(".nxf-home"))
        .env("NXF_ANSI_LOG", "false")
        .env("PATH", path_env())
        .arg("run")
        .arg(script)
        .args(["-profile", profile, "--outdir", "out"])
        .args(extra);
    cmd
}

/// `snakemake --directory .test` from the repository root, as the Snakemake workflow catalog
/// runs a workflow's test (workflow/Snakefile, .test/config/config.yaml, the default workflow
/// profile), with outputs under `outdir`.
pub fn snakemake(snakemake: &Path, outdir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(snakemake);
    cmd.current_dir(repo())
        .env("PATH", path_env())
        .args(["--directory", ".test"])
        .arg("--config")
        .arg(format!("outdir={}", outdir.display()))
        .args(args);
    cmd
}
