//! The `dnabert` executor: one binary that pipelines call for each stage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use dnabert::cuda::backend::Gpu;
use dnabert::device::{Device, Precision};
use dnabert::embed::{self, EmbedOptions, Pooling};
use dnabert::model_dir::ModelDir;
use dnabert::vocab;

#[derive(Parser)]
#[command(
    name = "dnabert",
    version,
    about = "DNABERT over overlapping DNA k-mers: embed genomes, pretrain, fine-tune and predict, on CPU; scatter/gather helpers for workflow engines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    Embed(EmbedArgs),
    /// Write the model's encoder as DIR/model.onnx (dynamic batch and sequence axes).
    ExportOnnx {
        /// Model folder (config.json, vocab.txt, and weights).
        #[arg(long)]
        model: PathBuf,
    },
    /// Fetch a model from the Hugging Face Hub into the Hub cache (the one Python's
    /// huggingface_hub uses), for machines or cluster nodes that have no network later.
    ///
    /// Reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_TOKEN as huggingface_hub does (the token
    /// is sent to the endpoint's host only, never printed). Prints the local folder.
    Download {
        /// ORG/NAME, or ORG/NAME@REVISION (a branch, tag or commit; default main).
        model: String,
        /// Also copy the files into this plain folder (no links into the cache), for a
        /// pipeline to stage or a node without the cache.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Write a model's weights as model.safetensors (f32, atomically), from any checkpoint it
    /// has (pytorch_model.bin, shards, f16/bf16): loading is then fast and runs no pickle.
    ///
    /// In place by default (pytorch_model.bin may then be removed; safetensors is read first);
    /// with --output, a complete new folder. Missing tokenizer_config.json and
    /// special_tokens_map.json are written, so transformers' AutoTokenizer reads the k-mers.
    Convert {
        /// Model folder, or a Hub id (then --output is needed).
        #[arg(long)]
        model: PathBuf,
        /// Folder to write [default: the model folder itself].
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Make a fresh model folder (weights drawn N(0, 0.02), as BERT does) from a YAML shape:
    /// k, layers, hidden, heads, intermediate, max_positions, and optionally seed.
    Init {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Masked-language-model pretraining over a genome, from a YAML config (see
    /// tests/configs/pretrain-chrx-small.yaml). Checkpoints every `checkpoint_every` steps; --resume continues
    /// from the last one with the same losses as an uninterrupted run.
    ///
    /// The flags below replace the config's paths (relative to the working directory, not to the
    /// config), so one config serves every input a workflow engine hands in.
    Pretrain {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        place: Placement,
        #[arg(long)]
        resume: bool,
        /// Data-parallel training over GPUs with NCCL (experimental, never run): start one
        /// process per GPU with `srun --kill-on-bad-exit=1` (or set RANK, WORLD_SIZE, LOCAL_RANK
        /// and DNABERT_JOB_ID);
        /// each takes its node-local GPU and grad_accumulation / world micro-batches per step.
        /// Rank 0 writes the run folder, which every rank must see. Needs --device cuda.
        #[arg(long)]
        distributed: bool,
        /// Genome FASTA files to sample from, replacing data.fasta (repeat or comma-separate);
        /// https:// URLs are downloaded once and cached.
        #[arg(long, value_delimiter = ',')]
        fasta: Vec<PathBuf>,
        /// Continue from this model (a folder or a Hub id), replacing init_from (and the
        /// config's model shape).
        #[arg(long)]
        init_from: Option<PathBuf>,
        /// Run folder, replacing output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// CPU threads, replacing training.threads.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Fine-tune a model for sequence classification (DNABERT's head) from a YAML config:
    /// a table of `sequence,label` (raw DNA or DNABERT's space-separated k-mers).
    ///
    /// The flags below replace the config's paths (relative to the working directory).
    Finetune {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        place: Placement,
        /// Model to start from (a folder or a Hub id), replacing model.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Training table, replacing train.
        #[arg(long)]
        train: Option<PathBuf>,
        /// Validation table, replacing validation.
        #[arg(long)]
        validation: Option<PathBuf>,
        /// Test table, replacing test.
        #[arg(long)]
        test: Option<PathBuf>,
        /// Run folder, replacing output.
        #[arg(long)]
        output: Option<PathBuf>,
        /// CPU threads, replacing threads.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Class probabilities from a fine-tuned model, per row of a table or per window of a FASTA.
    Predict {
        /// A fine-tuned model: its folder (finetune's RUN/model) or a Hub id ORG/NAME[@REV].
        #[arg(long)]
        model: PathBuf,
        /// FASTA (plain or gzip), or a CSV/TSV table of sequence,label; or an https:// URL.
        #[arg(long)]
        input: PathBuf,
        /// Output TSV: id, start, end, predicted class, [label,] probability per class.
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch_size: usize,
        #[command(flatten)]
        place: Placement,
    },
    /// Build the splice-site dataset (donor / acceptor / neither windows) from a genome and its
    /// GFF3 or GTF annotation: DIR/{train,validation,test}.tsv and DIR/summary.{json,md}.
    ///
    /// Sites come from multi-exon transcripts (donors: exon 3' ends but the last; acceptors:
    /// exon 5' starts but the first, in transcript orientation). Negatives are random intron
    /// positions of the same transcripts, at least --margin bases from any site. Windows of
    /// --window bases, the site at index window/2, reverse-complemented on the minus strand;
    /// windows off the sequence or with N are dropped and counted. Labels: donor 0, acceptor 1,
    /// neither 2. Fine-tune on them with `head: centre`.
    SpliceSites {
        /// Genome FASTA, plain or gzip, or an https:// URL (URL#sha256=HEX to check it).
        #[arg(long)]
        fasta: PathBuf,
        /// GFF3 (gene → mRNA/transcript → exon by Parent) or GTF (by transcript_id); .gz too;
        /// or an https:// URL.
        #[arg(long)]
        annotation: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 400)]
        window: usize,
        #[arg(long, default_value_t = 10_000)]
        max_per_class: usize,
        /// Negatives to draw [default: as many as the larger site class, capped alike].
        #[arg(long)]
        negatives: Option<usize>,
        #[arg(long, default_value_t = 50)]
        margin: u64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Hold these chromosomes out for validation (comma-separated) instead of 80/10/10.
        #[arg(long, value_delimiter = ',')]
        validation_chroms: Vec<String>,
        /// Hold these chromosomes out for testing (comma-separated).
        #[arg(long, value_delimiter = ',')]
        test_chroms: Vec<String>,
    },
    /// The seed's splice-site tables (donor and acceptor accuracy, MCC, F1 and their averages)
    /// from a TSV with `label` and `predicted` columns (finetune's test_predictions.tsv).
    /// Writes PREFIX.json and PREFIX.md and prints the Markdown.
    SpliceReport {
        #[arg(long)]
        predictions: PathBuf,
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value = "Splice sites")]
        title: String,
    },
    /// Cut a genome FASTA into chunks for scatter (one `embed` task per chunk): DIR/chunk_NNNNN.fa
    /// and DIR/manifest.tsv (chunk, piece_id, seq_id, offset, length).
    ///
    /// Chunks hold whole records in input order, at most --chunk-bases bases each. Only a record
    /// longer than that is cut, into pieces named ID:START-END (1-based, inclusive) that each
    /// start a chunk; the k-1 k-mers across a cut are not embedded. `gather-embeddings` puts the
    /// pieces back under their record's name and coordinates.
    SplitFasta {
        /// Genome FASTA, plain or gzip, or an https:// URL (downloaded once and cached).
        #[arg(long)]
        input: PathBuf,
        /// Output folder.
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value_t = 10_000_000)]
        chunk_bases: u64,
    },
    /// Join per-chunk `embed` outputs into one PREFIX.npy + PREFIX.tsv, in genome order, as if
    /// the genome had been embedded in one run (cut records come back as rows of their record).
    GatherEmbeddings {
        /// manifest.tsv from `split-fasta`.
        #[arg(long)]
        manifest: PathBuf,
        /// Output prefix.
        #[arg(long)]
        output: PathBuf,
        /// Per-chunk outputs (chunk_NNNNN.npy/.tsv, or their prefixes), in any order.
        #[arg(required = true)]
        parts: Vec<PathBuf>,
    },
    /// Which CUDA libraries this machine loads, and whether every GPU kernel compiles through
    /// NVRTC for the given architectures (the GPU backend that runs them is not built yet).
    CudaCheck {
        #[arg(long, value_delimiter = ',', default_values_t = ["sm_80".to_string(), "sm_90".to_string()])]
        arch: Vec<String>,
    },
    /// Print DNABERT's vocab.txt for k-mers of length K (3 to 6).
    Vocab {
        #[arg(long, default_value_t = 6)]
        k: usize,
    },
}

