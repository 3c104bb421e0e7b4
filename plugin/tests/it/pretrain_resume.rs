//! Pretraining: a run stopped abruptly and resumed from its last checkpoint gives the same
//! losses, bit for bit, and the same final weights as a run that was not stopped; the loss
//! falls on real sequence.

use std::path::Path;

use dnabert::train::backend::Backend;
use dnabert::train::cpu::Cpu;
use dnabert::train::pretrain::{run, run_on, PretrainConfig, RunLimit};

pub(crate) fn config(out: &Path, steps: u64) -> PretrainConfig {
    let yaml = format!(
        r#"
model: {{k: 3, layers: 1, hidden: 16, heads: 2, intermediate: 32, max_positions: 64}}
data:
  fasta: ["{}"]
  validation_records: [exact510]
  min_contig: 50
masking: {{probability: 0.1, style: dnabert}}
training:
  steps: {steps}
  batch_size: 4
  window_tokens: 30
  lr: 0.003
  warmup_steps: 2
  threads: 2
  checkpoint_every: 2
  validate_every: 3
  validation_batches: 2
output: "{}"
"#,
        crate::common::fixtures().join("seqs.fa").display(),
        out.display()
    );
    let path = out.with_extension("yaml");
    std::fs::write(&path, yaml).unwrap();
    PretrainConfig::load(&path).unwrap()
}

/// The metrics without the timing fields, which differ between runs.
fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("tokens_per_s");
            o.remove("gflops_per_s");
            v
        })
        .collect()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one() {
    resumed_equals_uninterrupted(&Cpu::new(2));
}

/// The same on GPU 0 (fp32 products), where the backward pass's sums run in a fixed order
/// (`cuda/launch.rs`); skipped, saying why, without a GPU. **Not run yet**: no GPU has been lent
/// to this project.
#[test]
fn a_resumed_run_equals_an_uninterrupted_one_on_a_gpu() {
    if !dnabert::cuda::missing_libraries().is_empty() {
        eprintln!("SKIPPED: {}", dnabert::cuda::unavailable_reason(0));
        return;
    }
    resumed_equals_uninterrupted(&dnabert::cuda::backend::Gpu::new(0).unwrap());
}

fn resumed_equals_uninterrupted<B: Backend>(be: &B) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let whole = RunLimit { stop_after: None };
    run_on(be, &config(&a, 7), false, whole).unwrap();
    // Stopped after step 5: the last checkpoint is step 4, and step 5's metrics are written.
    run_on(
        be,
        &config(&b, 7),
        false,
        RunLimit {
            stop_after: Some(5),
        },
    )
    .unwrap();
    assert!(metrics(&b).len() > metrics(&a).len() / 2);
    run_on(be, &config(&b, 7), true, whole).unwrap();
    let (ma, mb) = (metrics(&a), metrics(&b));
    assert_eq!(ma.len(), 7 + 3, "7 steps and 3 validations");
    assert_eq!(
        ma, mb,
        "losses, learning rates and gradient norms must match exactly"
    );
    let wa = std::fs::read(a.join("model/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("model/model.safetensors")).unwrap();
    assert!(wa == wb, "final weights differ");
}

#[test]
fn the_loss_falls() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    run(&config(&out, 200), false, RunLimit { stop_after: None }).unwrap();
    let m = metrics(&out);
    let losses: Vec<f64> = m.iter().filter_map(|v| v["loss"].as_f64()).collect();
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    eprintln!("loss {first:.3} -> {last:.3}");
    assert!(
        last < first - 0.15,
        "loss went from {first:.3} to {last:.3}"
    );
    assert!(
        first > (64f64).ln() - 0.5,
        "the first losses should be near ln(64): {first:.3}"
    );
    // The trained folder loads for embedding.
    let model = dnabert::model_dir::ModelDir::open(&out.join("model")).unwrap();
    assert_eq!(model.k(), 3);
}

