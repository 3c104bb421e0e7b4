//! Overlapping k-mers, stride 1: `[CLS] k-mer_0 … k-mer_{n-k} [SEP]`, and the one place where
//! rows of tokens become a batch ([`Tokenizer::pack`]): the specials, the padding and the mask.

use crate::vocab::{base_code, decode_kmer, Vocab};

/// A batch of token rows, each `[CLS] … [SEP]` and right-padded with `[PAD]` to the longest:
/// `ids` and `mask` are `batch × seq`, row-major, the mask 1 on real tokens and 0 on padding.
/// The one batch type of every engine (tract converts it to i64 tensors at its boundary).
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    pub batch: usize,
    pub seq: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<f32>,
}

impl Tokens {
    /// The rows cut into at most `parts` consecutive groups, as (first row, tokens).
    pub fn split_rows(&self, parts: usize) -> Vec<(usize, Tokens)> {
        let parts = parts.clamp(1, self.batch.max(1));
        let mut out = vec![];
        let mut row = 0;
        for p in 0..parts {
            let rows = self.batch / parts + usize::from(p < self.batch % parts);
            let r = row * self.seq..(row + rows) * self.seq;
            let t = Tokens {
                batch: rows,
                seq: self.seq,
                ids: self.ids[r.clone()].to_vec(),
                mask: self.mask[r].to_vec(),
            };
            out.push((row, t));
            row += rows;
        }
        out
    }
}

/// Maps k-mers to ids through a dense table indexed by the k-mer's base-4 code, so the
/// tokenizer works for any order of `vocab.txt` without hashing per base.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pub k: usize,
    table: Vec<u32>,
    pub pad: u32,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
}

impl Tokenizer {
    pub fn new(vocab: &Vocab) -> Self {
        let k = vocab.k;
        let table = (0..4usize.pow(k as u32))
            .map(|c| vocab.id(&decode_kmer(c, k)))
            .collect();
        Self {
            k,
            table,
            pad: vocab.id("[PAD]"),
            unk: vocab.id("[UNK]"),
            cls: vocab.id("[CLS]"),
            sep: vocab.id("[SEP]"),
            mask: vocab.id("[MASK]"),
        }
    }

    /// The id of the k-mer whose base-4 code (A, T, C, G digits) is `code`.
    pub fn kmer_id(&self, code: usize) -> u32 {
        self.table[code]
    }

    /// Number of k-mers in a sequence of `len` bases.
    pub fn num_kmers(&self, len: usize) -> usize {
        (len + 1).saturating_sub(self.k)
    }

    /// Ids of every k-mer of `seq`, appended to `out`. Case is ignored (soft-masked bases read as
    /// uppercase); a k-mer holding any letter but A, C, G, T becomes `[UNK]`.
    pub fn kmer_ids(&self, seq: &[u8], out: &mut Vec<u32>) {
        let k = self.k;
        let mask = (1u32 << (2 * k)) - 1;
        let (mut code, mut valid_run) = (0u32, 0usize);
        for (i, &b) in seq.iter().enumerate() {
            match base_code(b) {
                Some(c) => {
                    code = ((code << 2) | c) & mask;
                    valid_run += 1;
                }
                None => valid_run = 0,
            }
            if i + 1 >= k {
                out.push(if valid_run >= k {
                    self.table[code as usize]
                } else {
                    self.unk
                });
            }
        }
    }

    /// `[CLS]` + the ids of `kmers` + `[SEP]`.
    pub fn wrap(&self, kmers: &[u32]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(kmers.len() + 2);
        ids.push(self.cls);
        ids.extend_from_slice(kmers);
        ids.push(self.sep);
        ids
    }

