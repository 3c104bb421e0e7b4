//! Checkpoint formats through the one reader, held to Hugging Face's outputs (the fixtures of
//! tests/make_fixtures.py; the files of tests/make_checkpoint_fixtures.py hold the same weights).

use std::path::Path;
use std::process::Command;

use crate::common::*;
use dnabert::checkpoint::Checkpoint;
use dnabert::layout::Layout;

/// embed `model` on seqs.fa and holds every sequence's per-token rows to `expected_file`.
fn embeds_as_hugging_face(model: &Path, expected_file: &str) {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(model, &fixtures().join("seqs.fa"), &dir.path().join("out"));
    let (index, _, cols, data) = run_embed(&opts);
    let expected = expected(expected_file);
    for (seq, _, _, row) in &index {
        let (rows, ecols, want) = &expected[&format!("tokens/{seq}")];
        assert_eq!(cols, *ecols);
        let got = &data[row * cols..(row + rows) * cols];
        let err = max_abs_diff(got, want);
        assert!(
            err <= TOLERANCE,
            "{}: {seq}: max abs error {err:e}",
            model.display()
        );
    }
    assert_eq!(index.len(), 5, "every sequence embedded");
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dnabert"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_published_style_folder_with_only_pytorch_model_bin_embeds_as_transformers() {
    let dir = fixtures().join("tiny-k6-bin");
    assert!(!dir.join("model.safetensors").exists());
    embeds_as_hugging_face(&dir, "expected_k6.safetensors");
}

#[test]
fn the_legacy_torch_save_format_with_gamma_beta_names_and_a_strided_tensor_embeds() {
    embeds_as_hugging_face(
        &fixtures().join("tiny-k3-legacy"),
        "expected_k3.safetensors",
    );
}

#[test]
fn a_sharded_pytorch_checkpoint_embeds() {
    embeds_as_hugging_face(
        &fixtures().join("tiny-k3-sharded-bin"),
        "expected_k3.safetensors",
    );
}

#[test]
fn a_sharded_safetensors_checkpoint_embeds() {
    // Shards written here from tiny-k3-base's tensors, in transformers' index format.
    let src = fixtures().join("tiny-k3-base");
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let ck = Checkpoint::read_folder(&src).unwrap();
    let names = ck.names();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let shard = format!("model-{:05}-of-00002.safetensors", i + 1);
        let tensors: Vec<(String, Vec<usize>, &[f32])> = part
            .iter()
            .map(|n| {
                let t = ck.get(n).unwrap();
                (n.to_string(), t.shape.clone(), t.data.as_slice())
            })
            .collect();
        dnabert::train::store::save_tensors(&dir.path().join(&shard), &tensors).unwrap();
        part.iter().for_each(|n| {
            map.insert(n.to_string(), shard.clone().into());
        });
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();
    embeds_as_hugging_face(dir.path(), "expected_k3.safetensors");

    // An index that sends a shard outside its folder is refused.
    let mut bad = index.clone();
    bad["weight_map"][a[0]] = "../elsewhere.safetensors".into();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        bad.to_string(),
    )
    .unwrap();
    let err = Checkpoint::read_folder(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a file name beside the index"), "{err}");
}

#[test]
fn every_form_reads_as_the_same_canonical_tensors() {
    let k6 = Checkpoint::read_folder(&fixtures().join("tiny-k6")).unwrap();
    let bin = Checkpoint::read_folder(&fixtures().join("tiny-k6-bin")).unwrap();
    assert_eq!(
        k6.names(),
        bin.names(),
        "position_ids and the tied decoder are dropped"
    );
    for n in k6.names() {
        assert_eq!(k6.get(n), bin.get(n), "{n}");
    }
    assert_eq!(bin.layout(), Layout::Mlm);
    let k3 = Checkpoint::read_folder(&fixtures().join("tiny-k3-base")).unwrap();
    for other in ["tiny-k3-legacy", "tiny-k3-sharded-bin"] {
        let c = Checkpoint::read_folder(&fixtures().join(other)).unwrap();
        assert_eq!(k3.names(), c.names(), "{other}");
        for n in k3.names() {
            assert_eq!(k3.get(n), c.get(n), "{other}: {n}");
        }
        assert_eq!(c.layout(), Layout::Encoder, "{other}: a bare BertModel");
    }
    assert!(
        k3.names().iter().all(|n| n.starts_with("bert.")),
        "bare names get bert."
    );
}

