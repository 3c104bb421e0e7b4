//! `dnabert pretrain`: masked-language-model training over a genome, checkpointed and resumable
//! so that a resumed run's losses equal an uninterrupted run's, bit for bit.
//!
//! Output folder:
//! - `checkpoint/`: the model folder (with its MLM head) plus `trainer_state.safetensors`
//!   (AdamW moments) and `trainer.json` (step), replaced atomically every `checkpoint_every`;
//! - `metrics.jsonl`: one JSON object per step (loss, lr, grad norm, tokens/s) and per
//!   validation (loss, perplexity, masked-token accuracy);
//! - `model/`: the final model folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::backend::AdamW;
use super::backend::{Backend, Dropout};
use super::cpu::Cpu;
use super::data::{Genome, MaskStyle, Sampler, Split};
use super::mlm::{self, MlmBatch};
use super::ops::dropout::mix;
use super::params::Params;
use super::ranks::{Group, Solo};
use super::resume::{self, Start, TrainerJson};
use super::store;
use super::OptimizerState;
use crate::config::BertConfig;
use crate::folder::Description;
use crate::layout::Layout;
use crate::limits;
use crate::model_dir::ModelDir;
use crate::rng::{rng, Stream};
use crate::tokenizer::Tokenizer;
use crate::vocab::Vocab;

/// A fresh model's shape.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelShape {
    /// k-mer length, 3 to 6 (the vocabulary has 4^k + 5 tokens).
    pub k: usize,
    /// Transformer layers (DNABERT-base: 12).
    pub layers: usize,
    /// Hidden size (DNABERT-base: 768); a multiple of `heads`.
    pub hidden: usize,
    /// Attention heads (DNABERT-base: 12).
    pub heads: usize,
    /// Feed-forward size (DNABERT-base: 3072).
    pub intermediate: usize,
    /// Position embeddings: the longest window is max_positions - 2 k-mers.
    #[serde(default = "default_max_positions")]
    pub max_positions: usize,
}

fn default_max_positions() -> usize {
    512
}

impl ModelShape {
    pub fn bert_config(&self) -> Result<BertConfig> {
        if !crate::vocab::K_RANGE.contains(&self.k) {
            bail!("model.k = {}: DNABERT uses k = 3..6", self.k);
        }
        let c = BertConfig {
            vocab_size: 4usize.pow(self.k as u32) + 5,
            hidden_size: self.hidden,
            num_hidden_layers: self.layers,
            num_attention_heads: self.heads,
            intermediate_size: self.intermediate,
            max_position_embeddings: self.max_positions,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
        };
        c.validate()?;
        Ok(c)
    }
}

/// What the windows are sampled from.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Genome FASTA files (plain, gzip, or https:// URLs); left out, `dnabert pretrain
    /// --fasta` gives them.
    #[serde(default)]
    pub fasta: Vec<PathBuf>,
    /// Records (chromosomes) that validate; the rest train. Empty: the last
    /// validation_fraction of the bases validates.
    #[serde(default)]
    pub validation_records: Vec<String>,
    /// The share of the bases, at the end in file order, held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Contigs (stretches between N runs) shorter than this are not sampled.
    #[serde(default = "default_min_contig")]
    pub min_contig: usize,
}

fn default_validation_fraction() -> f64 {
    0.01
}
fn default_min_contig() -> usize {
    100
}

/// DNABERT's contiguous k-mer span masking.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Probability of a token being a span centre; DNABERT's 0.025 for k = 6 masks about 15%.
    pub probability: f64,
    /// dnabert: 80% [MASK], 10% a random k-mer, 10% kept; bionemo: all [MASK].
    #[serde(default = "default_style")]
    pub style: MaskStyle,
}

fn default_style() -> MaskStyle {
    MaskStyle::Dnabert
}

/// The learning rate after warmup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Straight down to 0 at the last step.
    Linear,
    /// Half a cosine down to 0 at the last step.
    Cosine,
}