#[derive(Args)]
struct EmbedArgs {
    /// Model: a folder in the Hugging Face layout (config.json, vocab.txt, model.safetensors or
    /// pytorch_model.bin, and optionally a model.onnx, then used as is), or a Hub id
    /// ORG/NAME[@REVISION] (fetched into the Hub cache; HF_TOKEN, HF_HUB_OFFLINE honoured).
    #[arg(long)]
    model: PathBuf,
    /// FASTA file, plain or gzip-compressed; or an https:// URL, downloaded once into
    /// $DNABERT_CACHE (default ~/.cache/dnabert), resumed if cut, reused while unchanged.
    #[arg(long)]
    input: PathBuf,
    /// The input's sha256 (hex), checked before it is read (for a URL, also URL#sha256=HEX).
    #[arg(long)]
    sha256: Option<String>,
    /// Output prefix: writes PREFIX.npy and PREFIX.tsv.
    #[arg(long)]
    output: PathBuf,
    /// none: a row per k-mer; cls: the [CLS] vector per window; mean: the mean of a window's k-mers.
    #[arg(long, value_enum, default_value_t = Pooling::None)]
    pooling: Pooling,
    /// A row per base: the mean of the k-mers that cover it (only with --pooling none).
    #[arg(long)]
    per_nucleotide: bool,
    /// k-mer tokens per window [default: the longest the model was trained on:
    /// model_max_length - 2 from its tokenizer_config.json, else max_position_embeddings - 2].
    #[arg(long)]
    window_tokens: Option<usize>,
    /// k-mer tokens shared by neighbouring windows [default: 64, or a quarter of a window
    /// shorter than 256].
    #[arg(long)]
    overlap_tokens: Option<usize>,
    /// Windows per inference batch. On CPU, 1 is fastest (measured at DNABERT-base size, for
    /// full windows and for 101-bp records alike); larger batches mix padding into the work.
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// CPU threads in all [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Threads that share one window's matrix products. The default, 1, runs a window per
    /// thread, which gives the most throughput; more lowers the latency of a single window.
    #[arg(long, default_value_t = 1)]
    threads_per_window: usize,
    /// No progress output on stderr.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    place: Placement,
}

