//! Pretraining data: a genome cut at its N runs into contigs, windows sampled from them, and
//! DNABERT's contiguous k-mer span masking.
//!
//! Every batch is a pure function of (seed, step), drawn from a generator seeded for that step,
//! so a resumed run sees exactly the batches an uninterrupted one would, with no data position
//! to save.

use std::path::PathBuf;

use anyhow::{bail, Result};
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use super::mlm::MlmBatch;
use crate::fasta::FastaReader;
use crate::tokenizer::Tokenizer;
use crate::vocab::base_code;

/// A stretch of A/C/G/T (either case) between N runs.
pub struct Contig {
    pub record: String,
    pub start: usize,
    pub seq: Vec<u8>,
}

/// Which contigs train and which validate.
#[derive(Debug, Clone)]
pub enum Split {
    /// These records (chromosomes) validate; the rest train.
    Records(Vec<String>),
    /// The last `fraction` of the bases, in file order, validates.
    Fraction(f64),
}

pub struct Genome {
    pub train: Vec<Contig>,
    pub validation: Vec<Contig>,
}

impl Genome {
    /// Reads FASTA files, keeping contigs of at least `min_len` bases.
    pub fn load(files: &[PathBuf], split: &Split, min_len: usize) -> Result<Self> {
        let mut contigs = vec![];
        for f in files {
            let mut reader = FastaReader::open(&crate::remote::local(f)?)?;
            while let Some(rec) = reader.next_record() {
                let rec = rec?;
                let mut start = None;
                for i in 0..=rec.seq.len() {
                    let acgt = i < rec.seq.len() && base_code(rec.seq[i]).is_some();
                    match (acgt, start) {
                        (true, None) => start = Some(i),
                        (false, Some(s)) => {
                            if i - s >= min_len {
                                contigs.push(Contig {
                                    record: rec.id.to_owned(),
                                    start: s,
                                    seq: rec.seq[s..i].to_vec(),
                                });
                            }
                            start = None;
                        }
                        _ => {}
                    }
                }
            }
        }
        let (train, validation) = match split {
            Split::Records(names) => contigs
                .into_iter()
                .partition(|c| !names.contains(&c.record)),
            Split::Fraction(f) => {
                let total: usize = contigs.iter().map(|c| c.seq.len()).sum();
                let cut = ((1.0 - f) * total as f64) as usize;
                let (mut train, mut validation, mut seen) = (vec![], vec![], 0);
                for c in contigs {
                    if seen + c.seq.len() <= cut {
                        seen += c.seq.len();
                        train.push(c);
                    } else if seen >= cut {
                        validation.push(c);
                    } else {
                        // Split the contig that straddles the cut.
                        let at = cut - seen;
                        seen = cut;
                        let tail = Contig {
                            record: c.record.clone(),
                            start: c.start + at,
                            seq: c.seq[at..].to_vec(),
                        };
                        train.push(Contig {
                            record: c.record,
                            start: c.start,
                            seq: c.seq[..at].to_vec(),
                        });
                        if tail.seq.len() >= min_len {
                            validation.push(tail);
                        }
                    }
                }
                (train, validation)
            }
        };
        if train.is_empty() {
            bail!("no training sequence of at least {min_len} A/C/G/T bases in {files:?}");
        }
        if validation.is_empty() {
            bail!("the validation split is empty: name validation records present in {files:?}, or a larger fraction");
        }
        Ok(Self { train, validation })
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MaskStyle {
    /// 80% [MASK], 10% a random k-mer, 10% unchanged (DNABERT, after BERT).
    Dnabert,
    /// Every chosen token becomes [MASK] (BioNeMo's DNABERT).
    Bionemo,
}

pub struct Sampler<'a> {
    pub contigs: &'a [Contig],
    cumulative: Vec<u64>,
    pub tokenizer: &'a Tokenizer,
    /// k-mer tokens per full window.
    pub window: usize,
    pub mask_prob: f64,
    pub style: MaskStyle,
}

fn uniform(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl<'a> Sampler<'a> {
    pub fn new(
        contigs: &'a [Contig],
        tokenizer: &'a Tokenizer,
        window: usize,
        mask_prob: f64,
        style: MaskStyle,
    ) -> Self {
        let mut cumulative = Vec::with_capacity(contigs.len());
        let mut total = 0u64;
        for c in contigs {
            total += c.seq.len() as u64;
            cumulative.push(total);
        }
        Self {
            contigs,
            cumulative,
            tokenizer,
            window,
            mask_prob,
            style,
        }
    }

    /// One window's k-mer ids: a random place (contigs weighted by length), and half the time a
    /// random shorter length, as DNABERT and BioNeMo crop.
    fn window_ids(&self, rng: &mut ChaCha8Rng) -> Vec<u32> {
        let k = self.tokenizer.k;
        let pos = uniform(rng, self.cumulative.last().copied().unwrap_or(0));
        let ci = self.cumulative.partition_point(|&c| c <= pos);
        let seq = &self.contigs[ci].seq;
        let max_tokens = self.tokenizer.num_kmers(seq.len()).min(self.window);
        let tokens = if rng.next_u32() & 1 == 0 {
            max_tokens
        } else {
            1 + uniform(rng, max_tokens as u64) as usize
        };
        let start = uniform(rng, (seq.len() - (tokens + k - 1) + 1) as u64) as usize;
        let mut ids = Vec::with_capacity(tokens);
        self.tokenizer
            .kmer_ids(&seq[start..start + tokens + k - 1], &mut ids);
        ids
    }

    /// A masked batch of `batch` windows, padded to the longest.
    pub fn batch(&self, rng: &mut ChaCha8Rng, batch: usize) -> MlmBatch {
        let windows: Vec<Vec<u32>> = (0..batch).map(|_| self.window_ids(rng)).collect();
        let (masked, labels): (Vec<Vec<u32>>, Vec<Vec<i64>>) =
            windows.iter().map(|w| self.mask(rng, w)).unzip();
        let tokens = self.tokenizer.pack(&masked);
        // Labels in the tokens' layout: none on the specials and the padding.
        let mut all = Vec::with_capacity(tokens.batch * tokens.seq);
        for lab in labels {
            all.push(-1);
            all.extend(&lab);
            all.push(-1);
            all.extend(std::iter::repeat_n(-1, tokens.seq - lab.len() - 2));
        }
        MlmBatch {
            tokens,
            labels: all,
        }
    }

    /// DNABERT's span masking: centres drawn with probability `mask_prob`, each widened to k
    /// contiguous tokens, so a masked base cannot be read off an overlapping neighbour k-mer.
    /// Returns the input ids and the labels (-1 where nothing is predicted).
    pub fn mask(&self, rng: &mut ChaCha8Rng, ids: &[u32]) -> (Vec<u32>, Vec<i64>) {
        let k = self.tokenizer.k;
        let n = ids.len();
        let mut chosen = vec![false; n];
        let widen = |chosen: &mut [bool], c: usize| {
            chosen[c.saturating_sub((k - 1) / 2)..(c + k / 2 + 1).min(n)].fill(true);
        };
        for c in 0..n {
            if unit(rng) < self.mask_prob {
                widen(&mut chosen, c);
            }
        }
        // Every window predicts something.
        if !chosen.contains(&true) && n > 0 {
            widen(&mut chosen, uniform(rng, n as u64) as usize);
        }
        let n_kmers = 4u64.pow(k as u32);
        let mut out = ids.to_vec();
        let mut labels = vec![-1i64; n];
        for i in 0..n {
            if !chosen[i] {
                continue;
            }
            labels[i] = ids[i] as i64;
            let r = unit(rng);
            out[i] = match self.style {
                MaskStyle::Bionemo => self.tokenizer.mask,
                MaskStyle::Dnabert if r < 0.8 => self.tokenizer.mask,
                MaskStyle::Dnabert if r < 0.9 => {
                    self.tokenizer.kmer_id(uniform(rng, n_kmers) as usize)
                }
                MaskStyle::Dnabert => ids[i],
            };
        }
        (out, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{rng, Stream};
    use crate::vocab::{generate, Vocab};

    fn tokenizer(k: usize) -> Tokenizer {
        Tokenizer::new(&Vocab::parse(&generate(k)).unwrap())
    }

    #[test]
    fn spans_are_k_wide_and_labels_hold_the_originals() {
        let t = tokenizer(6);
        let contigs = vec![Contig {
            record: "x".into(),
            start: 0,
            seq: b"ACGTTGCAAC".repeat(100),
        }];
        let s = Sampler::new(&contigs, &t, 510, 0.02, MaskStyle::Bionemo);
        let ids: Vec<u32> = (0..400).map(|i| 5 + (i % 4096) as u32).collect();
        let (masked, labels) = s.mask(&mut rng(1, Stream::PretrainBatches, 0), &ids);
        let picked: Vec<usize> = (0..ids.len()).filter(|&i| labels[i] >= 0).collect();
        assert!(!picked.is_empty());
        // Runs of masked positions are at least k long unless cut by a window edge.
        let mut run = 1;
        for w in picked.windows(2) {
            if w[1] == w[0] + 1 {
                run += 1;
            } else {
                assert!(run >= 6, "a span of {run} tokens");
                run = 1;
            }
        }
        for &i in &picked {
            assert_eq!(labels[i], ids[i] as i64);
            assert_eq!(masked[i], t.mask);
        }
    }

    #[test]
    fn batches_are_a_function_of_seed_and_step() {
        let t = tokenizer(3);
        let contigs = vec![Contig {
            record: "x".into(),
            start: 0,
            seq: b"ACGTTGCAACGGATC".repeat(50),
        }];
        let s = Sampler::new(&contigs, &t, 62, 0.05, MaskStyle::Dnabert);
        let a = s.batch(&mut rng(7, Stream::PretrainBatches, 3), 4);
        let b = s.batch(&mut rng(7, Stream::PretrainBatches, 3), 4);
        let c = s.batch(&mut rng(7, Stream::PretrainBatches, 4), 4);
        assert_eq!(a.tokens.ids, b.tokens.ids);
        assert_eq!(a.labels, b.labels);
        assert_ne!(a.tokens.ids, c.tokens.ids);
        assert!(a.tokens.seq <= 64);
    }

    #[test]
    fn genomes_are_cut_at_n_runs_and_split() {
        let dir = tempfile::tempdir().unwrap();
        let fa = dir.path().join("g.fa");
        std::fs::write(
            &fa,
            ">chr1\nACGTACGTACNNNNacgtacgtacgtNACG\n>chr2\nACGTACGTACGTACGT\n",
        )
        .unwrap();
        let g = Genome::load(
            std::slice::from_ref(&fa),
            &Split::Records(vec!["chr2".into()]),
            8,
        )
        .unwrap();
        let train: Vec<(usize, usize)> = g.train.iter().map(|c| (c.start, c.seq.len())).collect();
        assert_eq!(train, vec![(0, 10), (14, 12)]);
        assert_eq!(g.validation.len(), 1);
        let g = Genome::load(&[fa], &Split::Fraction(0.25), 4).unwrap();
        let total: usize = g
            .train
            .iter()
            .chain(&g.validation)
            .map(|c| c.seq.len())
            .sum();
        assert_eq!(total, 10 + 12 + 16);
    }
}
