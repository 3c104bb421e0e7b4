//! Bad input gets a clear error that names the file and the record or line, the binary exits
//! non-zero, and no output file appears.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs the binary's `embed`; returns (exit success, stderr).
fn embed_cli(model: &Path, input: &Path, out: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_dnabert"))
        .args(["embed", "--quiet", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_fails(input_name: &str, bytes: &[u8], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), input_name, bytes);
    let out = dir.path().join("out");
    let (ok, stderr) = embed_cli(&fixtures().join("tiny-k6"), &input, &out);
    assert!(!ok, "should fail: {input_name}");
    assert!(
        stderr.contains(&input.display().to_string()),
        "error should name the file: {stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "error should mention {e:?}: {stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "nothing but the input may be left behind: {left:?}"
    );
}

#[test]
fn a_file_that_is_not_fasta() {
    assert_fails(
        "notes.txt",
        b"this is not a FASTA file\nACGT\n",
        &[":1:", "'>'"],
    );
}

#[test]
fn a_binary_file() {
    assert_fails(
        "blob.fa",
        &[0xff, 0xfe, 0x00, 0x01, 0x80, 0x81, 0x0a],
        &["not text"],
    );
}

#[test]
fn an_empty_record_is_named_with_its_line() {
    let fasta = b">chr1\nACGTACGTACGT\n>chr2 empty one\n>chr3\nACGTACGTAC\n";
    assert_fails("empty.fa", fasta, &["chr2", "#2", ":3:"]);
}

#[test]
fn an_empty_file() {
    assert_fails("nothing.fa", b"", &["no FASTA records"]);
}

#[test]
fn illegal_characters_in_a_sequence() {
    assert_fails(
        "digits.fa",
        b">ok\nACGTACGT\n>bad\nACGT1234\n",
        &["bad", "'1'", "base 5"],
    );
}

/// The error points at the line and column of the bad byte, not at the record's header.
#[test]
fn a_bad_byte_is_placed_on_its_own_line() {
    assert_fails(
        "wrapped.fa",
        b">ok\nACGT\n>bad\nACGTACGT\nACGTAC1T\n",
        &[
            "wrapped.fa:5:",
            "'1'",
            "base 15",
            "column 7",
            "header on line 3",
        ],
    );
}

#[test]
fn other_compressions_are_named_with_what_to_do() {
    for (magic, kind) in [
        (&b"BZh91AY&SY"[..], "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0, 4][..], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd, 0, 0][..], "zstd"),
    ] {
        assert_fails(
            "genome.fa.x",
            magic,
            &[&format!("{kind}-compressed"), "decompress it first"],
        );
    }
}

#[test]
fn a_truncated_gzip_file() {
    let mut fasta = Vec::new();
    for i in 0..200 {
        writeln!(fasta, ">r{i}\n{}", "ACGTTGCA".repeat(20)).unwrap();
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&fasta).unwrap();
    let gz = enc.finish().unwrap();
    assert_fails("cut.fa.gz", &gz[..gz.len() / 2], &["truncated"]);
}

#[test]
fn records_shorter_than_k_are_skipped_with_a_warning_not_lost_silently() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "s.fa", b">tiny\nACG\n>fine\nACGTACGTACGT\n");
    let out = dir.path().join("out");
    let (ok, stderr) = embed_cli(&fixtures().join("tiny-k6"), &input, &out);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("'tiny'") && stderr.contains("skipped"),
        "{stderr}"
    );
    let index = read_tsv(&dir.path().join("out.tsv"));
    assert_eq!(index, vec![("fine".to_string(), 0, 12, 0)]);
}

/// A copy of the tiny model folder, altered by `edit`.
fn broken_model(edit: impl FnOnce(&Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "vocab.txt", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny-k6").join(f), model.join(f)).unwrap();
    }
    edit(&model);
    (dir, model)
}

fn model_error(model: &Path) -> String {
    let out = model.parent().unwrap().join("out");
    let (ok, stderr) = embed_cli(model, &fixtures().join("seqs.fa"), &out);
    assert!(!ok);
    assert!(!out.with_extension("npy").exists());
    stderr
}