/// `--device` and `--precision`, for the stages that can run on a GPU.
#[derive(clap::Args, Debug, Clone, Copy)]
struct Placement {
    /// Where to run: cpu, or cuda[:N] (experimental: written without a GPU and not yet run on
    /// one).
    #[arg(long, default_value = "cpu")]
    device: Device,
    /// The GPU's matrix products: fp32, or bf16 (mixed precision: bf16 copies of each
    /// product's inputs, fp32 accumulation; weights, gradients, optimizer state and
    /// checkpoints stay fp32). The CPU computes in fp32 only.
    #[arg(long, default_value = "fp32")]
    precision: Precision,
}

impl Placement {
    /// The GPU ordinal and precision, or `None` for the CPU; bf16 on the CPU is refused, not
    /// ignored.
    fn target(self) -> Result<Option<(usize, Precision)>> {
        match (self.device, self.precision) {
            (Device::Cpu, Precision::F32) => Ok(None),
            (Device::Cpu, p) => anyhow::bail!(
                "--precision {p} runs on a GPU only (--device cuda); the CPU computes in fp32"
            ),
            (Device::Cuda(n), p) => Ok(Some((n, p))),
        }
    }

    /// The GPU to run on, opened, or `None` for the CPU.
    fn gpu(self) -> Result<Option<Gpu>> {
        self.target()?
            .map(|(n, p)| Gpu::new(n).map(|g| g.with_precision(p)))
            .transpose()
    }
}

