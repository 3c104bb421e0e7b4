//! The command line: one subcommand per stage, each taking the arguments struct that lives
//! beside its stage (`embed::Args`, `train::pretrain::Args`, …) and running through its `run`.
//! The binary (`main.rs`) only parses and dispatches; tests read the subcommands from here.

use std::fmt::Display;
use std::io::Write;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[cfg(feature = "onnx")]
use crate::onnx_export;
use crate::train::{finetune, init, predict, pretrain};
use crate::{config_reference, convert, cuda, embed, hub, scatter, splice, vocab};

#[derive(Parser, Debug)]
#[command(
    name = "dnabert",
    version,
    about = "DNABERT over overlapping DNA k-mers: embed genomes, pretrain, fine-tune and predict \
             (CPU, or GPU with --device cuda), from model folders or Hugging Face Hub ids; \
             scatter/gather helpers for workflow engines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Embed every sequence of a FASTA file (plain or gzip) with a DNABERT model.
    ///
    /// Writes PREFIX.npy (float32, rows × hidden_size; numpy.load opens it) and PREFIX.tsv
    /// (columns seq_id, start, end, row: 0-based, end-exclusive base coordinates, and the first
    /// .npy row of that sequence or window). Both appear only when the run completes.
    ///
    /// Rows: by default one per k-mer, row `row + i` being the k-mer that starts at base
    /// `start + i`; with --per-nucleotide one per base; with --pooling cls|mean one per window.
    /// Sequences longer than a window are cut into overlapping windows, and each k-mer is taken
    /// from the window in which it lies furthest from an edge.
    Embed(embed::Args),
    /// Write the model's encoder as DIR/model.onnx.
    ///
    /// Opset 17, dynamic batch and sequence axes; ONNX Runtime runs it too.
    #[cfg(feature = "onnx")]
    ExportOnnx(onnx_export::Args),
    /// Fetch a model from the Hugging Face Hub into the Hub cache.
    ///
    /// The cache is the one Python's huggingface_hub uses, for machines or cluster nodes that
    /// have no network later. Reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_TOKEN as huggingface_hub does (the token
    /// is sent to the endpoint's host only, never printed). Prints the local folder.
    Download(hub::DownloadArgs),
    /// Write a model's weights as model.safetensors, from any checkpoint it has.
    ///
    /// f32, atomically, from pytorch_model.bin, shards, f16/bf16: loading is then fast and runs
    /// no pickle. In place by default (pytorch_model.bin may then be removed; safetensors is read first);
    /// with --output, a complete new folder. Missing tokenizer_config.json and
    /// special_tokens_map.json are written, so transformers' AutoTokenizer reads the k-mers.
    Convert(convert::Args),
    /// Make a fresh model folder from a YAML model shape.
    ///
    /// Weights drawn N(0, 0.02), as BERT does; the shape is k, layers, hidden, heads,
    /// intermediate, max_positions, and optionally seed (`dnabert config-reference init`).
    Init(init::Args),
    /// Masked-language-model pretraining over a genome, from a YAML config.
    ///
    /// The config's keys: `dnabert config-reference pretrain`. Checkpoints every
    /// `checkpoint_every` steps; --resume continues from the last one with the same losses as an
    /// uninterrupted run. The flags below replace the config's paths (relative to the working directory, not to the
    /// config), so one config serves every input a workflow engine hands in.
    Pretrain(pretrain::Args),
    /// Fine-tune a model for sequence classification, from a YAML config.
    ///
    /// The config's keys: `dnabert config-reference finetune`. Tables of `sequence,label` (raw
    /// DNA or DNABERT's space-separated k-mers); DNABERT's [CLS] head or BioNeMo's centre-token
    /// head. The flags below replace the config's paths (relative to the working directory).
    Finetune(finetune::Args),
    /// Class probabilities from a fine-tuned model, per row of a table or per window of a FASTA.
    Predict(predict::Args),
    /// Build the splice-site dataset (donor / acceptor / neither windows) from a genome and its
    /// annotation.
    ///
    /// Writes DIR/{train,validation,test}.tsv and DIR/summary.{json,md}. Sites come from
    /// multi-exon transcripts (donors: exon 3' ends but the last; acceptors: exon 5' starts but
    /// the first, in transcript orientation). Negatives (--negative-kind): decoys with GT or AG
    /// where a site's would be, from the same genes (default), random gene-body positions, or
    /// random intron positions; at least --margin bases from any site. Split (--split) by gene
    /// (default), at random per class, or by chromosome. Windows of --window bases read 5'→3'
    /// along the transcript (reverse-complemented on the minus strand); windows off the
    /// sequence or with N are dropped and counted. Labels: donor 0, acceptor 1, neither 2.
    /// The tables are make-dataset's (columns chrom, start, end, strand, class, label, group,
    /// sequence); plugins/splice-sites is this task as a plugin. Fine-tune on them with
    /// `head: centre`.
    SpliceSites(splice::Options),
    /// A fine-tuning dataset from a genome, its annotation and a task plugin (WebAssembly).
    ///
    /// The plugin (docs/plugins.md; examples in plugins/) sees each transcript with its exons
    /// (and, when it asks, the annotation's lines of the types it names: GFF3, GTF or BED)
    /// and emits labelled windows; dnabert drops windows with bases other than A/C/G/T, takes
    /// the reverse complement on the minus strand, merges duplicates, caps each label, splits
    /// (--split) by group, at random per label or by chromosome, as splice-sites does, and
    /// writes {train,validation,test}.tsv and
    /// summary.{json,md}. The plugin runs sandboxed: no files, network or clock, capped memory
    /// and fuel.
    MakeDataset(crate::sandbox::dataset::Options),
    /// The seed's splice-site tables from fine-tuning's test predictions.
    ///
    /// Donor and acceptor accuracy, MCC, F1 and their averages, from TSVs with `label` and
    /// `predicted` columns (finetune's test_predictions.tsv, one per seed: mean ± sd and
    /// bootstrap intervals), beside the GT/AG rule (--test), a PWM (--train) and another model
    /// (--versus) on the same rows. Writes PREFIX.json and PREFIX.md and prints the Markdown.
    SpliceReport(splice::ReportArgs),
    /// An HTML report (with SVG charts and MultiQC files) of runs and outputs.
    ///
    /// From pretrain run folders (loss, masked accuracy, learning rate, tokens/s against
    /// steps), finetune run folders (curves, per-class test metrics, confusion matrix),
    /// splice-report JSON files (the donor/acceptor tables) and embed outputs (norms, a 2-D
    /// projection coloured by record). Writes DIR/report.html (self-contained: open it
    /// anywhere), DIR/*.svg and DIR/*_mqc.json (MultiQC's custom content); prints the page's path.
    Report(crate::report::Args),
    /// Cut a genome FASTA into chunks for scatter (one `embed` task per chunk).
    ///
    /// Writes DIR/chunk_NNNNN.fa and DIR/manifest.tsv (chunk, piece_id, seq_id, offset, length).
    /// Chunks hold whole records in input order, at most --chunk-bases bases each. Only a record
    /// longer than that is cut, into pieces named ID:START-END (1-based, inclusive) that each
    /// start a chunk; the k-1 k-mers across a cut are not embedded. `gather-embeddings` puts the
    /// pieces back under their record's name and coordinates.
    SplitFasta(scatter::SplitArgs),
    /// Join per-chunk `embed` outputs into one PREFIX.npy + PREFIX.tsv.
    ///
    /// In genome order, as if the genome had been embedded in one run (cut records come back as
    /// rows of their record).
    GatherEmbeddings(scatter::GatherArgs),
    /// Which CUDA libraries this machine loads, and whether every GPU kernel compiles.
    ///
    /// Kernels compile through NVRTC for the given architectures; `--run` runs every GPU check
    /// against the CPU and PyTorch (exit 1 on a failure, 77 without a usable GPU), `--bench`
    /// times DNABERT-base. The GPU backend itself is experimental: it has never run on a GPU
    /// yet.
    CudaCheck(cuda::CheckArgs),
    /// Print DNABERT's vocab.txt for k-mers of length K (3 to 6).
    Vocab(vocab::Args),
    /// Every key of the pretrain, finetune and init YAML configs: type, default, meaning.
    ConfigReference(config_reference::Args),
}