    /// Rows of k-mer ids as one batch: each wrapped in `[CLS]` … `[SEP]`, padded with `[PAD]`
    /// (mask 0) to the longest row.
    pub fn pack<R: AsRef<[u32]>>(&self, rows: &[R]) -> Tokens {
        let seq = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0) + 2;
        let mut t = Tokens {
            batch: rows.len(),
            seq,
            ids: Vec::with_capacity(rows.len() * seq),
            mask: Vec::with_capacity(rows.len() * seq),
        };
        for r in rows {
            let r = r.as_ref();
            t.ids.push(self.cls);
            t.ids.extend_from_slice(r);
            t.ids.push(self.sep);
            t.ids
                .extend(std::iter::repeat_n(self.pad, seq - r.len() - 2));
            t.mask.extend(std::iter::repeat_n(1.0, r.len() + 2));
            t.mask.extend(std::iter::repeat_n(0.0, seq - r.len() - 2));
        }
        t
    }

    /// DNA sequences as one batch, each cut to its first `max_kmers` k-mers.
    pub fn encode(&self, seqs: &[&[u8]], max_kmers: usize) -> Tokens {
        let rows: Vec<Vec<u32>> = seqs
            .iter()
            .map(|s| {
                let mut kmers = vec![];
                self.kmer_ids(s, &mut kmers);
                kmers.truncate(max_kmers);
                kmers
            })
            .collect();
        self.pack(&rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::generate;

    fn tok(k: usize) -> Tokenizer {
        Tokenizer::new(&Vocab::parse(&generate(k)).unwrap())
    }

    #[test]
    fn kmers_are_overlapping_with_stride_one() {
        let t = tok(3);
        let v = Vocab::parse(&generate(3)).unwrap();
        let mut ids = vec![];
        t.kmer_ids(b"ACGTA", &mut ids);
        assert_eq!(ids, vec![v.id("ACG"), v.id("CGT"), v.id("GTA")]);
        assert_eq!(t.wrap(&ids)[0], t.cls);
        assert_eq!(*t.wrap(&ids).last().unwrap(), t.sep);
    }

    #[test]
    fn any_kmer_touching_a_non_acgt_letter_is_unk() {
        let t = tok(3);
        let mut ids = vec![];
        t.kmer_ids(b"AANAAAAR", &mut ids);
        // k-mers: AAN ANA NAA AAA AAA AAR
        assert_eq!(ids[..3], [t.unk; 3]);
        assert_ne!(ids[3], t.unk);
        assert_eq!(ids[5], t.unk);
    }

    #[test]
    fn soft_masked_bases_read_as_uppercase() {
        let t = tok(4);
        let (mut upper, mut lower) = (vec![], vec![]);
        t.kmer_ids(b"ACGTNACGTT", &mut upper);
        t.kmer_ids(b"acgTNaCgtt", &mut lower);
        assert_eq!(upper, lower);
    }

    #[test]
    fn pack_wraps_pads_and_masks_each_row() {
        let t = tok(3);
        let b = t.pack(&[vec![7, 8, 9], vec![5]]);
        assert_eq!((b.batch, b.seq), (2, 5));
        assert_eq!(
            b.ids,
            [t.cls, 7, 8, 9, t.sep, t.cls, 5, t.sep, t.pad, t.pad]
        );
        assert_eq!(b.mask, [1., 1., 1., 1., 1., 1., 1., 1., 0., 0.]);
        let e = t.encode(&[b"ACGTAC".as_slice(), b"AC".as_slice()], 2);
        assert_eq!(
            (e.batch, e.seq),
            (2, 4),
            "cut to 2 k-mers; a sequence shorter than k has none"
        );
        assert_eq!(e.mask, [1., 1., 1., 1., 1., 1., 0., 0.]);
    }

    #[test]
    fn short_sequences_have_no_kmers() {
        let t = tok(6);
        let mut ids = vec![];
        t.kmer_ids(b"ACGTA", &mut ids);
        assert!(ids.is_empty());
        assert_eq!(t.num_kmers(5), 0);
        assert_eq!(t.num_kmers(6), 1);
    }
}