fn embed(a: EmbedArgs) -> Result<()> {
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let opts = EmbedOptions {
        model: a.model,
        input: dnabert::remote::local_checked(&a.input, a.sha256.as_deref())?,
        output: a.output,
        pooling: a.pooling,
        per_nucleotide: a.per_nucleotide,
        window_tokens: a.window_tokens,
        overlap_tokens: a.overlap_tokens,
        batch_size: a.batch_size,
        threads,
        threads_per_window: a.threads_per_window,
        progress: !a.quiet,
        compute: match a.place.target()? {
            None => embed::Compute::Tract,
            Some((n, p)) => embed::Compute::Cuda(n, p),
        },
    };
    let s = embed::run(&opts)?;
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
    println!("{}\t{} rows", s.npy.display(), s.rows);
    println!("{}", s.tsv.display());
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InitConfig {
    k: usize,
    layers: usize,
    hidden: usize,
    heads: usize,
    intermediate: usize,
    #[serde(default = "max_positions")]
    max_positions: usize,
    #[serde(default)]
    seed: u64,
}

fn max_positions() -> usize {
    512
}

fn init(config: &std::path::Path, output: &std::path::Path) -> Result<()> {
    use dnabert::layout::Layout;
    use dnabert::train::{params::Params, store};
    let (c, _): (InitConfig, _) = dnabert::train::load_yaml(config)?;
    let shape = dnabert::train::pretrain::ModelShape {
        k: c.k,
        layers: c.layers,
        hidden: c.hidden,
        heads: c.heads,
        intermediate: c.intermediate,
        max_positions: c.max_positions,
    };
    let bert = shape.bert_config()?;
    let mut params = Params::bert_mlm(&bert);
    store::init(&mut params, c.seed, |_| true);
    let description = dnabert::folder::Description {
        layout: Layout::Mlm,
        k: c.k,
        model_max_length: bert.max_position_embeddings,
        labels: vec![],
        title: "A DNABERT with random weights, made by dnabert init".into(),
        summary: "Weights drawn N(0, 0.02) as BERT initialises them: never trained. The start of \
                  `dnabert pretrain`, or a from-scratch baseline for fine-tuning."
            .into(),
        facts: vec![("seed".into(), c.seed.to_string())],
        base_model: None,
    };
    store::save_folder(output, &bert, &params, &description)?;
    println!("{}", output.display());
    Ok(())
}

/// `dnabert convert`: every tensor of the checkpoint, canonical names, as model.safetensors.
fn convert(model: &std::path::Path, output: Option<&std::path::Path>) -> Result<()> {
    use dnabert::folder;
    let m = ModelDir::open(model)?;
    let out = match output {
        Some(o) => o.to_owned(),
        None if model.is_dir() => model.to_owned(),
        None => anyhow::bail!(
            "{}: a Hub model lives in the Hub cache; give --output for the converted folder",
            model.display()
        ),
    };
    let read = std::time::Instant::now();
    let ck = m.checkpoint()?;
    ck.check_layers(&m.config)?;
    let read = read.elapsed().as_secs_f64();
    std::fs::create_dir_all(&out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create: {e}", out.display()))?;
    if out != m.path {
        for f in [
            "config.json",
            "vocab.txt",
            folder::TOKENIZER_CONFIG,
            folder::SPECIAL_TOKENS_MAP,
            folder::CARD,
            folder::CENTRE_HEAD_CODE,
        ] {
            let from = m.path.join(f);
            if from.is_file() {
                let bytes = std::fs::read(&from)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", from.display()))?;
                dnabert::io_util::write_atomic(&out.join(f), &bytes)?;
            }
        }
    }
    // A folder that transformers' AutoTokenizer would lower-case into [UNK] gets DNABERT's
    // tokenizer files; a folder's own files are kept.
    let json = |v: serde_json::Value| serde_json::to_string_pretty(&v).expect("JSON") + "\n";
    if !out.join(folder::TOKENIZER_CONFIG).exists() {
        let tc = folder::tokenizer_config(m.model_max_length);
        dnabert::io_util::write_atomic(&out.join(folder::TOKENIZER_CONFIG), json(tc).as_bytes())?;
    }
    if !out.join(folder::SPECIAL_TOKENS_MAP).exists() {
        let st = folder::special_tokens_map();
        dnabert::io_util::write_atomic(&out.join(folder::SPECIAL_TOKENS_MAP), json(st).as_bytes())?;
    }
    let names = ck.names();
    let tensors: Vec<(String, Vec<usize>, &[f32])> = names
        .iter()
        .map(|n| {
            let t = ck.get(n).expect("listed");
            (n.to_string(), t.shape.clone(), t.data.as_slice())
        })
        .collect();
    let dest = out.join("model.safetensors");
    let write = std::time::Instant::now();
    dnabert::train::store::save_tensors(&dest, &tensors)?;
    eprintln!(
        "convert: {} tensors read from {} in {read:.2} s, written to {} in {:.2} s",
        tensors.len(),
        ck.source.display(),
        dest.display(),
        write.elapsed().as_secs_f64()
    );
    if out == m.path && ck.source != dest {
        eprintln!(
            "convert: {} is no longer read (model.safetensors comes first) and may be removed",
            ck.source.display()
        );
    }
    println!("{}", out.display());
    Ok(())
}

/// `pretrain --distributed`: this process's rank of a launch, on its GPU, in NCCL's group.
fn pretrain_distributed(
    place: Placement,
    c: &dnabert::train::pretrain::PretrainConfig,
    resume: bool,
    limit: dnabert::train::pretrain::RunLimit,
) -> Result<std::path::PathBuf> {
    use dnabert::cuda::nccl;
    let Some((_, precision)) = place.target()? else {
        anyhow::bail!("--distributed runs on GPUs: add --device cuda");
    };
    let env = |k: &str| std::env::var(k).ok();
    let launch = dnabert::train::ranks::Launch::from_env(env)?;
    let gpu = nccl::gpu_for(&launch, precision)?;
    let group = nccl::Nccl::join(
        &gpu,
        &launch,
        &nccl::rendezvous_path(&c.output, &launch, env)?,
    )?;
    dnabert::train::pretrain::run_ranked(&gpu, &group, c, resume, limit)
}

fn cuda_check(archs: &[String]) -> Result<()> {
    use dnabert::cuda;
    let libs = cuda::libraries();
    let found = |present| if present { "found" } else { "not found" };
    println!("driver (libcuda)\t{}", found(libs.driver));
    println!("nvrtc\t{}", found(libs.nvrtc));
    println!("cublas\t{}", found(libs.cublas));
    for arch in archs {
        let arch: &'static str = cuda::ARCHS.iter().find(|a| **a == arch).ok_or_else(|| {
            anyhow::anyhow!("--arch {arch}: expected one of {}", cuda::ARCHS.join(", "))
        })?;
        for (family, src) in cuda::FAMILIES {
            let ptx = cuda::compile(family, arch)?;
            println!(
                "{arch}\t{family}.cu\t{} kernels\t{} bytes of PTX",
                cuda::kernel_names(src).len(),
                ptx.len()
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // Die quietly when the reader of stdout goes away (`dnabert split-fasta … | head`), as Unix
    // tools do, instead of panicking on the failed write: Rust ignores SIGPIPE by default.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(a) => embed(a),
        Command::ExportOnnx { model } => ModelDir::open(&model)
            .and_then(|m| m.export_onnx())
            .map(|p| println!("{}", p.display())),
        Command::Download { model, output } => dnabert::hub::download(&model, output.as_deref())
            .map(|dir| println!("{}", dir.display())),
        Command::Convert { model, output } => convert(&model, output.as_deref()),
        Command::Init { config, output } => init(&config, &output),
        Command::Pretrain {
            config,
            place,
            resume,
            distributed,
            fasta,
            init_from,
            output,
            threads,
        } => dnabert::train::pretrain::PretrainConfig::load(&config)
            .map(|mut c| {
                if !fasta.is_empty() {
                    c.data.fasta = fasta;
                }
                if init_from.is_some() {
                    c.init_from = init_from;
                    c.model = None;
                }
                c.output = output.unwrap_or(c.output);
                c.training.threads = threads.unwrap_or(c.training.threads);
                c
            })
            .and_then(|c| {
                let limit = dnabert::train::pretrain::RunLimit { stop_after: None };
                if distributed {
                    return pretrain_distributed(place, &c, resume, limit);
                }
                match place.gpu()? {
                    None => dnabert::train::pretrain::run(&c, resume, limit),
                    Some(gpu) => dnabert::train::pretrain::run_on(&gpu, &c, resume, limit),
                }
            })
            .map(|dir| println!("{}", dir.display())),
        Command::Finetune {
            config,
            place,
            model,
            train,
            validation,
            test,
            output,
            threads,
        } => dnabert::train::finetune::FinetuneConfig::load(&config)
            .map(|mut c| {
                c.model = model.unwrap_or(c.model);
                c.train = train.unwrap_or(c.train);
                c.validation = validation.or(c.validation);
                c.test = test.or(c.test);
                c.output = output.unwrap_or(c.output);
                c.threads = threads.unwrap_or(c.threads);
                c
            })
            .and_then(|c| match place.gpu()? {
                None => dnabert::train::finetune::run(&c),
                Some(gpu) => dnabert::train::finetune::run_on(&gpu, &c),
            })
            .map(|dir| println!("{}", dir.display())),
        Command::Predict {
            model,
            input,
            output,
            batch_size,
            place,
        } => place
            .gpu()
            .and_then(|gpu| match gpu {
                None => dnabert::train::predict::run(&model, &input, &output, batch_size),
                Some(gpu) => {
                    dnabert::train::predict::run_on(&gpu, &model, &input, &output, batch_size)
                }
            })
            .map(|n| println!("{}\t{n} rows", output.display())),
        Command::SpliceSites {
            fasta,
            annotation,
            output,
            window,
            max_per_class,
            negatives,
            margin,
            seed,
            validation_chroms,
            test_chroms,
        } => {
            let o = dnabert::splice::Options {
                fasta,
                annotation,
                output: output.clone(),
                window,
                max_per_class,
                negatives,
                margin,
                seed,
                validation_chroms,
                test_chroms,
            };
            dnabert::splice::run(&o).map(|s| {
                eprintln!(
                    "splice-sites: wrote {} (GT donors {:.1}%, AG acceptors {:.1}%)",
                    output.display(),
                    100.0 * s.donors_with_gt,
                    100.0 * s.acceptors_with_ag
                )
            })
        }
        Command::SpliceReport {
            predictions,
            output,
            title,
        } => dnabert::splice::report_from_predictions(&predictions, &output, &title).map(|r| {
            print!("{}", dnabert::splice::report::markdown(&r, &title));
        }),
        Command::SplitFasta {
            input,
            output,
            chunk_bases,
        } => dnabert::scatter::split_fasta(&input, &output, chunk_bases).map(|s| {
            eprintln!(
                "split-fasta: {} records ({} bases) into {} chunks, {} pieces",
                s.records,
                s.bases,
                s.chunks.len(),
                s.pieces
            );
            s.chunks.iter().for_each(|c| println!("{}", c.display()));
        }),
        Command::GatherEmbeddings {
            manifest,
            output,
            parts,
        } => dnabert::scatter::gather_embeddings(&manifest, &parts, &output).map(|s| {
            eprintln!(
                "gather-embeddings: {} chunks, {} rows × {}",
                s.chunks, s.rows, s.cols
            );
            let (npy, tsv) = embed::output_paths(&output);
            println!("{}\t{} rows\n{}", npy.display(), s.rows, tsv.display());
        }),
        Command::CudaCheck { arch } => cuda_check(&arch),
        Command::Vocab { k } => {
            if vocab::K_RANGE.contains(&k) {
                print!("{}", vocab::generate(k));
                Ok(())
            } else {
                Err(anyhow::anyhow!("--k {k}: DNABERT uses k = 3..6"))
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