/// The optimisation.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Optimizer steps (1 to 10^9).
    pub steps: u64,
    /// Windows per micro-batch (1 to 65536).
    pub batch_size: usize,
    /// Micro-batches summed into each step (a step sees batch_size × grad_accumulation
    /// windows).
    #[serde(default = "one")]
    pub grad_accumulation: usize,
    /// k-mer tokens per window (half the windows are cropped to a random length) [default:
    /// max_positions - 2].
    #[serde(default)]
    pub window_tokens: Option<usize>,
    /// Peak learning rate (AdamW), in (0, 1].
    pub lr: f32,
    /// Steps of linear warmup to lr (at most steps).
    #[serde(default)]
    pub warmup_steps: u64,
    /// linear or cosine decay to 0 after warmup.
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// AdamW's decoupled weight decay (not on biases nor LayerNorms).
    #[serde(default = "default_wd")]
    pub weight_decay: f32,
    /// AdamW's β1, β2.
    #[serde(default = "default_betas")]
    pub betas: (f32, f32),
    /// AdamW's ε.
    #[serde(default = "default_eps")]
    pub eps: f32,
    /// Global gradient-norm clip; 0 disables.
    #[serde(default = "default_clip")]
    pub clip: f32,
    /// Hidden and attention dropout probability (BERT uses 0.1); 0 disables it.
    #[serde(default)]
    pub dropout: f32,
    /// Seeds the weights, the batches, the masks and the dropout.
    #[serde(default)]
    pub seed: u64,
    /// Threads that split each batch (data parallel within the machine; 1 to 4096) [default:
    /// all cores].
    #[serde(default = "super::default_threads")]
    #[schemars(extend("default" = "all cores"))]
    pub threads: usize,
    /// Steps between checkpoints (OUTPUT/checkpoint, what --resume continues from).
    #[serde(default = "default_every")]
    pub checkpoint_every: u64,
    /// Steps between validations (loss, perplexity, masked accuracy in metrics.jsonl).
    #[serde(default = "default_every")]
    pub validate_every: u64,
    /// Batches of held-out windows per validation (1 to 10^6).
    #[serde(default = "default_val_batches")]
    pub validation_batches: usize,
}

fn one() -> usize {
    1
}
fn default_schedule() -> Schedule {
    Schedule::Linear
}
fn default_wd() -> f32 {
    0.01
}
fn default_betas() -> (f32, f32) {
    (0.9, 0.98)
}
fn default_eps() -> f32 {
    1e-6
}
fn default_clip() -> f32 {
    1.0
}
fn default_every() -> u64 {
    100
}
fn default_val_batches() -> usize {
    4
}

/// `pretrain.yaml`. Relative paths are taken from the file's folder.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// A fresh model of this shape, or…
    #[serde(default)]
    pub model: Option<ModelShape>,
    /// …continue from this model (a folder or a Hub id).
    #[serde(default)]
    pub init_from: Option<PathBuf>,
    pub data: DataConfig,
    pub masking: MaskingConfig,
    pub training: TrainingConfig,
    /// The run folder (checkpoint/, metrics.jsonl, model/); left out, `dnabert pretrain
    /// --output` gives it.
    #[serde(default)]
    pub output: PathBuf,
}