/// The binary killed with SIGKILL (no chance to clean up, possibly in the middle of writing a
/// checkpoint) and started again with `--resume` writes the same losses as a run that was not
/// killed; dropout is on, so its masks must be redrawn alike too.
#[test]
fn a_run_killed_with_sigkill_resumes_to_the_same_losses() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let write = |out: &Path| {
        let yaml = format!(
            r#"
model: {{k: 3, layers: 2, hidden: 32, heads: 2, intermediate: 64, max_positions: 64}}
data:
  fasta: ["{}"]
  validation_fraction: 0.2
  min_contig: 50
masking: {{probability: 0.1, style: bionemo}}
training:
  steps: 300
  batch_size: 8
  window_tokens: 60
  lr: 0.002
  warmup_steps: 5
  schedule: cosine
  dropout: 0.1
  grad_accumulation: 2
  threads: 2
  checkpoint_every: 4
  validate_every: 50
  validation_batches: 2
output: "{}"
"#,
            crate::common::fixtures().join("seqs.fa").display(),
            out.display()
        );
        let path = out.with_extension("yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    };
    let bin = env!("CARGO_BIN_EXE_dnabert");
    let status = std::process::Command::new(bin)
        .args(["pretrain", "--config"])
        .arg(write(&a))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    let cb = write(&b);
    let mut child = std::process::Command::new(bin)
        .args(["pretrain", "--config"])
        .arg(&cb)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few checkpoints have been written: likely while one is being replaced.
    let marker = b.join("metrics.jsonl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while metrics_len(&marker) < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = metrics_len(&marker);
    assert!(
        killed_at < metrics(&a).len(),
        "the run finished before it could be killed; the test proves nothing"
    );
    let status = std::process::Command::new(bin)
        .args(["pretrain", "--resume", "--config"])
        .arg(&cb)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(metrics(&a), metrics(&b), "losses after the resume differ");
    let wa = std::fs::read(a.join("model/model.safetensors")).unwrap();
    let wb = std::fs::read(b.join("model/model.safetensors")).unwrap();
    assert!(wa == wb, "final weights differ");
}

fn metrics_len(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// `--resume` cannot silently do the wrong thing: no checkpoint, a changed config, a corrupt
/// file, a truncated trainer.json each end with an error naming what is wrong; a fresh run
/// into a folder that holds a run needs `--overwrite`.
#[test]
fn resume_refuses_what_would_not_continue_the_same_run() {
    use dnabert::train::resume::Start;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let err = |r: anyhow::Result<std::path::PathBuf>| format!("{:#}", r.unwrap_err());
    let stop_at_4 = RunLimit {
        stop_after: Some(4),
    };

    // Nothing to resume yet: an error, unless the caller said either is fine.
    let e = err(run(&config(&out, 7), Start::Resume, stop_at_4));
    assert!(e.contains("nothing to resume"), "{e}");
    run(&config(&out, 7), Start::ResumeIfPossible, stop_at_4).unwrap();

    // A fresh run over it is refused; --overwrite replaces it.
    let e = err(run(&config(&out, 7), Start::Fresh, stop_at_4));
    assert!(
        e.contains("holds a run already") && e.contains("--overwrite"),
        "{e}"
    );

    // A changed learning rate and batch size, named with both values.
    let changed = out.with_extension("changed.yaml");
    let text = std::fs::read_to_string(out.with_extension("yaml"))
        .unwrap()
        .replace("lr: 0.003", "lr: 0.001")
        .replace("batch_size: 4", "batch_size: 5");
    std::fs::write(&changed, text).unwrap();
    let c = dnabert::train::pretrain::PretrainConfig::load(&changed).unwrap();
    let e = err(run(&c, Start::Resume, RunLimit { stop_after: None }));
    assert!(e.contains("training.lr: 0.003 then, 0.001 now"), "{e}");
    assert!(e.contains("training.batch_size: 4 then, 5 now"), "{e}");

    // Threads may change: the losses do not depend on them.
    let threads = out.with_extension("threads.yaml");
    let text = std::fs::read_to_string(out.with_extension("yaml"))
        .unwrap()
        .replace("threads: 2", "threads: 1");
    std::fs::write(&threads, text).unwrap();
    let c1 = dnabert::train::pretrain::PretrainConfig::load(&threads).unwrap();
    dnabert::train::resume::verify(&out.join("checkpoint"), &c1).unwrap();

    // One flipped bit in the optimizer state.
    let state = out.join("checkpoint/trainer_state.safetensors");
    let mut bytes = std::fs::read(&state).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0x10;
    std::fs::write(&state, &bytes).unwrap();
    let e = err(run(
        &config(&out, 7),
        Start::Resume,
        RunLimit { stop_after: None },
    ));
    assert!(e.contains("trainer_state.safetensors: corrupt"), "{e}");
    bytes[at] ^= 0x10;
    std::fs::write(&state, &bytes).unwrap();

    // A truncated trainer.json, named.
    let tj = out.join("checkpoint/trainer.json");
    let text = std::fs::read_to_string(&tj).unwrap();
    std::fs::write(&tj, &text[..text.len() / 2]).unwrap();
    let e = err(run(
        &config(&out, 7),
        Start::Resume,
        RunLimit { stop_after: None },
    ));
    assert!(e.contains("trainer.json: not a trainer state"), "{e}");
    std::fs::write(&tj, &text).unwrap();

    // Restored, it resumes; and --overwrite starts again from step 1.
    run(
        &config(&out, 7),
        Start::Resume,
        RunLimit { stop_after: None },
    )
    .unwrap();
    run(
        &config(&out, 7),
        Start::Overwrite,
        RunLimit { stop_after: None },
    )
    .unwrap();
    let m = metrics(&out);
    assert_eq!(m[0]["step"], 1);
    assert_eq!(m.iter().filter(|l| l.get("loss").is_some()).count(), 7);
}