#[test]
fn half_precision_and_double_storages_read_exactly() {
    let t = dnabert::checkpoint::torch::read(&fixtures().join("checkpoints/dtypes.bin")).unwrap();
    let get = |n: &str| {
        t.iter()
            .find(|(m, _)| m == n)
            .map(|(_, t)| t.clone())
            .unwrap()
    };
    use dnabert::checkpoint::RawTensor::*;
    assert_eq!(
        get("half"),
        Float {
            shape: vec![3],
            data: vec![1.5, -2.25, 65504.0]
        }
    );
    match get("bf16") {
        Float { data, .. } => {
            assert_eq!(&data[..2], &[1.5, -2.25]);
            assert!((data[2] / 3.0e38 - 1.0).abs() < 1e-2, "{}", data[2]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        get("double"),
        Float {
            shape: vec![2, 2],
            data: vec![0.1, 0.2, 0.3, 0.4]
        }
    );
    assert!(matches!(get("ints"), NonFloat { .. }));
}

#[test]
fn a_pickle_that_calls_os_system_is_refused_naming_the_global() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(fixtures().join("tiny-k6").join(f), model.join(f)).unwrap();
    }
    for (file, expect) in [
        ("os_system.bin", "'posix.system'"),
        ("huge_storage.bin", "truncated or hostile"),
        ("huge_view.bin", "reaches element"),
    ] {
        std::fs::copy(
            fixtures().join("checkpoints").join(file),
            model.join("pytorch_model.bin"),
        )
        .unwrap();
        let out = dir.path().join("out");
        // Under a 2 GB address-space limit: a claimed 2^50 floats must be refused, not
        // attempted (an attempt aborts instead of exiting with an error).
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -v 2000000; exec '{}' embed --quiet --model '{}' --input '{}' --output '{}'",
                env!("CARGO_BIN_EXE_dnabert"),
                model.display(),
                fixtures().join("seqs.fa").display(),
                out.display()
            ))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains(expect), "{file}: {stderr}");
        assert!(
            stderr.contains("pytorch_model.bin"),
            "{file}: names the file: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("pwned"),
            "{file}: ran code"
        );
        assert!(!out.with_extension("npy").exists());
    }
}