impl PretrainConfig {
    /// Every number in range before anything runs (`crate::limits`): a NaN or 1e30 learning
    /// rate, a zero interval, a count that would loop for years are refused, naming the key.
    pub fn check(&self) -> Result<()> {
        use crate::limits::{count, in_range, positive};
        let t = &self.training;
        count("training.steps", t.steps, limits::MAX_STEPS)?;
        count(
            "training.batch_size",
            t.batch_size as u64,
            limits::MAX_BATCH as u64,
        )?;
        count(
            "training.grad_accumulation",
            t.grad_accumulation as u64,
            limits::MAX_BATCH as u64,
        )?;
        count(
            "training.threads",
            t.threads as u64,
            limits::MAX_THREADS as u64,
        )?;
        count(
            "training.checkpoint_every",
            t.checkpoint_every,
            limits::MAX_STEPS,
        )?;
        count(
            "training.validate_every",
            t.validate_every,
            limits::MAX_STEPS,
        )?;
        count(
            "training.validation_batches",
            t.validation_batches as u64,
            limits::MAX_VALIDATION_BATCHES as u64,
        )?;
        if t.warmup_steps > t.steps {
            bail!(
                "training.warmup_steps = {} exceeds training.steps = {}",
                t.warmup_steps,
                t.steps
            );
        }
        positive("training.lr", t.lr, 1.0)?;
        positive("training.eps", t.eps, 1.0)?;
        in_range("training.betas[0]", t.betas.0, 0.0, 1.0, true)?;
        in_range("training.betas[1]", t.betas.1, 0.0, 1.0, true)?;
        in_range("training.weight_decay", t.weight_decay, 0.0, 1.0, false)?;
        in_range("training.clip", t.clip, 0.0, f32::MAX as f64, false)?;
        in_range("training.dropout", t.dropout, 0.0, 1.0, true)?;
        in_range(
            "masking.probability",
            self.masking.probability,
            0.0,
            1.0,
            false,
        )?;
        in_range(
            "data.validation_fraction",
            self.data.validation_fraction,
            0.0,
            1.0,
            true,
        )?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let (mut c, base): (Self, _) = super::load_yaml(path)?;
        c.data
            .fasta
            .iter_mut()
            .for_each(|p| super::resolve(&base, p));
        super::resolve(&base, &mut c.output);
        if let Some(p) = c.init_from.as_mut() {
            super::resolve(&base, p);
        }
        Ok(c)
    }
}

/// `dnabert pretrain`'s flags: the config, and the paths and threads that replace its own
/// (relative to the working directory, not to the config), so one config serves every input a
/// workflow engine hands in.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The run's YAML config: model shape (or init_from), data, masking, training, output.
    /// `dnabert config-reference pretrain` lists every key; workflows/assets/pretrain.yaml is
    /// DNABERT-base's.
    #[arg(long)]
    pub config: PathBuf,
    #[command(flatten)]
    pub place: crate::device::Placement,
    /// Continue from the run folder's last checkpoint (OUTPUT/checkpoint), with the same
    /// losses as an uninterrupted run. An error if there is no checkpoint, if one of its files
    /// is corrupt, or if the config changed a key the run depends on (each is named).
    #[arg(long, conflicts_with_all = ["resume_if_possible", "overwrite"])]
    pub resume: bool,
    /// Continue from the run folder's checkpoint if it has one, else start: what a pipeline
    /// that reruns a killed step wants. Otherwise as --resume.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume_if_possible: bool,
    /// Start afresh even if the run folder holds a run (without it, that is an error).
    #[arg(long)]
    pub overwrite: bool,
    /// Data-parallel training over GPUs with NCCL (experimental, never run): start one
    /// process per GPU with `srun --kill-on-bad-exit=1` (or set RANK, WORLD_SIZE, LOCAL_RANK
    /// and DNABERT_JOB_ID); each takes its node-local GPU and grad_accumulation / world
    /// micro-batches per step. Rank 0 writes the run folder, which every rank must see. Needs
    /// --device cuda.
    #[arg(long)]
    pub distributed: bool,
    /// Genome FASTA files to sample from, replacing data.fasta (repeat or comma-separate);
    /// https:// URLs are downloaded once and cached.
    #[arg(long, value_delimiter = ',')]
    pub fasta: Vec<PathBuf>,
    /// Continue from this model (a folder or a Hub id), replacing init_from (and the
    /// config's model shape).
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Run folder, replacing output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// CPU threads, replacing training.threads.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl Args {
    /// The config with this command line's replacements.
    pub fn apply(&self, c: &mut PretrainConfig) {
        if !self.fasta.is_empty() {
            c.data.fasta = self.fasta.clone();
        }
        if self.init_from.is_some() {
            c.init_from = self.init_from.clone();
            c.model = None;
        }
        if let Some(o) = &self.output {
            c.output = o.clone();
        }
        if let Some(t) = self.threads {
            c.training.threads = t;
        }
    }

    /// `dnabert pretrain`: prints the model folder it wrote.
    pub fn run(self) -> Result<()> {
        let mut c = PretrainConfig::load(&self.config)?;
        self.apply(&mut c);
        let limit = RunLimit { stop_after: None };
        let start = match (self.resume, self.resume_if_possible, self.overwrite) {
            (true, _, _) => Start::Resume,
            (_, true, _) => Start::ResumeIfPossible,
            (_, _, true) => Start::Overwrite,
            _ => Start::Fresh,
        };
        let dir = if self.distributed {
            use crate::cuda::nccl;
            let env = |k: &str| std::env::var(k).ok();
            let (launch, gpu) = crate::device::open_rank(self.place, env)?;
            let group = nccl::Nccl::join(
                &gpu,
                &launch,
                &nccl::rendezvous_path(&c.output, &launch, env)?,
            )?;
            run_ranked(&gpu, &group, &c, start, limit)?
        } else {
            let be = crate::device::open(self.place, c.training.threads)?;
            crate::on_backend!(be, |b| run_on(&b, &c, start, limit)?)
        };
        crate::cli::say(dir.display())
    }
}

