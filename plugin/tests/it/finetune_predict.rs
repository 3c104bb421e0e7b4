//! Fine-tuning on DNABERT's real promoter sample (../shared/data), then prediction: the output
//! folder loads as a classifier, the metrics add up, and both input formats parse.

use std::path::{Path, PathBuf};

use dnabert::folder::Description;
use dnabert::layout::Layout;
use dnabert::train::finetune::{read_table, run, FinetuneConfig};
use dnabert::train::params::Params;
use dnabert::train::pretrain::ModelShape;
use dnabert::train::store;

/// A random tiny MLM (1 layer, hidden 16) as the base, and a fine-tuning config over the
/// promoter sample that writes into `dir/ft`.
pub(crate) fn tiny_finetune_config(dir: &Path, epochs: usize) -> FinetuneConfig {
    let shape = ModelShape {
        k: 6,
        layers: 1,
        hidden: 16,
        heads: 2,
        intermediate: 32,
        max_positions: 128,
    };
    let config = shape.bert_config().unwrap();
    let mut params = Params::bert_mlm(&config);
    store::init(&mut params, 3, |_| true);
    let base = dir.join("base");
    let description = Description::minimal(Layout::Mlm, 6, config.max_position_embeddings);
    store::save_folder(&base, &config, &params, &description).unwrap();

    let yaml = format!(
        "model: {}\ntrain: {}\nnum_labels: 2\nepochs: {epochs}\nbatch_size: 50\nlr: 0.002\nthreads: 2\noutput: {}\n",
        base.display(),
        promoters().display(),
        dir.join("ft").display()
    );
    std::fs::write(dir.join("ft.yaml"), yaml).unwrap();
    FinetuneConfig::load(&dir.join("ft.yaml")).unwrap()
}

fn promoters() -> PathBuf {
    crate::common::shared_data().join("dnabert_prom_core_6mer.tsv")
}

#[test]
fn finetune_then_predict_on_the_promoter_sample() {
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_finetune_config(dir.path(), 2);
    let table = promoters();
    let model = run(&c).unwrap();

    let hf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(hf["architectures"][0], "BertForSequenceClassification");
    assert_eq!(hf["id2label"].as_object().unwrap().len(), 2);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ft/metrics.json")).unwrap())
            .unwrap();
    let confusion: u64 = report["test"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, 100, "10% of 1,000 examples are the test split");
    assert_eq!(report["train_examples"], 800);

    let out = dir.path().join("pred.tsv");
    assert_eq!(
        dnabert::train::predict::run(&model, &table, &out, 64).unwrap(),
        1000
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let first: Vec<&str> = text.lines().nth(1).unwrap().split('\t').collect();
    let (p0, p1): (f32, f32) = (first[5].parse().unwrap(), first[6].parse().unwrap());
    assert!((p0 + p1 - 1.0).abs() < 1e-4);
    // test_predictions.tsv's ids are predict's: each test row joins back to its table row
    // (same label), and the 100 test rows are 100 different rows of the table.
    let by_id: std::collections::HashMap<&str, &str> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0], f[4])
        })
        .collect();
    let tp = std::fs::read_to_string(dir.path().join("ft/test_predictions.tsv")).unwrap();
    assert!(
        tp.starts_with("id\tlabel\tpredicted\tprob_0\tprob_1\n"),
        "{tp:.60}"
    );
    let mut ids = std::collections::HashSet::new();
    for line in tp.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(by_id[f[0]], f[1], "test row {} has its table label", f[0]);
        ids.insert(f[0]);
    }
    assert_eq!(ids.len(), 100);
    let fasta_out = dir.path().join("pred_fa.tsv");
    // The long record (1,400 bases, 1,395 6-mers) is cut into windows of 126 k-mers.
    dnabert::train::predict::run(
        &model,
        &crate::common::fixtures().join("seqs.fa"),
        &fasta_out,
        8,
    )
    .unwrap();
    let long = std::fs::read_to_string(&fasta_out)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("long\t"))
        .count();
    assert_eq!(long, 1395usize.div_ceil(126));
}

/// Fine-tuned on GPU 0, the checkpoint predicts on the CPU and on the GPU with the same
/// probabilities (fp32: within 1e-4). Skips, saying why, without a GPU (CI). Not run yet: no
/// GPU was lent.
#[test]
fn finetuned_on_the_gpu_predicts_the_same_on_cpu_and_gpu() {
    use dnabert::cuda::{self, backend::Gpu};
    if !cuda::missing_libraries().is_empty() {
        eprintln!("SKIPPED: {}", cuda::unavailable_reason(0));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = tiny_finetune_config(dir.path(), 1);
    let gpu = Gpu::new(0).unwrap();
    let model = dnabert::train::finetune::run_on(&gpu, &c).unwrap();
    let (on_cpu, on_gpu) = (dir.path().join("cpu.tsv"), dir.path().join("gpu.tsv"));
    dnabert::train::predict::run(&model, &promoters(), &on_cpu, 64).unwrap();
    dnabert::train::predict::run_on(&gpu, &model, &promoters(), &on_gpu, 64).unwrap();
    let probs = |p: &Path| -> Vec<f64> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .flat_map(|l| {
                l.split('\t')
                    .skip(5)
                    .map(|x| x.parse::<f64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (a, b) = (probs(&on_cpu), probs(&on_gpu));
    assert_eq!(a.len(), 2000);
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-4, "CPU and GPU probabilities differ by {worst}");
}

#[test]
fn tables_in_both_formats_parse_to_the_same_dna() {
    let dir = tempfile::tempdir().unwrap();
    let kmers = dir.path().join("k.tsv");
    std::fs::write(&kmers, "sequence\tlabel\nACGTAC CGTACG GTACGT\t1\n").unwrap();
    let raw = dir.path().join("r.csv");
    std::fs::write(&raw, "ACGTACGT,1\n").unwrap();
    assert_eq!(read_table(&kmers, 2).unwrap(), read_table(&raw, 2).unwrap());
    let bad = dir.path().join("b.tsv");
    std::fs::write(&bad, "ACGTAC TTTTTT\t0\n").unwrap();
    let e = format!("{:#}", read_table(&bad, 2).unwrap_err());
    assert!(e.contains("b.tsv:1") && e.contains("do not overlap"), "{e}");
    std::fs::write(&bad, "ACGT\t7\n").unwrap();
    assert!(format!("{:#}", read_table(&bad, 2).unwrap_err()).contains("not a class"));
}
