//! Cutting a sequence's k-mers into overlapping model windows, and stitching them back.

use std::ops::Range;

/// One window over a sequence's k-mer tokens. `keep` is the part of it that the stitched
/// per-token output takes from this window (absolute token indices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: usize,
    pub len: usize,
    pub keep: Range<usize>,
}

/// Windows of `size` tokens overlapping by at least `overlap`, covering `n_tokens` tokens.
///
/// All windows have the same length (the last one is aligned to the end of the sequence),
/// so each token is kept from the window whose centre is nearest, which is the window in
/// which it lies furthest from an edge; on a tie the earlier window keeps it.
pub fn plan(n_tokens: usize, size: usize, overlap: usize) -> Vec<Window> {
    assert!(
        size > 0 && overlap < size,
        "window must be longer than its overlap"
    );
    if n_tokens <= size {
        return vec![Window {
            start: 0,
            len: n_tokens,
            keep: 0..n_tokens,
        }];
    }
    let mut starts: Vec<usize> = (0..)
        .map(|i| i * (size - overlap))
        .take_while(|s| s + size < n_tokens)
        .collect();
    starts.push(n_tokens - size);
    let mut windows: Vec<Window> = starts
        .iter()
        .map(|&start| Window {
            start,
            len: size,
            keep: 0..0,
        })
        .collect();
    let mut from = 0;
    for i in 0..windows.len() {
        let to = match windows.get(i + 1) {
            // Last token of window i plus first of i+1, halved: the midpoint between centres.
            Some(next) => (windows[i].start + size - 1 + next.start) / 2 + 1,
            None => n_tokens,
        };
        windows[i].keep = from..to;
        from = to;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule stated plainly: the window where the token is furthest from an edge.
    fn owner(t: usize, ws: &[Window]) -> usize {
        let mut best = (0, None);
        for (i, w) in ws.iter().enumerate() {
            if (w.start..w.start + w.len).contains(&t) {
                let d = (t - w.start).min(w.start + w.len - 1 - t);
                if best.1.is_none_or(|b| d > b) {
                    best = (i, Some(d));
                }
            }
        }
        best.0
    }

    #[test]
    fn keeps_partition_the_tokens_by_distance_from_the_edges() {
        for n in [1, 5, 100, 101, 510, 511, 1000, 1395, 4097] {
            for (size, overlap) in [(510, 64), (100, 20), (100, 99), (7, 3), (2, 1)] {
                let ws = plan(n, size, overlap);
                assert_eq!(ws.first().unwrap().keep.start, 0);
                assert_eq!(ws.last().unwrap().keep.end, n);
                for (i, w) in ws.iter().enumerate() {
                    assert!(w.start + w.len <= n);
                    if let Some(next) = ws.get(i + 1) {
                        assert_eq!(w.keep.end, next.keep.start);
                        assert!(w.start + w.len >= next.start + overlap, "overlap too small");
                    }
                    for t in w.keep.clone() {
                        assert_eq!(
                            owner(t, &ws),
                            i,
                            "n={n} size={size} overlap={overlap} t={t}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn short_sequences_are_one_window() {
        assert_eq!(
            plan(300, 510, 64),
            vec![Window {
                start: 0,
                len: 300,
                keep: 0..300
            }]
        );
    }
}