/// The learning rate at `step` (0-based): linear warmup, then linear or cosine decay to 0.
pub fn learning_rate(t: &TrainingConfig, step: u64) -> f32 {
    if step < t.warmup_steps {
        return t.lr * (step + 1) as f32 / t.warmup_steps as f32;
    }
    let span = (t.steps - t.warmup_steps).max(1) as f32;
    let done = ((step - t.warmup_steps) as f32 / span).min(1.0);
    match t.schedule {
        Schedule::Linear => t.lr * (1.0 - done),
        Schedule::Cosine => t.lr * 0.5 * (1.0 + (std::f32::consts::PI * done).cos()),
    }
}

/// Loss and gradients of one batch, split across threads; exact: each part's mean is weighted
/// by its share of the masked tokens. Returns the loss and the number of masked tokens.
pub fn batch_loss_and_grads<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    grads: &mut Params<B>,
    batch: MlmBatch,
    dropout: &Dropout,
) -> (f32, usize) {
    let seq = batch.tokens.seq;
    let parts: Vec<MlmBatch> = batch
        .tokens
        .split_rows(be.replicas())
        .into_iter()
        .map(|(row, tokens)| {
            let labels = batch.labels[row * seq..(row + tokens.batch) * seq].to_vec();
            MlmBatch { tokens, labels }
        })
        .collect();
    let counts: Vec<usize> = parts
        .iter()
        .map(|p| p.labels.iter().filter(|&&l| l >= 0).count())
        .collect();
    let total: usize = counts.iter().sum();
    let weights: Vec<f32> = counts
        .iter()
        .map(|&c| c as f32 / total.max(1) as f32)
        .collect();
    let loss =
        super::parallel_loss_and_grads(be, params, grads, &parts, &weights, |be, i, part, g| {
            mlm::loss_and_grads(be, config, params, g, part, &dropout.part(i))
        });
    (loss, total)
}

/// Validation loss, perplexity and masked-token accuracy over fixed batches.
fn validate<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    sampler: &Sampler,
    c: &PretrainConfig,
) -> (f32, f32) {
    let (mut loss_sum, mut correct, mut count) = (0f64, 0usize, 0usize);
    for i in 0..c.training.validation_batches {
        let b = sampler.batch(
            &mut rng(c.training.seed, Stream::PretrainValidation, i as u64),
            c.training.batch_size,
        );
        let (loss, n, right) = mlm::evaluate(be, config, params, &b);
        loss_sum += loss as f64 * n as f64;
        count += n;
        correct += right;
    }
    (
        (loss_sum / count.max(1) as f64) as f32,
        correct as f32 / count.max(1) as f32,
    )
}

