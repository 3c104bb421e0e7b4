//! `dnabert finetune`: sequence classification from a pretrained folder, with DNABERT's `[CLS]`
//! head or BioNeMo's centre-token head (splice sites).
//!
//! Input tables: CSV or TSV of `sequence,label`, the sequence as raw DNA or in DNABERT's own
//! format (space-separated overlapping k-mers); an optional header line. A header that names
//! `sequence` and `label` columns picks them out of wider tables (as `splice-sites` writes).
//! Output folder: `model/` (for the `[CLS]` head it loads in Hugging Face as
//! `BertForSequenceClassification`), `metrics.json` (the best epoch's validation metrics and
//! the test metrics), `metrics.jsonl` (one line per epoch), `test_predictions.tsv`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::backend::AdamW;
use super::backend::{Backend, Dropout};
use super::classify::{self, ClassBatch, Head};
use super::cpu::Cpu;
use super::metrics::{self, Metrics};
use super::params::Params;
use super::{store, OptimizerState};
use crate::folder::Description;
use crate::layout::Layout;
use crate::model_dir::ModelDir;
use crate::rng::Stream;

/// `finetune.yaml`. Relative paths are taken from the file's folder.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FinetuneConfig {
    /// The model to start from: a folder (pretrained, or from `dnabert init` for a baseline
    /// from random weights) or a Hub id. Left out, `dnabert finetune --model` gives it (and
    /// likewise train and output).
    #[serde(default)]
    pub model: PathBuf,
    /// The training table: CSV or TSV of sequence,label (raw DNA or DNABERT's space-separated
    /// k-mers; a header naming `sequence` and `label` picks them out of wider tables).
    #[serde(default)]
    pub train: PathBuf,
    /// A validation table; with `test`, or neither (fractions split off `train`, seeded).
    #[serde(default)]
    pub validation: Option<PathBuf>,
    /// A test table; with `validation`, or neither.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// The share of `train` held out for validation when no tables are given.
    #[serde(default = "tenth")]
    pub validation_fraction: f64,
    /// The share of `train` held out for testing when no tables are given.
    #[serde(default = "tenth")]
    pub test_fraction: f64,
    /// Classes (2 to 65536); labels are 0 … num_labels - 1.
    pub num_labels: usize,
    /// Passes over the training table (early stopping may end sooner).
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate (AdamW), in (0, 1], linearly decayed to 0.
    pub lr: f32,
    /// The share of the steps spent warming the learning rate up.
    #[serde(default)]
    pub warmup_fraction: f32,
    /// AdamW's decoupled weight decay (not on biases nor LayerNorms).
    #[serde(default = "wd")]
    pub weight_decay: f32,
    /// Train the head only, the encoder left as it is.
    #[serde(default)]
    pub freeze_encoder: bool,
    /// `cls` (DNABERT: `[CLS]` → pooler → classifier) or `centre` (BioNeMo's splice head: the
    /// centre token → dense of `head_hidden` + ReLU → classifier).
    #[serde(default)]
    pub head: HeadKind,
    /// The centre head's hidden units.
    #[serde(default = "sixty_four")]
    pub head_hidden: usize,
    /// Class names in class order (`[donor, acceptor, neither]` for splice sites), written into
    /// the model's `config.json` as `id2label`; left out, the starting model's names if it is a
    /// classifier with as many classes, else `LABEL_0` ….
    #[serde(default)]
    pub labels: Vec<String>,
    /// Hidden, attention and head dropout while training (BERT's 0.1 by default).
    #[serde(default = "tenth_f32")]
    pub dropout: f32,
    /// Stop after this many epochs without a better validation loss; 0 never stops early.
    #[serde(default)]
    pub patience: usize,
    /// Seeds the split, the order of the examples, the new head's weights and the dropout.
    #[serde(default)]
    pub seed: u64,
    /// CPU threads that split each batch [default: all cores].
    #[serde(default = "super::default_threads")]
    #[schemars(extend("default" = "all cores"))]
    pub threads: usize,
    /// The run folder (model/, metrics.json, metrics.jsonl, test_predictions.tsv); left out,
    /// `dnabert finetune --output` gives it.
    #[serde(default)]
    pub output: PathBuf,
}

