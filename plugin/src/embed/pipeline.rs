//! The embed stages and the bounded queues between them.
//!
//! Reading, inference and writing are blocking work on threads of their own; batching is an
//! async task. A stage whose downstream has gone stops quietly: the stage that failed reports
//! the error, and the outputs are committed only when every stage succeeded.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc::{channel, Receiver, Sender};

use super::output::{Assembler, Rows, SeqInfo, WindowOut};
use super::{output_paths, windows, EmbedOptions, EmbedSummary, Pooling};
use crate::engine::Infer;
use crate::fasta::FastaReader;
use crate::model_dir::ModelDir;
use crate::sandbox::select::{SelectOptions, Selector};
use crate::tokenizer::Tokenizer;

/// Batches the batcher may hold back to group windows by length.
const LOOKAHEAD_BATCHES: usize = 4;
/// How often progress is logged when stderr is not a terminal (cluster logs).
const LOG_EVERY: Duration = Duration::from_secs(30);

struct Job {
    order: u64,
    seq: Arc<SeqInfo>,
    index: usize,
    start: usize,
    keep: Range<usize>,
    /// The window's k-mer ids, without specials.
    ids: Vec<u32>,
}

#[derive(Default)]
struct ReadStats {
    sequences: usize,
    skipped: Vec<(String, usize)>,
}

/// Awaits every task, in order.
async fn join_all<T>(
    tasks: Vec<tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = vec![];
    for t in tasks {
        out.push(t.await);
    }
    out
}