/// How far a run goes: to the configured end, or (for tests of resumption) a stop as abrupt as
/// a kill after a given number of steps, without the final checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct RunLimit {
    pub stop_after: Option<u64>,
}

/// Pretrains on the CPU with `training.threads` threads.
pub fn run(c: &PretrainConfig, resume: impl Into<Start>, limit: RunLimit) -> Result<PathBuf> {
    run_on(&Cpu::new(c.training.threads), c, resume, limit)
}

/// Pretrains on a backend. The data pipeline, schedule and checkpoints are the host's; only the
/// model's math runs on the backend.
pub fn run_on<B: Backend>(
    be: &B,
    c: &PretrainConfig,
    resume: impl Into<Start>,
    limit: RunLimit,
) -> Result<PathBuf> {
    run_ranked(be, &Solo, c, resume, limit)
}

/// [`run_on`] as one rank of a data-parallel run (see `ranks`): this rank computes its share of
/// each step's micro-batches, the ranks add their gradients, and rank 0 alone writes metrics,
/// checkpoints and the model. Every rank resumes from the same checkpoint.
pub fn run_ranked<B: Backend>(
    be: &B,
    group: &impl Group<B>,
    c: &PretrainConfig,
    resume: impl Into<Start>,
    limit: RunLimit,
) -> Result<PathBuf> {
    let start: Start = resume.into();
    let (rank, world) = (group.rank(), group.world());
    let lead = rank == 0;
    if c.data.fasta.is_empty() {
        bail!("no genome to pretrain on: set data.fasta in the config or give --fasta");
    }
    if c.output.as_os_str().is_empty() {
        bail!("no run folder: set output in the config or give --output");
    }
    let t = &c.training;
    c.check()?;
    if !t.grad_accumulation.is_multiple_of(world) {
        bail!(
            "training.grad_accumulation ({}) must be a multiple of the world size ({world}): \
             each rank computes grad_accumulation / world micro-batches per step",
            t.grad_accumulation
        );
    }
    let ckpt = match (c.output.join("checkpoint"), c.output.join("checkpoint.old")) {
        // A run killed in the middle of swapping checkpoints leaves only the previous one.
        (cur, old) if !cur.exists() && old.exists() => old,
        (cur, _) => cur,
    };
    let has_checkpoint = ckpt.is_dir();
    let resuming = match start {
        Start::Resume | Start::ResumeIfPossible if has_checkpoint => true,
        Start::Resume => bail!(
            "{}: nothing to resume (no checkpoint/ in the run folder); start the run without \
             --resume, or use --resume-if-possible where either may happen",
            c.output.display()
        ),
        Start::ResumeIfPossible | Start::Overwrite => false,
        Start::Fresh if lead && resume::holds_a_run(&c.output) => bail!(
            "{}: holds a run already (metrics, a checkpoint or a model); continue it with \
             --resume, or replace it with --overwrite",
            c.output.display()
        ),
        Start::Fresh => false,
    };
    if start == Start::Overwrite && lead {
        // The old run goes first, so that a kill before the first checkpoint cannot leave
        // its checkpoint to be resumed as if it were this run's.
        for dir in ["checkpoint", "checkpoint.old", "checkpoint.tmp", "model"] {
            let p = c.output.join(dir);
            if p.exists() {
                std::fs::remove_dir_all(&p)
                    .with_context(|| format!("{}: cannot remove the old run's", p.display()))?;
            }
        }
        let metrics = c.output.join("metrics.jsonl");
        if metrics.exists() {
            std::fs::remove_file(&metrics)
                .with_context(|| format!("{}: cannot remove", metrics.display()))?;
        }
    }
    let (config, k, trained_length, mut params, mut opt_state) = if resuming {
        // Checksums and the run's identity first: nothing corrupt or changed is loaded.
        let tj = resume::verify(&ckpt, c)?;
        let saved = ModelDir::open_folder(&ckpt)?;
        let (params, _) = store::load(&saved, Layout::Mlm, |_| false)?;
        let (config, k) = (saved.config.clone(), saved.k());
        let moments = store::load_tensors(&ckpt.join("trainer_state.safetensors"))?;
        let get = |n: &str| {
            moments
                .get(n)
                .map(|(_, d)| d.clone())
                .with_context(|| format!("trainer state lacks {n}"))
        };
        let (m, v) = (get("adamw.m")?, get("adamw.v")?);
        if m.len() != params.data.len() || v.len() != params.data.len() {
            bail!("{}: trainer state does not match the model", ckpt.display());
        }
        let state = OptimizerState {
            m: be.upload(&m),
            v: be.upload(&v),
            step: tj.step,
        };
        if lead {
            eprintln!(
                "pretrain: resuming from {} at step {}",
                ckpt.display(),
                tj.step
            );
        }
        (
            config,
            k,
            saved.model_max_length,
            params.to_backend(be),
            state,
        )
    } else {
        let (config, k, trained_length, params) = match (&c.model, &c.init_from) {
            (Some(shape), None) => {
                let config = shape.bert_config()?;
                let mut params = Params::bert_mlm(&config);
                store::init(&mut params, t.seed, |_| true);
                (config, shape.k, 0, params)
            }
            (None, Some(dir)) => {
                let m = ModelDir::open(dir)?;
                // A model without its MLM head (a bare encoder, a classifier) gets a fresh one.
                let (mut params, left) = store::load(&m, Layout::Mlm, Layout::is_head)?;
                store::init(&mut params, t.seed, |n| left.iter().any(|l| l == n));
                (m.config.clone(), m.k(), m.model_max_length, params)
            }
            _ => bail!("give exactly one of `model` (a fresh model's shape) or `init_from` (a model folder)"),
        };
        let params = params.to_backend(be);
        let state = OptimizerState::new(be, &params);
        (config, k, trained_length, params, state)
    };
    let window = t
        .window_tokens
        .unwrap_or(config.max_position_embeddings - 2);
    if window + 2 > config.max_position_embeddings {
        bail!("training.window_tokens {window} exceeds max_positions - 2");
    }
    // Positions this run trains, or that an earlier stage trained.
    let folder = description(c, k, window, trained_length.max(window + 2));
    let split = if c.data.validation_records.is_empty() {
        Split::Fraction(c.data.validation_fraction)
    } else {
        Split::Records(c.data.validation_records.clone())
    };
    let genome = Genome::load(&c.data.fasta, &split, c.data.min_contig.max(k))?;
    let vocab = Vocab::parse(&crate::vocab::generate(k))?;
    let tokenizer = Tokenizer::new(&vocab);
    let train = Sampler::new(
        &genome.train,
        &tokenizer,
        window,
        c.masking.probability,
        c.masking.style,
    );
    let val = Sampler::new(
        &genome.validation,
        &tokenizer,
        window,
        c.masking.probability,
        c.masking.style,
    );
    let opt = AdamW {
        lr: t.lr,
        beta1: t.betas.0,
        beta2: t.betas.1,
        eps: t.eps,
        weight_decay: t.weight_decay,
    };

    std::fs::create_dir_all(&c.output)
        .with_context(|| format!("{}: cannot create", c.output.display()))?;
    let metrics_path = c.output.join("metrics.jsonl");
    // Rank 0 keeps the books; the others write nothing (a sink stands in for the file).
    let mut metrics: Box<dyn Write> = if lead {
        truncate_metrics(&metrics_path, opt_state.step)?;
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&metrics_path)?,
        )
    } else {
        Box::new(std::io::sink())
    };
    let started = Instant::now();
    let mut tokens_done = 0u64;
    let flops_per_token = 6.0 * params.len() as f64;

    while opt_state.step < t.steps {
        let step = opt_state.step;
        // Gradient and loss sums over this rank's micro-batches, each micro-batch's mean
        // weighted by its masked tokens; summed over the ranks, then divided by all of them.
        let mut grads = params.zeros_like(be);
        let (mut loss_sum, mut n_tokens, mut masked) = (0f32, 0usize, 0usize);
        for micro in super::ranks::micro_batches(t.grad_accumulation, rank, world) {
            let b = train.batch(
                &mut rng(
                    t.seed,
                    Stream::PretrainBatches,
                    step * t.grad_accumulation as u64 + micro as u64,
                ),
                t.batch_size,
            );
            n_tokens += b.tokens.mask.iter().filter(|&&m| m > 0.0).count();
            let mut g = params.zeros_like(be);
            // Dropout masks follow from the seed and the micro-batch, so a resumed run redraws them.
            let dropout = Dropout {
                p: t.dropout,
                seed: mix(t.seed ^ mix(step * t.grad_accumulation as u64 + micro as u64)),
            };
            let (l, count) = batch_loss_and_grads(be, &config, &params, &mut g, b, &dropout);
            grads.add_scaled(be, &g, count as f32);
            loss_sum += l * count as f32;
            masked += count;
        }
        if world > 1 {
            group.all_reduce_sum(be, &mut grads.data)?;
            let mut sums = be.upload(&[loss_sum, masked as f32, n_tokens as f32]);
            group.all_reduce_sum(be, &mut sums)?;
            let sums = be.download(&sums);
            (loss_sum, masked, n_tokens) = (sums[0], sums[1] as usize, sums[2] as usize);
        }
        grads.scale(be, 1.0 / masked.max(1) as f32);
        let loss = loss_sum / masked.max(1) as f32;
        let norm = grads.norm(be);
        if !loss.is_finite() || !norm.is_finite() {
            bail!(diverged(
                &c.output,
                step + 1,
                &format!("loss {loss}, gradient norm {norm}")
            ));
        }
        if t.clip > 0.0 && norm > t.clip {
            grads.scale(be, t.clip / norm);
        }
        let lr = learning_rate(t, step);
        opt_state.step(be, &AdamW { lr, ..opt }, &mut params, &grads);
        tokens_done += n_tokens as u64;
        let secs = started.elapsed().as_secs_f64();
        let tps = tokens_done as f64 / secs.max(1e-9);
        let line = serde_json::json!({
            "step": step + 1, "loss": loss, "lr": lr, "grad_norm": norm, "tokens": n_tokens,
            "tokens_per_s": tps, "gflops_per_s": tps * flops_per_token / 1e9,
        });
        writeln!(metrics, "{line}")?;
        if lead {
            eprintln!(
                "pretrain: step {}/{} loss {loss:.4} lr {lr:.2e} | {tps:.0} tokens/s",
                step + 1,
                t.steps
            );
        }
        let done = step + 1;
        if lead && (done % t.validate_every == 0 || done == t.steps) {
            let (vloss, acc) = validate(be, &config, &params, &val, c);
            let line = serde_json::json!({
                "step": done, "val_loss": vloss, "val_perplexity": vloss.exp(), "val_masked_accuracy": acc,
            });
            writeln!(metrics, "{line}")?;
            eprintln!("pretrain: validation at step {done}: loss {vloss:.4}, perplexity {:.1}, masked accuracy {acc:.4}", vloss.exp());
        }
        if limit.stop_after == Some(done) {
            return Ok(c.output.clone());
        }
        if lead && (done % t.checkpoint_every == 0 || done == t.steps) {
            metrics.flush()?;
            // Finite gradients can still step the weights to Inf; such weights are never saved.
            let weights = params.norm(be);
            if !weights.is_finite() {
                bail!(diverged(
                    &c.output,
                    done,
                    &format!("weight norm {weights} after the update")
                ));
            }
            write_checkpoint(be, &c.output, &config, &folder, &params, &opt_state, c)?;
        }
    }
    let model_dir = c.output.join("model");
    if lead {
        let host = params.to_host(be);
        store::save_folder(&model_dir, &config, &host, &folder)?;
    }
    Ok(model_dir)
}

