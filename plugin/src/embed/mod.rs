//! `dnabert embed`: FASTA in, embeddings out, as a streaming pipeline.
//!
//! Four stages joined by bounded queues, so memory stays flat whatever the genome size:
//! read + tokenise (one record at a time) → batch (windows of similar length together) →
//! infer (the native engine or tract on the CPU, the training engine's encoder on a GPU) →
//! assemble and write (in input order, atomically).

mod args;
pub mod backend_engine;
pub mod index_layout;
pub mod native;
mod output;
mod pipeline;
pub mod windows;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::train::ops::gemm::Kernels;

pub use args::Args;
pub use output::{Rows, INDEX_HEADER};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pooling {
    /// One row per k-mer token.
    None,
    /// The `[CLS]` vector, one row per window.
    Cls,
    /// The mean over a window's k-mer tokens (no specials, no padding), one row per window.
    Mean,
}

/// k-mer tokens shared by neighbouring windows, by default.
pub const DEFAULT_OVERLAP: usize = 64;

/// `--engine`: what runs the model on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    Tract,
    Native,
}

/// What runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compute {
    /// The CPU's default: tract when the folder has its own `model.onnx` (the graph is then
    /// the model, used as is) or the CPU has no AVX-512; the native engine otherwise (measured
    /// 1.3-1.9x tract's speed on AVX-512, `benches/embed_peers.py`; on AVX2 only, where its
    /// products fall back to `matrixmultiply`, it has not been measured against tract).
    #[default]
    Auto,
    /// tract on the CPU.
    Tract,
    /// The native CPU engine (`native.rs`): the encoder on our own kernels, its linear
    /// layers' products in this precision (bf16: CPUs with AVX512-BF16).
    Native(crate::device::Precision),
    /// The training engine's encoder on a backend: a GPU (`embed --device cuda`, experimental:
    /// not yet run on a GPU), or the CPU backend, where the GPU path's logic is checkable
    /// against tract.
    Backend(crate::device::Placement),
}

#[derive(Debug, Clone)]
pub struct EmbedOptions {
    pub model: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    pub pooling: Pooling,
    pub per_nucleotide: bool,
    /// k-mer tokens per window; `None`: the longest the model was trained on
    /// (`model_max_length - 2` of its `tokenizer_config.json`, else `max_position_embeddings - 2`).
    pub window_tokens: Option<usize>,
    /// k-mer tokens shared by neighbouring windows; `None`: [`DEFAULT_OVERLAP`], or a quarter
    /// of a window shorter than four times that.
    pub overlap_tokens: Option<usize>,
    pub batch_size: usize,
    /// CPU threads in all.
    pub threads: usize,
    /// Threads that share one window's matrix products; `threads / threads_per_window` windows
    /// run at once. 1 gives the most throughput (each core runs its own window); more lowers
    /// the latency of a single window.
    pub threads_per_window: usize,
    pub progress: bool,
    pub compute: Compute,
    /// Embed only the regions a selector plugin returns (`--select`).
    pub select: Option<crate::sandbox::select::SelectOptions>,
}

#[derive(Debug, Clone, Default)]
pub struct EmbedSummary {
    pub npy: PathBuf,
    pub tsv: PathBuf,
    pub sequences: usize,
    pub windows: u64,
    pub tokens: u64,
    pub rows: u64,
    /// Records shorter than k, which hold no k-mer: (id, length).
    pub skipped: Vec<(String, usize)>,
    pub seconds: f64,
}

/// `PREFIX.npy` and `PREFIX.tsv`. A prefix may itself contain dots (`out/chr1.part1`).
pub fn output_paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = prefix.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".npy"), with(".tsv"))
}

pub fn run(opts: &EmbedOptions) -> Result<EmbedSummary> {
    let model = crate::model_dir::ModelDir::open(&opts.model)?;
    let max_window = model.max_window();
    let window = opts.window_tokens.unwrap_or(model.trained_window());
    if window == 0 || window > max_window {
        bail!("--window-tokens {window}: must be 1..={max_window} (max_position_embeddings - 2)");
    }
    let overlap = opts
        .overlap_tokens
        .unwrap_or(DEFAULT_OVERLAP.min(window / 4));
    if overlap >= window {
        bail!("--overlap-tokens {overlap} must be smaller than the window ({window} tokens)");
    }
    if opts.per_nucleotide && opts.pooling != Pooling::None {
        bail!("--per-nucleotide gives one row per base; it cannot be combined with --pooling");
    }
    if opts.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let rows = match (opts.pooling, opts.per_nucleotide) {
        (Pooling::None, false) => Rows::Tokens,
        (Pooling::None, true) => Rows::Nucleotides,
        _ => Rows::PerWindow,
    };
    if let Some(parent) = opts.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create the output folder", parent.display()))?;
    }
    if opts.threads == 0 || opts.threads_per_window == 0 || opts.threads_per_window > opts.threads {
        bail!("--threads and --threads-per-window must be at least 1, and --threads-per-window at most --threads");
    }
    let workers = opts.threads / opts.threads_per_window;
    let compute = match opts.compute {
        Compute::Auto if model.onnx_path().is_file() => Compute::Tract,
        Compute::Auto if crate::train::ops::gemm::kernels() == Kernels::Avx512 => {
            Compute::Native(crate::device::Precision::F32)
        }
        Compute::Auto => Compute::Tract,
        other => other,
    };
    let (engine, workers): (std::sync::Arc<dyn crate::engine::Infer>, usize) = match compute {
        Compute::Tract | Compute::Auto => (tract_engine(&model, opts, window)?, workers),
        Compute::Native(precision) => (
            std::sync::Arc::new(native::Native::new(
                &model,
                opts.threads_per_window,
                precision,
            )?),
            workers,
        ),
        Compute::Backend(place) => {
            let be = crate::device::open(place, opts.threads_per_window)?;
            // One worker on a GPU: it runs one batch at a time, and batches keep it busy.
            let workers = if be.is_gpu() { 1 } else { workers };
            let engine: std::sync::Arc<dyn crate::engine::Infer> = crate::on_backend!(be, |b| {
                std::sync::Arc::new(backend_engine::BackendEngine::new(b, &model)?)
            });
            (engine, workers)
        }
    };
    let input = crate::remote::local(&opts.input)?;
    let opts = &EmbedOptions {
        input,
        ..opts.clone()
    };
    pipeline::run(opts, &model, engine, window, overlap, rows, workers)
}

/// tract on the folder's `model.onnx`, or on the graph built from its weights.
#[cfg(feature = "onnx")]
fn tract_engine(
    model: &crate::model_dir::ModelDir,
    opts: &EmbedOptions,
    window: usize,
) -> Result<std::sync::Arc<dyn crate::engine::Infer>> {
    crate::engine::set_threads(opts.threads_per_window);
    let (graph, _) = model.graph()?;
    let mut engine =
        crate::engine::Engine::new(&graph, model.config.hidden_size, model.tokenizer.pad)?;
    engine.specialise(opts.batch_size, window + 2)?;
    Ok(std::sync::Arc::new(engine))
}

#[cfg(not(feature = "onnx"))]
fn tract_engine(
    model: &crate::model_dir::ModelDir,
    _opts: &EmbedOptions,
    _window: usize,
) -> Result<std::sync::Arc<dyn crate::engine::Infer>> {
    bail!(
        "{}: this dnabert was built without tract (cargo feature `onnx`): embed with \
         --engine native",
        model.path.display()
    )
}
