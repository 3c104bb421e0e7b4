//! `dnabert embed`'s flags and what the command prints.

use std::path::PathBuf;

use anyhow::Result;

use super::{Compute, EmbedOptions, Pooling};
use crate::device::Placement;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model: a folder in the Hugging Face layout (config.json, vocab.txt, model.safetensors or
    /// pytorch_model.bin, and optionally a model.onnx, then used as is), or a Hub id
    /// ORG/NAME[@REVISION] (fetched into the Hub cache; HF_TOKEN, HF_HUB_OFFLINE honoured).
    #[arg(long)]
    pub model: PathBuf,
    /// FASTA file, plain or gzip-compressed; or an https:// URL, downloaded once into
    /// $DNABERT_CACHE (default ~/.cache/dnabert), resumed if cut, reused while unchanged.
    #[arg(long)]
    pub input: PathBuf,
    /// The input's sha256 (hex), checked before it is read (for a URL, also URL#sha256=HEX).
    #[arg(long)]
    pub sha256: Option<String>,
    /// Output prefix: writes PREFIX.npy and PREFIX.tsv.
    #[arg(long)]
    pub output: PathBuf,
    /// none: a row per k-mer; cls: the [CLS] vector per window; mean: the mean of a window's
    /// k-mers.
    #[arg(long, value_enum, default_value_t = Pooling::None)]
    pub pooling: Pooling,
    /// A row per base: the mean of the k-mers that cover it (only with --pooling none).
    #[arg(long)]
    pub per_nucleotide: bool,
    /// k-mer tokens per window [default: the longest the model was trained on:
    /// model_max_length - 2 from its tokenizer_config.json, else max_position_embeddings - 2].
    #[arg(long)]
    pub window_tokens: Option<usize>,
    /// k-mer tokens shared by neighbouring windows [default: 64, or a quarter of a window
    /// shorter than 256].
    #[arg(long)]
    pub overlap_tokens: Option<usize>,
    /// Windows per inference batch. On CPU, 1 is fastest (measured at DNABERT-base size, for
    /// full windows and for 101-bp records alike); larger batches mix padding into the work.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// CPU threads in all [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Threads that share one window's matrix products. The default, 1, runs a window per
    /// thread, which gives the most throughput; more lowers the latency of a single window.
    #[arg(long, default_value_t = 1)]
    pub threads_per_window: usize,
    /// What runs the model on the CPU: tract (the ONNX graph: a folder's own model.onnx, or
    /// one built from its weights) or native (this project's encoder on its own kernels,
    /// weights packed at load). Default: tract for a folder with its own model.onnx (used as
    /// is) or a CPU without AVX-512; native otherwise (measured faster there: see the README's
    /// Benchmark). A GPU (--device cuda) runs the training engine's encoder.
    #[arg(long, value_enum)]
    pub engine: Option<super::EngineKind>,
    /// No progress output on stderr.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub place: Placement,
    #[command(flatten)]
    pub select: crate::sandbox::select::SelectArgs,
}

impl Args {
    /// The pipeline's options: the input fetched if it is a URL, and checked against --sha256.
    pub fn options(self) -> Result<EmbedOptions> {
        use super::EngineKind::{Native, Tract};
        use crate::device::{Device, Precision};
        let compute = match (self.place.device, self.place.precision, self.engine) {
            (Device::Cpu, Precision::F32, None) => Compute::Auto,
            (Device::Cpu, Precision::F32, Some(Tract)) => Compute::Tract,
            (Device::Cpu, p, Some(Native)) => Compute::Native(p),
            // Reduced precision on the CPU: the native engine's bf16 products.
            (Device::Cpu, p, None) => Compute::Native(p),
            (Device::Cpu, p, Some(Tract)) => {
                anyhow::bail!("--precision {p} runs on the native engine (--engine native); tract computes in fp32")
            }
            (Device::Cuda(_), _, Some(Tract)) => {
                anyhow::bail!("--engine tract runs on the CPU only; a GPU runs the native engine")
            }
            (Device::Cuda(_), _, _) => {
                // The flags are checked before any file is opened.
                self.place.target()?;
                Compute::Backend(self.place)
            }
        };
        Ok(EmbedOptions {
            input: crate::remote::local_checked(&self.input, self.sha256.as_deref())?,
            model: self.model,
            output: self.output,
            pooling: self.pooling,
            per_nucleotide: self.per_nucleotide,
            window_tokens: self.window_tokens,
            overlap_tokens: self.overlap_tokens,
            batch_size: self.batch_size,
            threads: crate::device::threads(self.threads),
            threads_per_window: self.threads_per_window,
            progress: !self.quiet,
            compute,
            select: self.select.options()?,
        })
    }

    /// `dnabert embed`: a summary on stderr; the two files it wrote on stdout.
    pub fn run(self) -> Result<()> {
        let s = super::run(&self.options()?)?;
        eprintln!(
            "embedded {} sequences: {} windows, {} tokens in {:.1} s ({:.0} tokens/s)",
            s.sequences,
            s.windows,
            s.tokens,
            s.seconds,
            s.tokens as f64 / s.seconds.max(1e-9)
        );
        if !s.skipped.is_empty() {
            eprintln!(
                "skipped {} records shorter than k (no k-mer): see the warnings above",
                s.skipped.len()
            );
        }
        crate::cli::say(format!("{}\t{} rows", s.npy.display(), s.rows))?;
        crate::cli::say(s.tsv.display())
    }
}