/// The error of a run stopped at a non-finite number, saying what is kept.
fn diverged(output: &Path, step: u64, what: &str) -> String {
    let ckpt = output.join("checkpoint");
    let kept = match TrainerJson::read(&ckpt.join("trainer.json")).ok() {
        Some(tj) => format!(
            "the last good checkpoint, {} (step {}), is kept",
            ckpt.display(),
            tj.step
        ),
        None => "no checkpoint had been written yet".into(),
    };
    format!(
        "training diverged at step {step}: {what} is not finite (too high a training.lr, or \
         too little warmup?); stopped before saving it; {kept}"
    )
}

/// The model folder's card and tokenizer settings for this run.
fn description(
    c: &PretrainConfig,
    k: usize,
    window: usize,
    model_max_length: usize,
) -> Description {
    let t = &c.training;
    let fasta: Vec<String> = c
        .data
        .fasta
        .iter()
        .map(|f| format!("`{}`", f.display()))
        .collect();
    Description {
        layout: Layout::Mlm,
        k,
        model_max_length,
        labels: vec![],
        title: "A DNABERT pretrained by dnabert".into(),
        summary: format!(
            "Masked-language-model pretraining over {} by `dnabert pretrain`.",
            fasta.join(", ")
        ),
        facts: vec![
            (
                "objective".into(),
                format!(
                    "masked k-mers ({} masking, span centres p = {})",
                    format!("{:?}", c.masking.style).to_lowercase(),
                    c.masking.probability
                ),
            ),
            (
                "training".into(),
                format!(
                    "{} steps × {} × {} windows of ≤ {} k-mers, lr {}, {} schedule",
                    t.steps,
                    t.batch_size,
                    t.grad_accumulation,
                    window,
                    t.lr,
                    format!("{:?}", t.schedule).to_lowercase()
                ),
            ),
        ],
        base_model: c
            .init_from
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
    }
}