impl FinetuneConfig {
    /// Every number in range before anything runs (`crate::limits`), naming the key.
    pub fn check(&self) -> Result<()> {
        use crate::limits::{self, count, in_range, positive};
        if self.num_labels < 2 || self.num_labels > limits::MAX_LABELS {
            bail!(
                "num_labels = {}: must be between 2 and {}",
                self.num_labels,
                limits::MAX_LABELS
            );
        }
        count(
            "batch_size",
            self.batch_size as u64,
            limits::MAX_BATCH as u64,
        )?;
        count("epochs", self.epochs as u64, limits::MAX_EPOCHS as u64)?;
        count("head_hidden", self.head_hidden as u64, 1 << 20)?;
        count("threads", self.threads as u64, limits::MAX_THREADS as u64)?;
        positive("lr", self.lr, 1.0)?;
        in_range("warmup_fraction", self.warmup_fraction, 0.0, 1.0, false)?;
        in_range("weight_decay", self.weight_decay, 0.0, 1.0, false)?;
        in_range("dropout", self.dropout, 0.0, 1.0, true)?;
        in_range(
            "validation_fraction",
            self.validation_fraction,
            0.0,
            1.0,
            true,
        )?;
        in_range("test_fraction", self.test_fraction, 0.0, 1.0, true)?;
        if self.validation_fraction + self.test_fraction >= 1.0 {
            bail!(
                "validation_fraction + test_fraction = {}: nothing would be left to train on",
                self.validation_fraction + self.test_fraction
            );
        }
        Ok(())
    }
}

/// The classification head.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// DNABERT's: `[CLS]` → pooler (dense + tanh) → classifier.
    #[default]
    Cls,
    /// BioNeMo's splice-site head: the centre token → dense (head_hidden) + ReLU → classifier.
    Centre,
}

impl FinetuneConfig {
    pub fn head(&self) -> Head {
        match self.head {
            HeadKind::Cls => Head::Cls,
            HeadKind::Centre => Head::Centre {
                hidden: self.head_hidden,
            },
        }
    }
}

fn tenth() -> f64 {
    0.1
}
fn tenth_f32() -> f32 {
    0.1
}
fn sixty_four() -> usize {
    64
}
fn wd() -> f32 {
    0.01
}

impl FinetuneConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let (mut c, base): (Self, _) = super::load_yaml(path)?;
        for p in [
            Some(&mut c.model),
            Some(&mut c.train),
            c.validation.as_mut(),
            c.test.as_mut(),
            Some(&mut c.output),
        ]
        .into_iter()
        .flatten()
        {
            super::resolve(&base, p);
        }
        Ok(c)
    }
}

/// One labelled sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub seq: Vec<u8>,
    pub label: usize,
    /// 0-based among the table's examples (header and blank lines not counted): pandas'
    /// index of the row in `read_csv(table)`; `rowN` (N = row + 1) in the predictions.
    pub row: usize,
}

/// Reads a `sequence,label` table (CSV or TSV, header optional); k-mer sentences are joined
/// back into DNA, checking that neighbouring k-mers overlap.
pub fn read_table(path: &Path, num_labels: usize) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    // Tab-separated if the first line has a tab, else comma-separated; quoted fields as CSV
    // has them (the `csv` crate: "0" is the label 0, a quoted comma stays in its field).
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let sep = if first.contains('\t') { b'\t' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sep)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = vec![];
    // Columns named by a header (`sequence`, `label`), or else the last two.
    let mut named: Option<(usize, usize)> = None;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            anyhow::anyhow!("{}:{line}: {e}", path.display())
        })?;
        let line_no = record.position().map_or(i as u64 + 1, |p| p.line());
        let f: Vec<&str> = record.iter().collect();
        if f.iter().all(|x| x.is_empty()) {
            continue;
        }
        let (label, seq) = match named {
            Some((si, li)) => match (f.get(li), f.get(si)) {
                (Some(l), Some(s)) => (*l, *s),
                _ => bail!(
                    "{}:{line_no}: fewer columns than the header names",
                    path.display()
                ),
            },
            None if f.len() >= 2 => (f[f.len() - 1], f[f.len() - 2]),
            None => bail!(
                "{}:{line_no}: expected two columns, sequence and label",
                path.display()
            ),
        };
        if i == 0 && label.parse::<usize>().is_err() {
            let at = |n: &str| f.iter().position(|c| *c == n);
            if let (Some(si), Some(li)) = (at("sequence"), at("label")) {
                named = Some((si, li));
            }
            continue; // a header
        }
        let label: usize = label
            .parse()
            .ok()
            .filter(|l| *l < num_labels)
            .with_context(|| {
                format!(
                    "{}:{line_no}: label '{label}' is not a class 0..{}",
                    path.display(),
                    num_labels - 1
                )
            })?;
        let dna = if seq.contains(' ') {
            join_kmers(seq).with_context(|| format!("{}:{line_no}", path.display()))?
        } else {
            seq.as_bytes().to_vec()
        };
        if dna.is_empty() || !dna.iter().all(|b| b.is_ascii_alphabetic()) {
            bail!(
                "{}:{line_no}: the sequence is empty or holds characters other than letters",
                path.display()
            );
        }
        out.push(Example {
            seq: dna,
            label,
            row: out.len(),
        });
    }
    if out.is_empty() {
        bail!("{}: no examples", path.display());
    }
    Ok(out)
}

