//! Assembles per-window model outputs, arriving in order, into `PREFIX.npy` and `PREFIX.tsv`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::io_util::AtomicFile;
use crate::npy::NpyWriter;

/// The header of `PREFIX.tsv`, the index of an embeddings file.
pub const INDEX_HEADER: &str = "seq_id\tstart\tend\trow";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// One row per k-mer.
    Tokens,
    /// One row per base: the mean of the k-mers that cover it.
    Nucleotides,
    /// One row per window.
    PerWindow,
}

#[derive(Debug)]
pub struct SeqInfo {
    pub id: String,
    /// Where the embedded bases start on the record (a selected region), else 0.
    pub offset: usize,
    pub n_bases: usize,
    pub n_windows: usize,
}

/// A window's output: the kept token rows (`Tokens`, `Nucleotides`) or its pooled row.
pub struct WindowOut {
    pub seq: Arc<SeqInfo>,
    pub index: usize,
    /// The window's first token (= first base), and its number of tokens.
    pub start: usize,
    pub len: usize,
    pub rows: Vec<f32>,
}

pub struct Assembler {
    rows: Rows,
    k: usize,
    hidden: usize,
    npy: NpyWriter,
    tsv: AtomicFile,
    tsv_path: PathBuf,
    seq_row_start: u64,
    /// Nucleotide mode: the last k token rows of the current sequence, and how many came.
    recent: VecDeque<Vec<f32>>,
    tokens_seen: usize,
}

impl Assembler {
    pub fn create(
        npy_path: &Path,
        tsv_path: &Path,
        rows: Rows,
        k: usize,
        hidden: usize,
    ) -> Result<Self> {
        let npy = NpyWriter::create(npy_path, hidden)?;
        let mut tsv = AtomicFile::create(tsv_path)?;
        writeln!(tsv, "{INDEX_HEADER}")
            .with_context(|| format!("{}: write failed", tsv_path.display()))?;
        Ok(Self {
            rows,
            k,
            hidden,
            npy,
            tsv,
            tsv_path: tsv_path.to_owned(),
            seq_row_start: 0,
            recent: VecDeque::with_capacity(k),
            tokens_seen: 0,
        })
    }

    fn tsv_line(&mut self, id: &str, start: usize, end: usize, row: u64) -> Result<()> {
        writeln!(self.tsv, "{id}\t{start}\t{end}\t{row}")
            .with_context(|| format!("{}: write failed (disk full?)", self.tsv_path.display()))
    }

    pub fn push(&mut self, w: WindowOut) -> Result<()> {
        if w.index == 0 {
            self.seq_row_start = self.npy.rows();
            self.recent.clear();
            self.tokens_seen = 0;
        }
        match self.rows {
            Rows::PerWindow => {
                let row = self.npy.rows();
                self.npy.write_row(&w.rows)?;
                let at = w.seq.offset + w.start;
                self.tsv_line(&w.seq.id, at, at + w.len + self.k - 1, row)?;
            }
            Rows::Tokens => {
                for r in w.rows.chunks_exact(self.hidden) {
                    self.npy.write_row(r)?;
                }
            }
            Rows::Nucleotides => {
                for r in w.rows.chunks_exact(self.hidden) {
                    if self.recent.len() == self.k {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(r.to_vec());
                    self.tokens_seen += 1;
                    // Base t is covered by tokens t-k+1 ..= t, all seen by now.
                    self.write_mean(self.recent.len())?;
                }
            }
        }
        if w.index + 1 == w.seq.n_windows {
            self.end_sequence(&w.seq)?;
        }
        Ok(())
    }

    /// The mean of the last `n` of the recent token rows, as one nucleotide row.
    fn write_mean(&mut self, n: usize) -> Result<()> {
        let mut mean = vec![0f32; self.hidden];
        for r in self.recent.iter().skip(self.recent.len() - n) {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f32);
        self.npy.write_row(&mean)
    }

    fn end_sequence(&mut self, seq: &SeqInfo) -> Result<()> {
        match self.rows {
            Rows::PerWindow => Ok(()),
            Rows::Tokens => {
                let (from, to) = (seq.offset, seq.offset + seq.n_bases);
                self.tsv_line(&seq.id, from, to, self.seq_row_start)
            }
            Rows::Nucleotides => {
                // The last k-1 bases are covered by ever fewer tokens: base j by j+1-k ..= T-1.
                let t = self.tokens_seen;
                for j in t..seq.n_bases {
                    self.write_mean(t - (j + 1).saturating_sub(self.k))?;
                }
                debug_assert_eq!(self.npy.rows() - self.seq_row_start, seq.n_bases as u64);
                let (from, to) = (seq.offset, seq.offset + seq.n_bases);
                self.tsv_line(&seq.id, from, to, self.seq_row_start)
            }
        }
    }

    pub fn rows_written(&self) -> u64 {
        self.npy.rows()
    }

    /// Moves both files into place as a pair (`io_util::commit_pair`: the `.tsv` last, after
    /// both are complete); until then neither exists under its final name.
    pub fn commit(self) -> Result<()> {
        crate::io_util::commit_pair(self.npy.into_file()?, self.tsv)
    }
}
