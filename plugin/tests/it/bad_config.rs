//! Bad numbers in configs and models, as an adversarial user writes them: each case exits 1
//! (not a panic's 101, not an abort's 134), names the key or tensor it refused, and leaves no
//! run folder or output behind. The table is the issue's list (NaN and Inf learning rates, zero
//! intervals, counts that would loop for years, shapes of terabytes) and its neighbours.

use std::path::Path;
use std::process::Command;

use crate::common::fixtures;

/// A pretraining config that runs (pretrain_resume.rs's), with `edit` applied to its YAML text.
fn pretrain_yaml(edit: &str) -> String {
    let base = format!(
        r#"model: {{k: 3, layers: 1, hidden: 16, heads: 2, intermediate: 32, max_positions: 64}}
data:
  fasta: ["{}"]
  validation_records: [exact510]
  min_contig: 50
masking: {{probability: 0.1, style: dnabert}}
training:
  steps: 4
  batch_size: 4
  window_tokens: 30
  lr: 0.003
  warmup_steps: 2
  threads: 1
  checkpoint_every: 2
  validate_every: 3
  validation_batches: 2
"#,
        fixtures().join("seqs.fa").display()
    );
    // `edit` is "section.key: value": replace that key's line in its section, or add it.
    let (path, value) = edit.split_once(": ").unwrap();
    let (section, key) = path.split_once('.').unwrap();
    let mut out = String::new();
    let mut in_section = false;
    let mut done = false;
    for line in base.lines() {
        if line.starts_with(&format!("{section}:")) {
            in_section = true;
            if line.contains('{') {
                // An inline map: rewrite it with the key replaced or added.
                let inner = line.split_once('{').unwrap().1.trim_end_matches('}');
                let mut parts: Vec<String> = inner
                    .split(", ")
                    .filter(|p| !p.starts_with(&format!("{key}:")))
                    .map(str::to_owned)
                    .collect();
                parts.push(format!("{key}: {value}"));
                out.push_str(&format!("{section}: {{{}}}\n", parts.join(", ")));
                done = true;
                in_section = false;
                continue;
            }
        } else if !line.starts_with(' ') {
            if in_section && !done {
                out.push_str(&format!("  {key}: {value}\n"));
                done = true;
            }
            in_section = false;
        }
        if in_section && line.trim_start().starts_with(&format!("{key}:")) {
            out.push_str(&format!("  {key}: {value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if in_section && !done {
        out.push_str(&format!("  {key}: {value}\n"));
    }
    out
}

/// Runs `dnabert ARGS`, returning (exit code, stderr).
fn dnabert(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dnabert"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 1, every `expect` in the message, no panic, and nothing in `dir` but `keep`.
fn refused(
    what: &str,
    (code, err): (Option<i32>, String),
    expect: &[&str],
    dir: &Path,
    keep: &[&str],
) {
    assert_eq!(code, Some(1), "{what}: exit {code:?}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    for e in expect {
        assert!(err.contains(e), "{what}: the error should say {e:?}: {err}");
    }
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    left.sort();
    assert!(left.is_empty(), "{what}: left behind {left:?}");
}

#[test]
fn pretrain_configs_with_bad_numbers_are_refused_naming_the_key() {
    let cases: &[(&str, &[&str])] = &[
        ("training.lr: .nan", &["training.lr = NaN"]),
        ("training.lr: 1e30", &["training.lr = 1e30"]),
        ("training.lr: -0.001", &["training.lr = -0.001"]),
        ("training.lr: .inf", &["training.lr = inf"]),
        ("training.eps: 0", &["training.eps = 0.0"]),
        (
            "training.checkpoint_every: 0",
            &["training.checkpoint_every = 0"],
        ),
        (
            "training.validate_every: 0",
            &["training.validate_every = 0"],
        ),
        ("training.steps: 0", &["training.steps = 0"]),
        (
            "training.steps: 9007199254740992",
            &["training.steps = 9007199254740992", "between 1 and"],
        ),
        (
            "training.validation_batches: 9223372036854775808",
            &["training.validation_batches"],
        ),
        ("training.threads: 9007199254740992", &["training.threads"]),
        (
            "training.batch_size: 9223372036854775808",
            &["training.batch_size"],
        ),
        (
            "training.grad_accumulation: 0",
            &["training.grad_accumulation = 0"],
        ),
        (
            "training.warmup_steps: 5",
            &["training.warmup_steps = 5 exceeds training.steps = 4"],
        ),
        ("training.dropout: 1.5", &["training.dropout = 1.5"]),
        ("training.betas: [0.9, 1.0]", &["training.betas[1] = 1.0"]),
        (
            "training.weight_decay: .nan",
            &["training.weight_decay = NaN"],
        ),
        ("training.clip: -1", &["training.clip = -1.0"]),
        ("masking.probability: -0.1", &["masking.probability = -0.1"]),
        (
            "data.validation_fraction: 1.0",
            &["data.validation_fraction = 1.0"],
        ),
        (
            "model.hidden: 1000000000",
            &["GiB, more than this machine's"],
        ),
        ("model.hidden: 65536", &["GiB, more than this machine's"]),
        (
            "model.max_positions: 1000000000",
            &["1000000000 positions", "GiB"],
        ),
        ("model.layers: 0", &["num_hidden_layers must be positive"]),
        (
            "model.heads: 3",
            &["not a multiple of num_attention_heads 3"],
        ),
        (
            "model.hidden: 18446744073709551614",
            &[
                "hidden size 18446744073709551614",
                "the size overflows 128 bits",
            ],
        ),
    ];
    // The config the cases edit runs as it is: each case fails for its edit alone.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        pretrain_yaml("training.lr: 0.003"),
    )
    .unwrap();
    let (code, err) = dnabert(
        &["pretrain", "--config", "p.yaml", "--output", "run"],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{err}");
    for (edit, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.yaml"), pretrain_yaml(edit)).unwrap();
        let run = dnabert(
            &["pretrain", "--config", "p.yaml", "--output", "run"],
            dir.path(),
        );
        refused(edit, run, expect, dir.path(), &["p.yaml"]);
    }
}

#[test]
fn finetune_and_init_configs_with_bad_numbers_are_refused_naming_the_key() {
    let table = fixtures().join("seqs.fa");
    let base = |extra: &str| {
        format!(
            "model: {}\ntrain: {}\nnum_labels: 2\nepochs: 1\nbatch_size: 4\nlr: 0.001\n{extra}\n",
            fixtures().join("tiny-k6").display(),
            table.display()
        )
    };
    let cases: &[(&str, &[&str])] = &[
        ("num_labels: 1000000000", &["num_labels = 1000000000"]),
        ("lr: .nan", &["lr = NaN"]),
        ("lr: 1e30", &["lr = 1e30"]),
        ("dropout: -0.5", &["dropout = -0.5"]),
        ("epochs: 0", &["epochs = 0"]),
        (
            "validation_fraction: 0.6\ntest_fraction: 0.5",
            &["nothing would be left to train on"],
        ),
        ("warmup_fraction: 2", &["warmup_fraction = 2.0"]),
    ];
    for (edit, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        // A later key replaces an earlier one in the map: write the edit's keys only once.
        let keys: Vec<&str> = edit.lines().map(|l| l.split(':').next().unwrap()).collect();
        let yaml: String = base(edit)
            .lines()
            .filter(|l| {
                let k = l.split(':').next().unwrap();
                !keys.contains(&k) || edit.lines().any(|e| e == *l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.path().join("f.yaml"), yaml).unwrap();
        let run = dnabert(
            &["finetune", "--config", "f.yaml", "--output", "run"],
            dir.path(),
        );
        refused(edit, run, expect, dir.path(), &["f.yaml"]);
    }

    // An init YAML with a shape of terabytes: refused before anything is allocated.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.yaml"),
        "k: 6\nlayers: 12\nhidden: 1000000000\nheads: 10\nintermediate: 3072\n",
    )
    .unwrap();
    let run = dnabert(&["init", "--config", "m.yaml", "--output", "m"], dir.path());
    refused(
        "init hidden 1e9",
        run,
        &["GiB, more than this machine's"],
        dir.path(),
        &["m.yaml"],
    );
}

/// A copy of the tiny model whose `config.json` or weights are edited.
fn model_copy(dir: &Path) -> std::path::PathBuf {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "vocab.txt", "model.safetensors"] {
        std::fs::copy(fixtures().join("tiny-k6").join(f), model.join(f)).unwrap();
    }
    model
}

#[test]
fn a_model_with_a_bad_eps_or_nan_weights_is_refused_before_anything_is_written() {
    // layer_norm_eps of -1 used to embed to all-NaN arrays with exit 0.
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let p = model.join("config.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    c["layer_norm_eps"] = (-1.0).into();
    std::fs::write(&p, c.to_string()).unwrap();
    let seqs = fixtures().join("seqs.fa");
    let run = dnabert(
        &[
            "embed",
            "--quiet",
            "--model",
            "model",
            "--input",
            seqs.to_str().unwrap(),
            "--output",
            "emb",
        ],
        dir.path(),
    );
    refused(
        "eps -1",
        run,
        &["config.json", "layer_norm_eps = -1"],
        dir.path(),
        &["model"],
    );

    // A NaN in one weight: the tensor is named, for embed and for predict alike.
    let dir = tempfile::tempdir().unwrap();
    let model = model_copy(dir.path());
    let st = model.join("model.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = vec![];
    for (name, view) in tensors.tensors() {
        let mut data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        if name.ends_with("layer.0.output.dense.weight") {
            data[7] = f32::NAN;
        }
        out.push((name, view.shape().to_vec(), data));
    }
    let views: Vec<(String, Vec<usize>, &[f32])> = out
        .iter()
        .map(|(n, s, d)| (n.clone(), s.clone(), d.as_slice()))
        .collect();
    dnabert::train::store::save_tensors(&st, &views).unwrap();
    for stage in ["embed", "predict"] {
        let run = dnabert(
            &[
                stage,
                "--model",
                "model",
                "--input",
                seqs.to_str().unwrap(),
                "--output",
                "o",
            ],
            dir.path(),
        );
        refused(
            &format!("{stage}, NaN weight"),
            run,
            &[
                "model.safetensors",
                "layer.0.output.dense.weight holds 1 non-finite values",
            ],
            dir.path(),
            &["model"],
        );
    }
}

/// Weights that are finite but so large that the forward pass overflows: training stops at the
/// first non-finite loss, saying at which step and what is kept, instead of saving a NaN model.
#[test]
fn training_that_diverges_stops_at_the_first_non_finite_loss() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("huge");
    std::fs::create_dir(&model).unwrap();
    let src = fixtures().join("tiny-k3-base");
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(src.join(f), model.join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let scaled: Vec<(String, Vec<usize>, Vec<f32>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()) * 1e30)
                .collect();
            (name, view.shape().to_vec(), data)
        })
        .collect();
    let views: Vec<(String, Vec<usize>, &[f32])> = scaled
        .iter()
        .map(|(n, s, d)| (n.clone(), s.clone(), d.as_slice()))
        .collect();
    dnabert::train::store::save_tensors(&model.join("model.safetensors"), &views).unwrap();
    let yaml = pretrain_yaml("training.lr: 0.001")
        .replace(
            "model: {k: 3, layers: 1, hidden: 16, heads: 2, intermediate: 32, max_positions: 64}",
            "init_from: huge",
        )
        .replace("window_tokens: 30", "window_tokens: 20");
    std::fs::write(dir.path().join("p.yaml"), yaml).unwrap();
    let (code, err) = dnabert(
        &["pretrain", "--config", "p.yaml", "--output", "run"],
        dir.path(),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("training diverged at step 1"), "{err}");
    assert!(err.contains("no checkpoint had been written yet"), "{err}");
    assert!(
        !dir.path().join("run/model").exists(),
        "a NaN model was saved"
    );
    assert!(!dir.path().join("run/checkpoint").exists());
}