pub(super) fn run(
    opts: &EmbedOptions,
    model: &ModelDir,
    engine: Arc<dyn Infer>,
    window: usize,
    overlap: usize,
    rows: Rows,
    workers: usize,
) -> Result<EmbedSummary> {
    let started = Instant::now();
    let (npy, tsv) = output_paths(&opts.output);
    // One run per prefix at a time: a second one fails here instead of mixing its files in.
    let _lock = crate::io_util::OutputLock::acquire(&opts.output)?;
    let assembler = Assembler::create(&npy, &tsv, rows, model.k(), model.config.hidden_size)?;
    let queue = opts.batch_size * LOOKAHEAD_BATCHES;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .context("cannot start the pipeline runtime")?;

    let (job_tx, job_rx) = channel(queue);
    let (batch_tx, batch_rx) = channel(2);
    let (out_tx, out_rx) = channel(queue);
    let input = opts.input.clone();
    let select = opts.select.clone();
    let tokenizer = model.tokenizer.clone();
    let packer = Arc::new(model.tokenizer.clone());
    let (batch_size, pooling) = (opts.batch_size, opts.pooling);
    let progress = Progress::new(opts.progress);

    let (read, batched, inferred, written) = runtime.block_on(async move {
        let read = tokio::task::spawn_blocking(move || {
            read_stage(&input, select.as_ref(), &tokenizer, window, overlap, job_tx)
        });
        let batched = tokio::spawn(batch_stage(job_rx, batch_tx, batch_size));
        // Workers share the batch queue; the writer restores input order.
        let batch_rx = Arc::new(Mutex::new(batch_rx));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (engine, batch_rx, out_tx) = (engine.clone(), batch_rx.clone(), out_tx.clone());
                let packer = packer.clone();
                tokio::task::spawn_blocking(move || {
                    infer_stage(&engine, pooling, &packer, &batch_rx, out_tx)
                })
            })
            .collect();
        drop(out_tx);
        let inferred = join_all(handles);
        let written = tokio::task::spawn_blocking(move || write_stage(assembler, out_rx, progress));
        tokio::join!(read, batched, inferred, written)
    });
    let stats = read.context("reader stage panicked")??;
    batched.context("batcher stage panicked")??;
    for worker in inferred {
        worker.context("inference stage panicked")??;
    }
    let (assembler, windows, tokens, mut progress) = written.context("writer stage panicked")??;
    let rows_written = assembler.rows_written();
    assembler.commit()?;
    // "done" only once every stage succeeded and the output is in place.
    progress.finish(windows, tokens);
    Ok(EmbedSummary {
        npy,
        tsv,
        sequences: stats.sequences,
        windows,
        tokens,
        rows: rows_written,
        skipped: stats.skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn read_stage(
    input: &std::path::Path,
    select: Option<&SelectOptions>,
    tokenizer: &Tokenizer,
    window: usize,
    overlap: usize,
    tx: Sender<Job>,
) -> Result<ReadStats> {
    let mut selector = select.map(|s| Selector::load(s, input)).transpose()?;
    let mut reader = FastaReader::open(input)?;
    let mut stats = ReadStats::default();
    let mut order = 0u64;
    while let Some(record) = reader.next_record() {
        let record = record?;
        stats.sequences += 1;
        // The whole record, or the regions a selector chose, each embedded on its own.
        let pieces: Vec<(usize, &[u8])> = match selector.as_mut() {
            None => vec![(0, record.seq)],
            Some(s) => s
                .regions(record.id, record.seq)?
                .iter()
                .map(|r| {
                    (
                        r.start as usize,
                        &record.seq[r.start as usize..r.end as usize],
                    )
                })
                .collect(),
        };
        for (offset, bases) in pieces {
            let piece = Piece {
                id: record.id,
                offset,
                seq: bases,
                selected: selector.is_some(),
            };
            if !send_piece(
                input, &piece, tokenizer, window, overlap, &mut stats, &mut order, &tx,
            )? {
                return Ok(stats);
            }
        }
    }
    Ok(stats)
}

/// A record, or a selected region of one.
struct Piece<'a> {
    id: &'a str,
    offset: usize,
    seq: &'a [u8],
    selected: bool,
}

/// Sends the windows of one piece; false when the pipeline downstream has stopped.
#[allow(clippy::too_many_arguments)]
fn send_piece(
    input: &std::path::Path,
    piece: &Piece<'_>,
    tokenizer: &Tokenizer,
    window: usize,
    overlap: usize,
    stats: &mut ReadStats,
    order: &mut u64,
    tx: &Sender<Job>,
) -> Result<bool> {
    let k = tokenizer.k;
    let n_tokens = tokenizer.num_kmers(piece.seq.len());
    if n_tokens == 0 {
        let what = if piece.selected {
            format!(
                "region {}:{}-{} (selected)",
                piece.id,
                piece.offset,
                piece.offset + piece.seq.len()
            )
        } else {
            format!("record '{}'", piece.id)
        };
        eprintln!(
            "warning: {}: {what} has {} bases, fewer than k = {k}; it has no k-mer and is skipped",
            input.display(),
            piece.seq.len()
        );
        stats.skipped.push((piece.id.to_owned(), piece.seq.len()));
        return Ok(true);
    }
    // Protein or other non-DNA letters become [UNK] k-mers: say so rather than embed a
    // record of unknowns in silence.
    let not_dna = piece
        .seq
        .iter()
        .filter(|b| !matches!(b.to_ascii_uppercase(), b'A' | b'C' | b'G' | b'T' | b'N'))
        .count();
    if not_dna * 2 > piece.seq.len() {
        eprintln!(
            "warning: {}: record '{}' is mostly not DNA ({not_dna} of {} letters are not \
             A, C, G, T or N: protein?); its k-mers with those letters embed as [UNK]",
            input.display(),
            piece.id,
            piece.seq.len()
        );
    }
    let plan = windows::plan(n_tokens, window, overlap);
    let seq = Arc::new(SeqInfo {
        id: piece.id.to_owned(),
        offset: piece.offset,
        n_bases: piece.seq.len(),
        n_windows: plan.len(),
    });
    for (index, w) in plan.into_iter().enumerate() {
        let mut ids = Vec::with_capacity(w.len);
        tokenizer.kmer_ids(&piece.seq[w.start..w.start + w.len + k - 1], &mut ids);
        let job = Job {
            order: *order,
            seq: seq.clone(),
            index,
            start: w.start,
            keep: w.keep,
            ids,
        };
        *order += 1;
        if tx.blocking_send(job).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn batch_stage(mut rx: Receiver<Job>, tx: Sender<Vec<Job>>, batch_size: usize) -> Result<()> {
    let mut pending: Vec<Job> = Vec::new();
    loop {
        let job = rx.recv().await;
        let closed = job.is_none();
        pending.extend(job);
        if pending.len() >= batch_size * LOOKAHEAD_BATCHES || closed {
            // Stable: windows of one length stay in input order.
            pending.sort_by_key(|j| j.ids.len());
            while !pending.is_empty() {
                let rest = pending.split_off(batch_size.min(pending.len()));
                let batch = std::mem::replace(&mut pending, rest);
                if tx.send(batch).await.is_err() {
                    return Ok(());
                }
            }
        }
        if closed {
            return Ok(());
        }
    }
}

fn infer_stage(
    engine: &Arc<dyn Infer>,
    pooling: Pooling,
    packer: &Tokenizer,
    rx: &Mutex<Receiver<Vec<Job>>>,
    tx: Sender<(u64, WindowOut)>,
) -> Result<()> {
    let h = engine.hidden();
    loop {
        let next = rx
            .lock()
            .map_err(|_| anyhow::anyhow!("another embed worker failed"))?
            .blocking_recv();
        let Some(jobs) = next else {
            return Ok(());
        };
        let rows: Vec<&[u32]> = jobs.iter().map(|j| j.ids.as_slice()).collect();
        let out = engine.run(&packer.pack(&rows))?;
        // The last guard (weights and config are checked when loaded): a NaN never reaches
        // the output, and the run ends before its files are committed.
        if let Some(at) = out.data.iter().position(|v| !v.is_finite()) {
            let j = &jobs[(at / h / out.seq.max(1)).min(jobs.len() - 1)];
            anyhow::bail!(
                "the model computed a non-finite value (NaN or Inf) for the window at k-mer {} of \
                 record '{}': its weights or config.json are broken; nothing was written",
                j.start,
                j.seq.id
            );
        }
        let (hidden, stride) = (&out.data, out.seq);
        for (b, j) in jobs.into_iter().enumerate() {
            let row = |t: usize| &hidden[(b * stride + t) * h..(b * stride + t + 1) * h];
            let rows = match pooling {
                Pooling::None => j
                    .keep
                    .clone()
                    .flat_map(|t| row(1 + t - j.start))
                    .copied()
                    .collect(),
                Pooling::Cls => row(0).to_vec(),
                Pooling::Mean => {
                    let mut mean = vec![0f32; h];
                    for t in 1..=j.ids.len() {
                        mean.iter_mut().zip(row(t)).for_each(|(m, v)| *m += v);
                    }
                    mean.iter_mut().for_each(|m| *m /= j.ids.len() as f32);
                    mean
                }
            };
            let out = WindowOut {
                seq: j.seq,
                index: j.index,
                start: j.start,
                len: j.ids.len(),
                rows,
            };
            if tx.blocking_send((j.order, out)).is_err() {
                return Ok(());
            }
        }
    }
}

fn write_stage(
    mut assembler: Assembler,
    mut rx: Receiver<(u64, WindowOut)>,
    mut progress: Progress,
) -> Result<(Assembler, u64, u64, Progress)> {
    // Batching by length may reorder windows a little; put them back in input order.
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    let mut tokens = 0u64;
    while let Some((order, out)) = rx.blocking_recv() {
        waiting.insert(order, out);
        while let Some(out) = waiting.remove(&next) {
            tokens += out.len as u64;
            progress.update(next + 1, tokens, &out.seq.id);
            assembler.push(out)?;
            next += 1;
        }
    }
    Ok((assembler, next, tokens, progress))
}

/// Windows/s and tokens/s on stderr: a live line on a terminal, a log line now and then elsewhere.
struct Progress {
    bar: Option<ProgressBar>,
    log: bool,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (enabled && tty).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            log: enabled && !tty,
            started: now,
            last_log: now,
        }
    }

    fn line(&self, windows: u64, tokens: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        format!(
            "{windows} windows, {tokens} tokens ({:.1} windows/s, {:.0} tokens/s)",
            windows as f64 / secs,
            tokens as f64 / secs
        )
    }

    fn update(&mut self, windows: u64, tokens: u64, seq: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} | {seq}", self.line(windows, tokens)));
        } else if self.log && self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            eprintln!("embed: {} | {seq}", self.line(windows, tokens));
        }
    }

    fn finish(&mut self, windows: u64, tokens: u64) {
        let shown = self.bar.is_some();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.log || shown {
            eprintln!("embed: done, {}", self.line(windows, tokens));
        }
    }
}