#[test]
fn a_weights_file_given_as_the_model_is_refused_naming_the_folder_rule() {
    let file = fixtures().join("tiny-k6/model.safetensors");
    let o = cli(&[
        "embed",
        "--model",
        file.to_str().unwrap(),
        "--input",
        "x.fa",
        "--output",
        "y",
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a file, not a model folder"), "{err}");
}

#[test]
fn a_truncated_zip_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    let src = fixtures().join("tiny-k6-bin");
    for f in ["config.json", "vocab.txt"] {
        std::fs::copy(src.join(f), model.join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("pytorch_model.bin")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 10, 100] {
        std::fs::write(model.join("pytorch_model.bin"), &bytes[..cut]).unwrap();
        let err = Checkpoint::read_folder(&model).err().unwrap();
        let msg = format!("{err:#}");
        assert!(msg.contains("pytorch_model.bin"), "{msg}");
        assert!(msg.contains("truncated or corrupt"), "{msg}");
    }
    // A bit flipped inside a stored tensor fails the zip entry's CRC.
    let mut flipped = bytes.clone();
    let at = bytes.len() / 3;
    flipped[at] ^= 0x10;
    std::fs::write(model.join("pytorch_model.bin"), &flipped).unwrap();
    let msg = format!("{:#}", Checkpoint::read_folder(&model).err().unwrap());
    assert!(msg.contains("pytorch_model.bin"), "{msg}");
}

#[test]
fn convert_writes_safetensors_that_read_and_embed_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("converted");
    let src = fixtures().join("tiny-k6-bin");
    let o = cli(&[
        "convert",
        "--model",
        src.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("model.safetensors").exists() && !out.join("pytorch_model.bin").exists());
    let tc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(tc["do_lower_case"], false);
    let a = Checkpoint::read_folder(&src).unwrap();
    let b = Checkpoint::read_folder(&out).unwrap();
    assert_eq!(a.names(), b.names());
    for n in a.names() {
        assert_eq!(a.get(n), b.get(n), "{n}");
    }
    embeds_as_hugging_face(&out, "expected_k6.safetensors");

    // In place: the folder gains model.safetensors, which is read from then on.
    let inplace = dir.path().join("inplace");
    std::fs::create_dir(&inplace).unwrap();
    for f in ["config.json", "vocab.txt", "pytorch_model.bin"] {
        std::fs::copy(src.join(f), inplace.join(f)).unwrap();
    }
    let o = cli(&["convert", "--model", inplace.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("may be removed"));
    assert_eq!(
        Checkpoint::find(&inplace).unwrap(),
        inplace.join("model.safetensors")
    );
}

#[test]
fn finetune_and_predict_from_pytorch_model_bin_equal_those_from_safetensors() {
    // The same weights in two formats must give the same fine-tuned model, bit for bit.
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("train.csv");
    let seqs = std::fs::read_to_string(fixtures().join("seqs.fa")).unwrap();
    let mut rows = String::from("sequence,label\n");
    let bases: String = seqs
        .lines()
        .filter(|l| !l.starts_with('>'))
        .collect::<String>()
        .to_uppercase();
    let bases: String = bases.chars().filter(|c| "ACGT".contains(*c)).collect();
    for i in 0..40 {
        rows.push_str(&format!("{},{}\n", &bases[i * 30..i * 30 + 60], i % 2));
    }
    std::fs::write(&table, rows).unwrap();
    let mut outputs = vec![];
    for model in ["tiny-k6", "tiny-k6-bin"] {
        let out = dir.path().join(model);
        let yaml = format!(
            "model: {}\ntrain: {}\nnum_labels: 2\nepochs: 1\nbatch_size: 8\nlr: 0.001\nthreads: 2\nlabels: [no, yes]\noutput: {}\n",
            fixtures().join(model).display(),
            table.display(),
            out.display()
        );
        std::fs::write(dir.path().join(format!("{model}.yaml")), yaml).unwrap();
        let o = cli(&[
            "finetune",
            "--config",
            dir.path().join(format!("{model}.yaml")).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let pred = out.join("pred.tsv");
        let o = cli(&[
            "predict",
            "--model",
            out.join("model").to_str().unwrap(),
            "--input",
            table.to_str().unwrap(),
            "--output",
            pred.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("model/config.json")).unwrap())
                .unwrap();
        assert_eq!(
            config["id2label"]["1"], "yes",
            "label names reach config.json"
        );
        outputs.push((
            std::fs::read(out.join("model/model.safetensors")).unwrap(),
            std::fs::read_to_string(pred).unwrap(),
        ));
    }
    assert!(
        outputs[0].0 == outputs[1].0,
        "the fine-tuned weights differ"
    );
    assert_eq!(outputs[0].1, outputs[1].1);
}

#[test]
fn mutated_torch_files_give_errors_or_tensors_never_panics() {
    // Bit flips and truncations of both formats: the reader may refuse or read them, but
    // must not panic or allocate what a damaged header claims.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pytorch_model.bin");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for src in ["checkpoints/dtypes.bin", "tiny-k3-legacy/pytorch_model.bin"] {
        let good = std::fs::read(fixtures().join(src)).unwrap();
        // The pickles sit near the start (legacy) or near data.pkl (zip): mutate everywhere,
        // but most often in the first 4 kB where the structure is.
        for i in 0..400 {
            let mut bytes = good.clone();
            let span = if i % 2 == 0 {
                4096.min(bytes.len())
            } else {
                bytes.len()
            };
            for _ in 0..1 + (next() % 4) as usize {
                let at = (next() as usize) % span;
                bytes[at] = next() as u8;
            }
            if i % 10 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            std::fs::write(&path, &bytes).unwrap();
            let r = std::panic::catch_unwind(|| dnabert::checkpoint::torch::read(&path));
            assert!(r.is_ok(), "{src}: mutation {i} panicked");
        }
    }
}