fn edit_config(model: &Path, key: &str, value: serde_json::Value) {
    let p = model.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    c[key] = value;
    std::fs::write(&p, c.to_string()).unwrap();
}

#[test]
fn a_truncated_checkpoint() {
    let (_d, model) = broken_model(|m| {
        let p = m.join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    });
    let e = model_error(&model);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated or corrupt"),
        "{e}"
    );
}

#[test]
fn a_checkpoint_that_does_not_match_the_config() {
    let (_d, model) = broken_model(|m| edit_config(m, "intermediate_size", 65.into()));
    let e = model_error(&model);
    assert!(
        e.contains("intermediate.dense.weight") && e.contains("[64, 32]") && e.contains("[65, 32]"),
        "{e}"
    );

    let (_d, model) = broken_model(|m| edit_config(m, "num_hidden_layers", 3.into()));
    let e = model_error(&model);
    assert!(e.contains("missing tensor 'bert.encoder.layer.2."), "{e}");

    let (_d, model) = broken_model(|m| edit_config(m, "num_hidden_layers", 1.into()));
    let e = model_error(&model);
    assert!(e.contains("more than the 1 layers"), "{e}");
}

#[test]
fn a_vocabulary_that_does_not_match_the_config() {
    let (_d, model) = broken_model(|m| edit_config(m, "vocab_size", 4100.into()));
    let e = model_error(&model);
    assert!(
        e.contains("vocab.txt has 4101 tokens") && e.contains("vocab_size = 4100"),
        "{e}"
    );
}

#[test]
fn bad_options_are_refused_and_missing_output_folders_made() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("tiny-k6");
    let seqs = fixtures().join("seqs.fa");
    let mut o = options(&model, &seqs, &dir.path().join("x"));
    o.window_tokens = Some(511);
    assert!(dnabert::embed::run(&o)
        .unwrap_err()
        .to_string()
        .contains("1..=510"));
    let mut o = options(&model, &seqs, &dir.path().join("x"));
    o.overlap_tokens = Some(510);
    assert!(dnabert::embed::run(&o)
        .unwrap_err()
        .to_string()
        .contains("smaller than the window"));
    let mut o = options(&model, &seqs, &dir.path().join("x"));
    o.per_nucleotide = true;
    o.pooling = dnabert::embed::Pooling::Cls;
    assert!(dnabert::embed::run(&o).is_err());
    let mut o = options(&model, &seqs, &dir.path().join("x"));
    o.threads_per_window = 3;
    assert!(dnabert::embed::run(&o)
        .unwrap_err()
        .to_string()
        .contains("--threads-per-window"));
    // A missing output folder is made, as `mkdir -p` would.
    let mut o = options(&model, &seqs, &dir.path().join("new/dir/x"));
    o.pooling = dnabert::embed::Pooling::Cls;
    assert!(dnabert::embed::run(&o).is_ok());
    assert!(dir.path().join("new/dir/x.npy").exists());
}

/// `embed` of the real 70 Mb chrX slice into `out`, started: long enough to be interrupted
/// while it writes.
fn long_embed(out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_dnabert"))
        .args(["embed", "--quiet", "--pooling", "cls", "--model"])
        .arg(fixtures().join("tiny-k6"))
        .arg("--input")
        .arg(shared_data().join("grch37_chrX_1-70Mb.fa.gz"))
        .arg("--output")
        .arg(out)
        .spawn()
        .unwrap()
}

