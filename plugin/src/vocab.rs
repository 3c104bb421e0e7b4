//! DNABERT's k-mer vocabulary: five special tokens, then every k-mer in A, T, C, G
//! lexicographic order, one per line. Generated files equal the original DNABERT ones byte for
//! byte, including their one quirk: only the k = 6 file ends with a newline.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/// The order in which DNABERT enumerates bases; also the base-4 digit of each base in a k-mer code.
pub const BASES: [u8; 4] = [b'A', b'T', b'C', b'G'];
pub const K_RANGE: std::ops::RangeInclusive<usize> = 3..=6;

/// `dnabert vocab`'s flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// k-mer length, 3 to 6.
    #[arg(long, default_value_t = 6)]
    pub k: usize,
}

impl Args {
    /// Prints the vocabulary, byte for byte as DNABERT's file.
    pub fn run(self) -> Result<()> {
        if !K_RANGE.contains(&self.k) {
            bail!("--k {}: DNABERT uses k = 3..6", self.k);
        }
        use std::io::Write;
        std::io::stdout()
            .lock()
            .write_all(generate(self.k).as_bytes())
            .context("cannot write to stdout")
    }
}

/// The text of DNABERT's `vocab.txt` for `k`.
pub fn generate(k: usize) -> String {
    let mut lines: Vec<String> = SPECIALS.iter().map(|s| s.to_string()).collect();
    lines.extend((0..4usize.pow(k as u32)).map(|code| decode_kmer(code, k)));
    let mut text = lines.join("\n");
    if k == 6 {
        text.push('\n');
    }
    text
}

/// The k-mer whose base-4 code (most significant base first, digits in `BASES` order) is `code`.
pub fn decode_kmer(code: usize, k: usize) -> String {
    (0..k)
        .map(|i| BASES[(code >> (2 * (k - 1 - i))) & 3] as char)
        .collect()
}

/// Base-4 digit of a base, or `None` for anything but A, C, G, T. Lowercase (soft-masked)
/// bases count as their uppercase.
#[inline]
pub fn base_code(b: u8) -> Option<u32> {
    match b {
        b'A' | b'a' => Some(0),
        b'T' | b't' => Some(1),
        b'C' | b'c' => Some(2),
        b'G' | b'g' => Some(3),
        _ => None,
    }
}

/// A vocabulary as read from a model folder's `vocab.txt`.
#[derive(Debug, Clone)]
pub struct Vocab {
    pub tokens: Vec<String>,
    pub k: usize,
    ids: HashMap<String, u32>,
}

impl Vocab {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read vocabulary", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("{}: not a DNABERT k-mer vocabulary", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let tokens: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        let mut ids = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if ids.insert(t.clone(), i as u32).is_some() {
                bail!("line {}: token '{t}' appears twice", i + 1);
            }
        }
        for s in SPECIALS {
            if !ids.contains_key(s) {
                bail!("special token {s} is missing");
            }
        }
        let kmers: Vec<&String> = tokens
            .iter()
            .filter(|t| !SPECIALS.contains(&t.as_str()))
            .collect();
        let k = kmers.first().map(|t| t.len()).context("no k-mer tokens")?;
        if !K_RANGE.contains(&k) {
            bail!("k-mers of length {k}; DNABERT uses k = 3..6");
        }
        if let Some(bad) = kmers
            .iter()
            .find(|t| t.len() != k || !t.bytes().all(|b| base_code(b).is_some()))
        {
            bail!("token '{bad}' is not a {k}-mer over A, C, G, T");
        }
        if kmers.len() != 4usize.pow(k as u32) {
            bail!(
                "{} distinct {k}-mers, expected all {}",
                kmers.len(),
                4usize.pow(k as u32)
            );
        }
        Ok(Self { tokens, k, ids })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn id(&self, token: &str) -> u32 {
        self.ids[token]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_vocab_equals_dnabert_files_byte_for_byte() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/dnabert_vocab");
        for k in K_RANGE {
            let original = std::fs::read_to_string(dir.join(format!("vocab_k{k}.txt"))).unwrap();
            assert_eq!(generate(k), original, "k = {k}");
        }
    }

    #[test]
    fn parse_rejects_incomplete_vocab() {
        let text = generate(3);
        let cut: Vec<&str> = text.lines().take(20).collect();
        let err = Vocab::parse(&cut.join("\n")).unwrap_err().to_string();
        assert!(err.contains("expected all 64"), "{err}");
        assert!(Vocab::parse("[PAD]\n[UNK]\nAAA")
            .unwrap_err()
            .to_string()
            .contains("[CLS]"));
    }

    #[test]
    fn parse_reads_k_and_ids() {
        let v = Vocab::parse(&generate(4)).unwrap();
        assert_eq!((v.k, v.len()), (4, 261));
        assert_eq!(v.id("[CLS]"), 2);
        assert_eq!(v.id("AAAT"), 6);
    }
}