/// Drops metric lines past `step`, so a resumed run's file reads as an uninterrupted one's.
fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    crate::io_util::write_atomic(path, kept.as_bytes())
}

/// Writes the checkpoint into a fresh folder, then swaps it in: at every moment a complete
/// checkpoint exists under `checkpoint/` or, during the swap, `checkpoint.old/`.
fn write_checkpoint<B: Backend>(
    be: &B,
    out: &Path,
    config: &BertConfig,
    folder: &Description,
    params: &Params<B>,
    state: &OptimizerState<B>,
    c: &PretrainConfig,
) -> Result<()> {
    let tmp = out.join("checkpoint.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    store::save_folder(&tmp, config, &params.to_host(be), folder)?;
    let (m, v) = (be.download(&state.m), be.download(&state.v));
    store::save_tensors(
        &tmp.join("trainer_state.safetensors"),
        &[
            ("adamw.m".into(), vec![m.len()], &m),
            ("adamw.v".into(), vec![v.len()], &v),
        ],
    )?;
    let mut sha256 = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(&tmp)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && !name.starts_with('.') {
            sha256.insert(name, resume::sha256(&entry.path())?);
        }
    }
    let tj = serde_json::to_vec_pretty(&TrainerJson {
        step: state.step,
        seed: c.training.seed,
        run: Some(resume::identity(c)),
        sha256,
    })?;
    crate::io_util::write_atomic(&tmp.join("trainer.json"), &tj)?;
    let (cur, old) = (out.join("checkpoint"), out.join("checkpoint.old"));
    if cur.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(&cur, &old)?;
    }
    std::fs::rename(&tmp, &cur)?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}