#[test]
fn a_killed_run_leaves_no_output_under_the_final_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("genome");
    let mut child = long_embed(&out);
    let partial = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    };
    let started = std::time::Instant::now();
    while !partial() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        partial(),
        "the run should be writing its temporary files by now"
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run should still be going"
    );
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!dir.path().join("genome.npy").exists());
    assert!(!dir.path().join("genome.tsv").exists());
    assert!(partial(), "SIGKILL leaves its temporary files");

    // The next run at the same output removes what the killed one left, and commits.
    let (ok, err) = embed_cli(
        &fixtures().join("tiny-k6"),
        &fixtures().join("seqs.fa"),
        &out,
    );
    assert!(ok, "{err}");
    assert_eq!(
        names_in(dir.path()),
        ["genome.npy", "genome.tsv"],
        "the killed run's debris is gone, and no lock is left"
    );
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Two runs at one output: the second fails at once (the first holds the output's lock)
/// instead of committing one run's `.npy` beside the other's `.tsv`. SIGTERM (a SLURM time
/// limit) then ends the first with 143, its temporary files and lock removed.
#[cfg(unix)]
#[test]
fn a_second_run_at_the_same_output_is_refused_and_sigterm_cleans_up() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("genome");
    let mut first = long_embed(&out);
    let started = std::time::Instant::now();
    while !names_in(dir.path()).iter().any(|n| n.ends_with(".partial"))
        && started.elapsed().as_secs() < 60
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (ok, err) = embed_cli(
        &fixtures().join("tiny-k6"),
        &fixtures().join("seqs.fa"),
        &out,
    );
    assert!(!ok, "a second run at the same output must fail");
    assert!(
        err.contains("another run is writing this output now"),
        "{err}"
    );
    assert!(first.try_wait().unwrap().is_none(), "the first run goes on");

    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let status = first.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "{status:?} (signal {:?})",
        status.signal()
    );
    assert!(
        names_in(dir.path()).is_empty(),
        "left behind: {:?}",
        names_in(dir.path())
    );
}

/// A reader that goes away (`dnabert … | head`) ends the program as SIGPIPE ends Unix tools,
/// not with a panic message about a failed print.
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dnabert"))
        .args(["vocab", "--k", "3"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// A protein FASTA embeds (its k-mers are [UNK]), but not in silence.
#[test]
fn a_protein_record_is_embedded_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "protein.fa",
        b">sp|P69905|HBA_HUMAN\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHV\n>dna\nACGTACGTTAGCATCGATCGATCGGCTA\n",
    );
    let (ok, stderr) = embed_cli(&fixtures().join("tiny-k6"), &input, &dir.path().join("out"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("record 'sp|P69905|HBA_HUMAN' is mostly not DNA")
            && stderr.contains("protein?"),
        "{stderr}"
    );
    assert!(!stderr.contains("'dna' is mostly"), "{stderr}");
}

#[test]
fn gather_refuses_chunks_embedded_with_different_pooling() {
    let dir = tempfile::tempdir().unwrap();
    let seq = |n: usize, s: u64| -> String {
        (0..n)
            .map(|i| b"ACGT"[((i as u64 * 7 + s * 13) % 4) as usize] as char)
            .collect()
    };
    let genome = write(
        dir.path(),
        "g.fa",
        format!(">a\n{}\n>b\n{}\n", seq(300, 1), seq(300, 2)).as_bytes(),
    );
    let bin = env!("CARGO_BIN_EXE_dnabert");
    let chunks = dir.path().join("chunks");
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new(bin)
        .args(["split-fasta", "--chunk-bases", "300", "--input"])
        .arg(&genome)
        .arg("--output")
        .arg(&chunks));
    for (chunk, pooling) in [("chunk_00001", "mean"), ("chunk_00002", "none")] {
        ok(Command::new(bin)
            .args(["embed", "--quiet", "--pooling", pooling, "--model"])
            .arg(fixtures().join("tiny-k6"))
            .arg("--input")
            .arg(chunks.join(format!("{chunk}.fa")))
            .arg("--output")
            .arg(dir.path().join(chunk)));
    }
    let o = Command::new(bin)
        .arg("gather-embeddings")
        .arg("--manifest")
        .arg(chunks.join("manifest.tsv"))
        .arg("--output")
        .arg(dir.path().join("all"))
        .arg(dir.path().join("chunk_00001"))
        .arg(dir.path().join("chunk_00002"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("chunk_00002.tsv: laid out per token")
            && stderr.contains("different --pooling or --per-nucleotide settings"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !names_in(dir.path())
            .iter()
            .any(|n| n.starts_with("all") || n.contains(".all")),
        "{:?}",
        names_in(dir.path())
    );
}
