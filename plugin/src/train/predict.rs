//! `dnabert predict`: class probabilities from a fine-tuned `BertForSequenceClassification`
//! folder, per sequence of a table or per window of a FASTA file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::backend::Backend;
use super::cpu::Cpu;
use super::finetune::{probabilities, read_table};
use super::params::Params;
use super::store;
use crate::fasta::FastaReader;
use crate::io_util::AtomicFile;
use crate::layout::Layout;
use crate::model_dir::ModelDir;

/// (id, start, end, true label if known, sequence)
type Row = (String, usize, usize, Option<usize>, Vec<u8>);

/// `dnabert predict`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A fine-tuned model: its folder (finetune's RUN/model) or a Hub id ORG/NAME[@REV].
    #[arg(long)]
    pub model: PathBuf,
    /// FASTA (plain or gzip; each record cut into the model's windows), or a CSV/TSV table of
    /// sequence,label; or an https:// URL.
    #[arg(long)]
    pub input: PathBuf,
    /// Output TSV: id, start, end, predicted class, [label,] probability per class.
    #[arg(long)]
    pub output: PathBuf,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub place: crate::device::Placement,
}

impl Args {
    /// `dnabert predict`: prints the table it wrote and its number of rows.
    pub fn run(self) -> Result<()> {
        let be = crate::device::open(self.place, crate::device::threads(self.threads))?;
        let n = crate::on_backend!(be, |b| run_on(
            &b,
            &self.model,
            &self.input,
            &self.output,
            self.batch_size
        )?);
        crate::cli::say(format!("{}\t{n} rows", self.output.display()))
    }
}

/// Writes `id start end predicted prob_0 … prob_{n-1}` (plus `label` for tables), atomically.
pub fn run(model_dir: &Path, input: &Path, output: &Path, batch: usize) -> Result<usize> {
    run_on(
        &Cpu::new(super::default_threads()),
        model_dir,
        input,
        output,
        batch,
    )
}

/// [`run`] on any backend: the same classifier forward pass as fine-tuning's evaluation, so a
/// model fine-tuned on one device predicts with the same numbers on another.
pub fn run_on<B: Backend>(
    be: &B,
    model_dir: &Path,
    input: &Path,
    output: &Path,
    batch: usize,
) -> Result<usize> {
    let model = ModelDir::open(model_dir)?;
    let ck = model.checkpoint()?;
    let Layout::Classifier { labels: n, head } = ck.layout() else {
        bail!(
            "{}: not a sequence classifier (no classifier.weight nor classifier.out_proj.weight); fine-tune it first",
            model.path.display()
        );
    };
    let mut host = Params::for_layout(Layout::Classifier { labels: n, head }, &model.config);
    store::fill(&mut host, &ck, &model.config, |_| false)?;
    drop(ck);
    let params = host.to_backend(be);

    let window = model.trained_window();
    let input = &crate::remote::local(input)?;
    let k = model.k();
    let mut rows: Vec<Row> = vec![];
    let first_bytes = crate::io_util::head(input, 2)?;
    let is_fasta = first_bytes.first() == Some(&b'>') || crate::io_util::is_gzip(&first_bytes);
    if is_fasta {
        let mut reader = FastaReader::open(input)?;
        while let Some(rec) = reader.next_record() {
            let rec = rec?;
            let n_tokens = model.tokenizer.num_kmers(rec.seq.len());
            if n_tokens == 0 {
                bail!(
                    "{}: record '{}' is shorter than k = {k}",
                    input.display(),
                    rec.id
                );
            }
            for start in (0..n_tokens).step_by(window) {
                let end = (start + window).min(n_tokens) + k - 1;
                rows.push((
                    rec.id.to_owned(),
                    start,
                    end,
                    None,
                    rec.seq[start..end].to_vec(),
                ));
            }
        }
    } else {
        for (i, e) in read_table(input, n)?.into_iter().enumerate() {
            let len = e.seq.len();
            rows.push((format!("row{}", i + 1), 0, len, Some(e.label), e.seq));
        }
    }
    let seqs: Vec<&[u8]> = rows.iter().map(|r| r.4.as_slice()).collect();
    let probs = probabilities(be, &model, &params, head, &seqs, n, batch);
    if let Some(i) = probs.iter().position(|p| p.iter().any(|x| !x.is_finite())) {
        bail!(
            "{}: the model computed a non-finite probability (NaN or Inf) for {}: its weights \
             or config.json are broken; nothing was written",
            model.path.display(),
            rows[i].0
        );
    }
    let mut out = AtomicFile::create(output)?;
    let probs_header: Vec<String> = (0..n).map(|i| format!("prob_{i}")).collect();
    let label_col = if is_fasta { "" } else { "\tlabel" };
    writeln!(
        out,
        "id\tstart\tend\tpredicted{label_col}\t{}",
        probs_header.join("\t")
    )?;
    for ((id, start, end, label, _), p) in rows.iter().zip(&probs) {
        let pred = super::argmax(p);
        let label = label.map(|l| format!("\t{l}")).unwrap_or_default();
        let ps: Vec<String> = p.iter().map(|x| format!("{x:.6}")).collect();
        writeln!(
            out,
            "{id}\t{start}\t{end}\t{pred}{label}\t{}",
            ps.join("\t")
        )?;
    }
    out.commit()?;
    Ok(rows.len())
}