impl Command {
    /// Runs the subcommand: what it prints goes to stdout, progress and summaries to stderr.
    pub fn run(self) -> Result<()> {
        match self {
            Command::Embed(a) => a.run(),
            #[cfg(feature = "onnx")]
            Command::ExportOnnx(a) => a.run(),
            Command::Download(a) => a.run(),
            Command::Convert(a) => a.run(),
            Command::Init(a) => a.run(),
            Command::Pretrain(a) => a.run(),
            Command::Finetune(a) => a.run(),
            Command::Predict(a) => a.run(),
            Command::SpliceSites(a) => a.run(),
            Command::MakeDataset(a) => a.run(),
            Command::SpliceReport(a) => a.run(),
            Command::Report(a) => a.run(),
            Command::SplitFasta(a) => a.run(),
            Command::GatherEmbeddings(a) => a.run(),
            Command::CudaCheck(a) => a.run(),
            Command::Vocab(a) => a.run(),
            Command::ConfigReference(a) => a.run(),
        }
    }
}

/// One line on stdout; a failed write (a full disk under a redirect) is an error, not a panic.
/// An error that ends the process with its own exit status instead of 1 (`main.rs` looks for
/// it): `cuda-check --run` on a machine without a usable GPU exits 77, "skipped".
#[derive(Debug)]
pub struct ExitWith {
    pub code: u8,
    pub message: String,
}

impl Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}

pub fn say(line: impl Display) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{line}").context("cannot write to stdout")
}

/// The subcommands' names, as a user types them.
pub fn subcommands() -> Vec<String> {
    use clap::CommandFactory;
    Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent_and_every_flag_says_what_it_does() {
        Cli::command().debug_assert();
        let mut missing = vec![];
        for sub in Cli::command().get_subcommands() {
            assert!(sub.get_about().is_some(), "{}: no help", sub.get_name());
            for arg in sub.get_arguments() {
                if arg.get_help().is_none() && arg.get_id() != "help" {
                    missing.push(format!("{} {}", sub.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }
}
