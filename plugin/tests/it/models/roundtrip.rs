//! Our folders as `transformers` reads them. `tests/make_roundtrip_fixtures.py` (by hand, with
//! PyTorch) made mlm/, cls/ and centre/ with dnabert, loaded them with AutoTokenizer,
//! AutoModelForMaskedLM and AutoModelForSequenceClassification (no weight missing or
//! unexpected), and saved what transformers computed; here dnabert is held to it, and today's
//! folder writer to the files transformers read then.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use dnabert::model_dir::ModelDir;

fn roundtrip() -> PathBuf {
    fixtures().join("roundtrip")
}

fn inputs() -> Vec<(String, Vec<u32>)> {
    let text = std::fs::read_to_string(roundtrip().join("inputs.json")).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    v.into_iter()
        .map(|x| {
            let ids = x["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as u32)
                .collect();
            (x["sequence"].as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

/// The sequences as a FASTA file `s0`, `s1`, … in `dir`.
fn fasta(dir: &Path) -> PathBuf {
    let p = dir.join("seqs.fa");
    let text: String = inputs()
        .iter()
        .enumerate()
        .map(|(i, (s, _))| format!(">s{i}\n{s}\n"))
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn autotokenizer_gives_our_ids_for_upper_case_kmers() {
    let m = ModelDir::open(&roundtrip().join("mlm")).unwrap();
    for (seq, want) in inputs() {
        let mut kmers = vec![];
        m.tokenizer.kmer_ids(seq.as_bytes(), &mut kmers);
        assert_eq!(m.tokenizer.wrap(&kmers), want, "{seq}");
    }
    assert_eq!(
        m.model_max_length, 42,
        "tokenizer_config.json's trained length is read"
    );
    assert_eq!(m.trained_window(), 40);
}

#[test]
fn embed_of_our_pretrained_folder_equals_automodelformaskedlm() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(
        &roundtrip().join("mlm"),
        &fasta(dir.path()),
        &dir.path().join("out"),
    );
    opts.overlap_tokens = None; // the folder's 40-token window takes the default's quarter
    let (index, _, cols, data) = run_embed(&opts);
    let expected = expected("roundtrip/expected.safetensors");
    for (i, (id, _, _, row)) in index.iter().enumerate() {
        assert_eq!(id, &format!("s{i}"));
        let (rows, _, want) = &expected[&format!("hidden/{i}")];
        let err = max_abs_diff(&data[row * cols..(row + rows) * cols], want);
        assert!(err <= TOLERANCE, "s{i}: max abs error {err:e}");
    }
    assert_eq!(index.len(), inputs().len());
}

#[test]
fn predict_of_our_finetuned_folders_equals_automodelforsequenceclassification() {
    let dir = tempfile::tempdir().unwrap();
    let input = fasta(dir.path());
    let expected = expected("roundtrip/expected.safetensors");
    for head in ["cls", "centre"] {
        let out = dir.path().join(format!("{head}.tsv"));
        let o = Command::new(env!("CARGO_BIN_EXE_dnabert"))
            .args(["predict", "--model"])
            .arg(roundtrip().join(head))
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(&out).unwrap();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(rows.len(), inputs().len());
        for (i, r) in rows.iter().enumerate() {
            let got: Vec<f32> = r[4..].iter().map(|p| p.parse().unwrap()).collect();
            let (_, _, want) = &expected[&format!("{head}/{i}")];
            let err = max_abs_diff(&got, want);
            assert!(err <= TOLERANCE, "{head} s{i}: max abs error {err:e}");
        }
    }
}

/// The files other than weights and the card (which holds run-dependent metrics) that dnabert
/// writes today must be those transformers read when the fixtures were made: if this fails
/// because the folder writer changed on purpose, rerun tests/make_roundtrip_fixtures.py, which
/// checks them with transformers again.
#[test]
fn the_folders_written_today_are_those_transformers_read() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = tempfile::tempdir().unwrap();
    let rt = roundtrip();
    let dnabert = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_dnabert"))
            .args(args)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let w = work.path().to_str().unwrap();
    dnabert(&[
        "pretrain",
        "--config",
        "tests/fixtures/roundtrip/pretrain.yaml",
        "--fasta",
        "tests/fixtures/mini-genome/genome.fa",
        "--output",
        &format!("{w}/pretrain"),
    ]);
    let compare = |ours: &Path, theirs: &Path| {
        for f in [
            "config.json",
            "vocab.txt",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "modeling_dnabert.py",
        ] {
            let (a, b) = (ours.join(f), theirs.join(f));
            assert_eq!(a.exists(), b.exists(), "{}", a.display());
            if a.exists() {
                assert_eq!(
                    std::fs::read_to_string(&a).unwrap(),
                    std::fs::read_to_string(&b).unwrap(),
                    "{} differs from the fixture transformers read",
                    a.display()
                );
            }
        }
    };
    compare(&work.path().join("pretrain/model"), &rt.join("mlm"));
    for head in ["cls", "centre"] {
        dnabert(&[
            "finetune",
            "--config",
            &format!("tests/fixtures/roundtrip/{head}.yaml"),
            "--model",
            "tests/fixtures/roundtrip/mlm",
            "--train",
            "tests/fixtures/roundtrip/table.csv",
            "--output",
            &format!("{w}/{head}"),
        ]);
        compare(&work.path().join(head).join("model"), &rt.join(head));
    }
}