/// "ACGTAC CGTACG GTACGT" → "ACGTACGT".
fn join_kmers(sentence: &str) -> Result<Vec<u8>> {
    let kmers: Vec<&[u8]> = sentence.split_whitespace().map(str::as_bytes).collect();
    let mut dna = kmers[0].to_vec();
    for w in kmers.windows(2) {
        if w[0].len() != w[1].len() || w[0][1..] != w[1][..w[1].len() - 1] {
            bail!(
                "k-mers '{}' and '{}' do not overlap",
                String::from_utf8_lossy(w[0]),
                String::from_utf8_lossy(w[1])
            );
        }
        dna.extend(w[1].last());
    }
    Ok(dna)
}

/// Class probabilities (rows × classes) for sequences, in batches.
pub fn probabilities<B: Backend>(
    be: &B,
    model: &ModelDir,
    params: &Params<B>,
    head: Head,
    seqs: &[&[u8]],
    n: usize,
    batch: usize,
) -> Vec<Vec<f32>> {
    let mut out = vec![];
    for chunk in seqs.chunks(batch.max(1)) {
        let tokens = model.tokenizer.encode(chunk, model.max_window());
        let f = classify::forward(be, &model.config, params, &tokens, n, head, &Dropout::OFF);
        for row in be.download(&f.logits).chunks_exact(n) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
            let s: f32 = e.iter().sum();
            out.push(e.iter().map(|x| x / s).collect());
        }
    }
    out
}

/// Loss, metrics and the class probabilities of each example.
fn evaluate<B: Backend>(
    be: &B,
    model: &ModelDir,
    params: &Params<B>,
    head: Head,
    data: &[Example],
    n: usize,
    batch: usize,
) -> (f32, Metrics, Vec<Vec<f32>>) {
    let seqs: Vec<&[u8]> = data.iter().map(|e| e.seq.as_slice()).collect();
    let probs = probabilities(be, model, params, head, &seqs, n, batch);
    let truth: Vec<usize> = data.iter().map(|e| e.label).collect();
    let pred: Vec<usize> = probs.iter().map(|p| super::argmax(p)).collect();
    let loss = probs
        .iter()
        .zip(&truth)
        .map(|(p, &t)| -(p[t].max(1e-12)).ln())
        .sum::<f32>()
        / data.len() as f32;
    (loss, metrics::compute(&truth, &pred, n), probs)
}

fn shuffled<T: Clone>(v: &[T], seed: u64, stream: Stream) -> Vec<T> {
    let mut v = v.to_vec();
    crate::rng::shuffle(&mut v, seed, stream);
    v
}

#[derive(Serialize)]
struct Report {
    best_epoch: usize,
    validation_loss: f32,
    validation: Metrics,
    test: Metrics,
    train_examples: usize,
    validation_examples: usize,
    test_examples: usize,
}

/// `dnabert finetune`'s flags: the config, and the paths and threads that replace its own
/// (relative to the working directory).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run's YAML config: num_labels, labels, head, epochs, batch_size, lr, and the rest;
    /// `dnabert config-reference finetune` lists every key.
    #[arg(long)]
    pub config: PathBuf,
    #[command(flatten)]
    pub place: crate::device::Placement,
    /// Model to start from (a folder or a Hub id), replacing model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Training table (CSV or TSV of sequence,label), replacing train.
    #[arg(long)]
    pub train: Option<PathBuf>,
    /// Validation table, replacing validation.
    #[arg(long)]
    pub validation: Option<PathBuf>,
    /// Test table, replacing test.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Run folder, replacing output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// CPU threads, replacing threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed, replacing seed: one run per seed gives splice-report its mean ± sd.
    #[arg(long)]
    pub seed: Option<u64>,
}

