//! What row layout an embed index (`PREFIX.tsv`) describes, read back from the index alone, so
//! that `gather-embeddings` can refuse parts embedded with different `--pooling` or
//! `--per-nucleotide` settings.
//!
//! The three layouts leave different marks: a pooled run has one row per window (a line per
//! window); a per-token run a line per record whose rows are its bases minus `k - 1`; a
//! per-nucleotide run a line per record with one row per base. A part with a single short
//! record can fit more than one layout, so a part's layout is the set of those it fits, and
//! parts agree when the sets meet: a real mix is found whenever one part rules out what another
//! needs, and a valid gather is never refused. Pooled parts of different pooling (mean against
//! cls) have the same layout and cannot be told apart here.

/// One index line: start, end (0-based, end exclusive) and first row.
#[derive(Debug, Clone, Copy)]
pub struct IndexLine {
    pub start: u64,
    pub end: u64,
    pub row: u64,
}

/// The layouts an index fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    /// One row per line (pooled windows).
    pub pooled: bool,
    /// A line per record from base 0 with `end - start - d` rows, for this one `d` on every
    /// line: 0 per nucleotide, `k - 1` per token.
    pub per_record_deficit: Option<u64>,
}

impl RowLayout {
    /// The layouts an index of `lines`, over an array of `rows` rows, fits.
    pub fn of(lines: &[IndexLine], rows: u64) -> Self {
        let counts: Vec<u64> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let next = lines.get(i + 1).map_or(rows, |n| n.row);
                next.saturating_sub(l.row)
            })
            .collect();
        let pooled = counts.iter().all(|&c| c == 1);
        let deficits: Option<Vec<u64>> = lines
            .iter()
            .zip(&counts)
            .map(|(l, &c)| (l.start == 0).then(|| l.end.checked_sub(c)).flatten())
            .collect();
        let per_record_deficit = deficits.and_then(|d| match d.split_first() {
            Some((first, rest)) if rest.iter().all(|x| x == first) => Some(*first),
            // An empty part fits every per-record layout; u64::MAX stands for "any".
            None => Some(u64::MAX),
            _ => None,
        });
        Self {
            pooled,
            per_record_deficit,
        }
    }

    /// The layouts both fit, or None when they share none.
    pub fn meet(self, other: Self) -> Option<Self> {
        let per_record_deficit = match (self.per_record_deficit, other.per_record_deficit) {
            (Some(u64::MAX), x) | (x, Some(u64::MAX)) => x,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => None,
        };
        let pooled = self.pooled && other.pooled;
        (pooled || per_record_deficit.is_some()).then_some(Self {
            pooled,
            per_record_deficit,
        })
    }

    /// In words, for an error message.
    pub fn describe(self) -> String {
        let mut fits = Vec::new();
        if self.pooled {
            fits.push("pooled (one row per window)".to_owned());
        }
        match self.per_record_deficit {
            Some(0) => fits.push("--per-nucleotide (one row per base)".to_owned()),
            Some(u64::MAX) | None => {}
            Some(d) => fits.push(format!("per token (one row per {}-mer)", d + 1)),
        }
        if fits.is_empty() {
            "no layout dnabert embed writes".to_owned()
        } else {
            fits.join(" or ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[(u64, u64, u64)]) -> Vec<IndexLine> {
        v.iter()
            .map(|&(start, end, row)| IndexLine { start, end, row })
            .collect()
    }

    #[test]
    fn each_layout_is_told_from_its_index_and_mixes_are_refused() {
        // Two records of 100 and 50 bases, k = 6.
        let tokens = RowLayout::of(&lines(&[(0, 100, 0), (0, 50, 95)]), 95 + 45);
        let bases = RowLayout::of(&lines(&[(0, 100, 0), (0, 50, 100)]), 150);
        let pooled = RowLayout::of(&lines(&[(0, 60, 0), (40, 100, 1), (0, 50, 2)]), 3);
        assert_eq!(tokens.per_record_deficit, Some(5));
        assert!(!tokens.pooled);
        assert_eq!(bases.per_record_deficit, Some(0));
        assert!(pooled.pooled && pooled.per_record_deficit.is_none());
        assert!(tokens.meet(bases).is_none());
        assert!(tokens.meet(pooled).is_none());
        assert!(bases.meet(pooled).is_none());
        assert!(tokens.meet(tokens).is_some());
        assert!(tokens.meet(pooled).is_none());
        assert_eq!(
            tokens.describe(),
            "per token (one row per 6-mer)",
            "{tokens:?}"
        );
    }

    #[test]
    fn an_ambiguous_part_agrees_with_either_layout_it_fits() {
        // One record of 6 bases: one row, whether pooled or one 6-mer token.
        let one = RowLayout::of(&lines(&[(0, 6, 0)]), 1);
        let tokens = RowLayout::of(&lines(&[(0, 100, 0)]), 95);
        let pooled = RowLayout::of(&lines(&[(0, 60, 0), (40, 100, 1)]), 2);
        assert_eq!(one.meet(tokens).map(|l| l.pooled), Some(false));
        assert_eq!(one.meet(pooled).map(|l| l.pooled), Some(true));
        let empty = RowLayout::of(&[], 0);
        assert_eq!(empty.meet(tokens), Some(tokens));
        assert_eq!(empty.meet(pooled).map(|l| l.pooled), Some(true));
    }
}