impl Args {
    /// The config with this command line's replacements.
    pub fn apply(&self, c: &mut FinetuneConfig) {
        if let Some(s) = self.seed {
            c.seed = s;
        }
        let set = |to: &mut PathBuf, from: &Option<PathBuf>| {
            if let Some(p) = from {
                *to = p.clone();
            }
        };
        set(&mut c.model, &self.model);
        set(&mut c.train, &self.train);
        set(&mut c.output, &self.output);
        if self.validation.is_some() {
            c.validation = self.validation.clone();
        }
        if self.test.is_some() {
            c.test = self.test.clone();
        }
        if let Some(t) = self.threads {
            c.threads = t;
        }
    }

    /// `dnabert finetune`: prints the model folder it wrote.
    pub fn run(self) -> Result<()> {
        let mut c = FinetuneConfig::load(&self.config)?;
        self.apply(&mut c);
        let be = crate::device::open(self.place, c.threads)?;
        let dir = crate::on_backend!(be, |b| run_on(&b, &c)?);
        crate::cli::say(dir.display())
    }
}

/// Fine-tunes on the CPU with `threads` threads.
pub fn run(c: &FinetuneConfig) -> Result<PathBuf> {
    run_on(&Cpu::new(c.threads), c)
}

pub fn run_on<B: Backend>(be: &B, c: &FinetuneConfig) -> Result<PathBuf> {
    for (path, key) in [
        (&c.model, "model"),
        (&c.train, "train"),
        (&c.output, "output"),
    ] {
        if path.as_os_str().is_empty() {
            bail!("no {key}: set {key} in the config or give --{key}");
        }
    }
    c.check()?;
    let model = ModelDir::open(&c.model)?;
    let n = c.num_labels;
    let head = c.head();
    if !c.labels.is_empty() && c.labels.len() != n {
        bail!(
            "labels names {} classes, but num_labels is {n}",
            c.labels.len()
        );
    }
    let layout = Layout::Classifier { labels: n, head };
    // The head starts fresh unless the checkpoint is a classifier of this very layout.
    let (mut host, fresh) = store::load(&model, layout, Layout::is_head)?;
    store::init(&mut host, c.seed, |name| fresh.iter().any(|f| f == name));
    let mut params = host.to_backend(be);

    let all = shuffled(&read_table(&c.train, n)?, c.seed, Stream::FinetuneSplit);
    let (train, validation, test) = match (&c.validation, &c.test) {
        (Some(v), Some(t)) => (all, read_table(v, n)?, read_table(t, n)?),
        (None, None) => {
            let nv = (all.len() as f64 * c.validation_fraction).round() as usize;
            let nt = (all.len() as f64 * c.test_fraction).round() as usize;
            if nv == 0 || nt == 0 || nv + nt >= all.len() {
                bail!(
                    "{}: too few examples ({}) for the validation and test fractions",
                    c.train.display(),
                    all.len()
                );
            }
            (
                all[nv + nt..].to_vec(),
                all[..nv].to_vec(),
                all[nv..nv + nt].to_vec(),
            )
        }
        _ => bail!("give both `validation` and `test` tables, or neither (fractions of `train`)"),
    };

    let opt = AdamW {
        lr: c.lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: c.weight_decay,
    };
    let mut state = OptimizerState::new(be, &params);
    let steps_per_epoch = train.len().div_ceil(c.batch_size);
    let total_steps = (steps_per_epoch * c.epochs) as f32;
    let warmup = (c.warmup_fraction * total_steps).max(1.0);
    std::fs::create_dir_all(&c.output)
        .with_context(|| format!("{}: cannot create the run folder", c.output.display()))?;
    let log_path = c.output.join("metrics.jsonl");
    let mut log = String::new();
    let (mut best, mut best_loss, mut since_best) = (params.clone(), f32::INFINITY, 0);
    let mut best_epoch = 0;
    let mut best_val = None;
    for epoch in 0..c.epochs {
        let order = shuffled(&train, c.seed, Stream::FinetuneEpoch(epoch as u64));
        let mut epoch_loss = 0f32;
        let (started, mut tokens, mut last_log) = (Instant::now(), 0usize, Instant::now());
        for (i, chunk) in order.chunks(c.batch_size).enumerate() {
            let seqs: Vec<&[u8]> = chunk.iter().map(|e| e.seq.as_slice()).collect();
            let b = ClassBatch {
                tokens: model.tokenizer.encode(&seqs, model.max_window()),
                labels: chunk.iter().map(|e| e.label as i64).collect(),
            };
            let mut grads = params.zeros_like(be);
            let dropout = Dropout {
                p: c.dropout,
                seed: super::ops::dropout::mix(c.seed ^ (state.step << 20)),
            };
            let loss = classify::loss_and_grads_split(
                be,
                &model.config,
                &params,
                &mut grads,
                b,
                n,
                head,
                !c.freeze_encoder,
                &dropout,
            );
            if !loss.is_finite() {
                bail!(
                    "training diverged at epoch {} step {}: the loss is {loss} (too high an lr?); \
                     stopped before writing a model",
                    epoch + 1,
                    i + 1
                );
            }
            let step = state.step as f32;
            let lr = if step < warmup {
                c.lr * (step + 1.0) / warmup
            } else {
                c.lr * (1.0 - (step - warmup) / (total_steps - warmup).max(1.0))
            };
            let frozen = c.freeze_encoder;
            state.step_filtered(be, &AdamW { lr, ..opt }, &mut params, &grads, |name| {
                !frozen || Layout::is_head(name)
            });
            epoch_loss += loss * chunk.len() as f32;
            tokens += seqs
                .iter()
                .map(|s| model.tokenizer.num_kmers(s.len()) + 2)
                .sum::<usize>();
            if last_log.elapsed().as_secs() >= 10 || i + 1 == steps_per_epoch {
                last_log = Instant::now();
                let tps = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
                let left = (steps_per_epoch - i - 1) as f64 * started.elapsed().as_secs_f64()
                    / (i + 1) as f64;
                eprintln!(
                    "finetune: epoch {}/{} step {}/{steps_per_epoch} loss {loss:.4} | {tps:.0} tokens/s, epoch ends in {left:.0} s",
                    epoch + 1,
                    c.epochs,
                    i + 1
                );
            }
        }
        let (vloss, vm, _) = evaluate(be, &model, &params, head, &validation, n, c.batch_size);
        if !vloss.is_finite() {
            bail!(
                "training diverged in epoch {}: the validation loss is {vloss} (too high an lr?); \
                 stopped before writing a model",
                epoch + 1
            );
        }
        let line = serde_json::json!({
            "epoch": epoch + 1, "train_loss": epoch_loss / train.len() as f32, "val_loss": vloss,
            "val_accuracy": vm.accuracy, "val_mcc": vm.mcc, "val_macro_f1": vm.macro_f1,
        });
        eprintln!("finetune: {line}");
        log.push_str(&format!("{line}\n"));
        crate::io_util::write_atomic(&log_path, log.as_bytes())?;
        if vloss < best_loss {
            (best, best_loss, best_epoch, since_best) = (params.clone(), vloss, epoch + 1, 0);
            best_val = Some(vm);
        } else {
            since_best += 1;
            if c.patience > 0 && since_best >= c.patience {
                eprintln!("finetune: no better validation loss for {since_best} epochs; stopping");
                break;
            }
        }
    }
    let (_, test_metrics, test_probs) = evaluate(be, &model, &best, head, &test, n, c.batch_size);
    write_predictions(&c.output.join("test_predictions.tsv"), &test, &test_probs)?;
    let report = Report {
        best_epoch,
        validation_loss: best_loss,
        validation: best_val.context("no epoch ran, so there is no validation result")?,
        test: test_metrics,
        train_examples: train.len(),
        validation_examples: validation.len(),
        test_examples: test.len(),
    };
    crate::io_util::write_atomic(
        &c.output.join("metrics.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let out = c.output.join("model");
    let description = Description {
        layout,
        k: model.k(),
        model_max_length: model.model_max_length,
        labels: if c.labels.is_empty() {
            model.labels(n)
        } else {
            c.labels.clone()
        },
        title: "A DNABERT sequence classifier fine-tuned by dnabert".into(),
        summary: format!(
            "Fine-tuned from `{}` on `{}` ({} training examples) by `dnabert finetune`.",
            c.model.display(),
            c.train.display(),
            report.train_examples
        ),
        facts: vec![
            (
                "epochs".into(),
                format!("{} (best: {best_epoch})", c.epochs),
            ),
            (
                "optimiser".into(),
                format!(
                    "AdamW, lr {}, weight decay {}, batch {}, warmup {:.0}%, dropout {}{}",
                    c.lr,
                    c.weight_decay,
                    c.batch_size,
                    100.0 * c.warmup_fraction,
                    c.dropout,
                    if c.freeze_encoder {
                        ", encoder frozen"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "validation".into(),
                format!(
                    "accuracy {:.4}, MCC {:.4}, macro F1 {:.4} ({} examples)",
                    report.validation.accuracy,
                    report.validation.mcc,
                    report.validation.macro_f1,
                    report.validation_examples
                ),
            ),
            (
                "test".into(),
                format!(
                    "accuracy {:.4}, MCC {:.4}, macro F1 {:.4} ({} examples)",
                    report.test.accuracy,
                    report.test.mcc,
                    report.test.macro_f1,
                    report.test_examples
                ),
            ),
        ],
        base_model: Some(c.model.to_string_lossy().into_owned()),
    };
    store::save_folder(&out, &model.config, &best.to_host(be), &description)?;
    Ok(out)
}

/// `label predicted prob_0 … prob_{n-1}` per test example, in the order of the test table.
fn write_predictions(path: &Path, data: &[Example], probs: &[Vec<f32>]) -> Result<()> {
    use std::fmt::Write as _;
    let n = probs.first().map_or(0, Vec::len);
    // `id` as `dnabert predict` names a table's rows, so the two outputs join the same way.
    let mut text = String::from("id\tlabel\tpredicted");
    // Writing into a String cannot fail.
    (0..n).for_each(|i| _ = write!(text, "\tprob_{i}"));
    text.push('\n');
    for (e, p) in data.iter().zip(probs) {
        _ = write!(text, "row{}\t{}\t{}", e.row + 1, e.label, super::argmax(p));
        p.iter().for_each(|x| _ = write!(text, "\t{x:.6}"));
        text.push('\n');
    }
    crate::io_util::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Vec<Example>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        read_table(&p, 3)
    }

    #[test]
    fn tables_read_headers_quotes_tabs_and_kmer_sentences() {
        let rows = |t: &str| -> Vec<(String, usize)> {
            table(t)
                .unwrap()
                .into_iter()
                .map(|e| (String::from_utf8(e.seq).unwrap(), e.label))
                .collect()
        };
        let want = vec![("ACGTACGT".to_string(), 0), ("TTTTGGGG".to_string(), 2)];
        assert_eq!(rows("sequence,label\nACGTACGT,0\nTTTTGGGG,2\n"), want);
        assert_eq!(
            rows("\"sequence\",\"label\"\n\"ACGTACGT\",\"0\"\n\"TTTTGGGG\",\"2\"\n"),
            want
        );
        assert_eq!(
            rows("id\tlabel\tsequence\nr1\t0\tACGTACGT\nr2\t2\tTTTTGGGG\n")[0].1,
            0
        );
        assert_eq!(rows("ACGTACGT,0\nTTTTGGGG,2\n"), want);
        assert_eq!(
            rows("sequence,label\nACGTAC CGTACG GTACGT,1\n")[0],
            ("ACGTACGT".into(), 1)
        );
        // An id column before the two: the last two columns are sequence and label.
        assert_eq!(rows("r1,ACGTACGT,0\nr2,TTTTGGGG,2\n"), want);
    }

    #[test]
    fn table_errors_name_the_line() {
        let e = format!(
            "{:#}",
            table("sequence,label\nACGT,0\nACGT,7\n").unwrap_err()
        );
        assert!(e.contains("t.csv:3: label '7' is not a class 0..2"), "{e}");
        let e = format!("{:#}", table("sequence,label\nAC1T,0\n").unwrap_err());
        assert!(e.contains("t.csv:2:"), "{e}");
        let e = format!("{:#}", table("sequence,label\n\"ACGT,0\n").unwrap_err());
        assert!(e.contains("t.csv:"), "{e}");
    }
}
