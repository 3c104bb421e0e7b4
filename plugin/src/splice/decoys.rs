//! Decoy negatives: positions that look like a site by its dinucleotide but are not one.
//!
//! A donor-like decoy has GT where a donor's intron starts (window indices W/2+1..W/2+2, in
//! transcript orientation), an acceptor-like decoy AG where an acceptor's intron ends
//! (W/2−2..W/2−1). They are drawn from the exons and introns of the multi-exon transcripts (the
//! genes the sites come from), at least `margin` bases from every annotated site, so a model must
//! read more than two letters to tell them from sites.
//!
//! The genome is streamed, one chromosome at a time; every candidate of a kind is offered to a
//! seeded reservoir (Algorithm R) that keeps `want` of them, so the draw is uniform over the
//! whole genome, deterministic for a seed, and holds only the kept windows.

use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha8Rng;

use super::annotation::Transcript;
use super::sites::{window, Class, Cut, NearSites, Site};
use crate::rng::{rng, Stream};

/// The two kinds, in the order of their reservoirs.
const DONOR_LIKE: usize = 0;
const ACCEPTOR_LIKE: usize = 1;

pub struct Decoys {
    want: [usize; 2],
    kept: [Vec<(Site, Vec<u8>)>; 2],
    offered: [u64; 2],
    rng: ChaCha8Rng,
    w: usize,
}

impl Decoys {
    /// Room for `count` decoys (half donor-like, half acceptor-like) of windows of `w` bases.
    pub fn new(count: usize, seed: u64, w: usize) -> Self {
        Self {
            want: [count / 2, count - count / 2],
            kept: [vec![], vec![]],
            offered: [0; 2],
            rng: rng(seed, Stream::SpliceDecoys, 0),
            w,
        }
    }

    /// Offers every decoy of one chromosome's transcripts (its sequence `seq`), in order.
    pub fn scan(&mut self, seq: &[u8], transcripts: &[&Transcript], near: &NearSites) {
        let c = self.w / 2;
        for (t, first, last) in spans(transcripts) {
            for pos in first..=last {
                let p0 = pos as usize - 1;
                // The bases at window indices c+1, c+2 and c−2, c−1, in transcript orientation.
                let (donor_like, acceptor_like) = if t.plus {
                    (
                        seq.get(p0 + 1..p0 + 3)
                            .is_some_and(|b| b.eq_ignore_ascii_case(b"GT")),
                        p0 >= 2 && seq[p0 - 2..p0].eq_ignore_ascii_case(b"AG"),
                    )
                } else {
                    (
                        // Reverse complement of GT is AC, read 5'→3' just before the site.
                        p0 >= 2 && seq[p0 - 2..p0].eq_ignore_ascii_case(b"AC"),
                        seq.get(p0 + 1..p0 + 3)
                            .is_some_and(|b| b.eq_ignore_ascii_case(b"CT")),
                    )
                };
                if !(donor_like || acceptor_like) || near.near(&t.chrom, pos) {
                    continue;
                }
                let site = Site {
                    chrom: t.chrom.clone(),
                    pos,
                    plus: t.plus,
                    class: Class::Neither,
                    transcript: t.id.clone(),
                };
                // A position both donor- and acceptor-like is offered as donor-like only.
                let kind = if donor_like {
                    DONOR_LIKE
                } else {
                    ACCEPTOR_LIKE
                };
                self.offer(kind, site, seq, c);
            }
        }
    }

    fn offer(&mut self, kind: usize, site: Site, seq: &[u8], c: usize) {
        let Cut::Ok(w) = window(seq, &site, self.w) else {
            return; // off the sequence or with N: not a candidate
        };
        debug_assert!(kind != DONOR_LIKE || &w[c + 1..c + 3] == b"GT");
        debug_assert!(kind != ACCEPTOR_LIKE || &w[c - 2..c] == b"AG");
        let i = self.offered[kind];
        self.offered[kind] += 1;
        if (i as usize) < self.want[kind] {
            self.kept[kind].push((site, w));
        } else {
            let j = self.rng.next_u64() % (i + 1);
            if (j as usize) < self.want[kind] {
                self.kept[kind][j as usize] = (site, w);
            }
        }
    }

    /// The kept decoys, sorted, and how many candidates each kind had (donor-like,
    /// acceptor-like).
    pub fn finish(self) -> (Vec<(Site, Vec<u8>)>, [u64; 2]) {
        let [a, b] = self.kept;
        let mut all: Vec<_> = a.into_iter().chain(b).collect();
        all.sort_by(|x, y| x.0.cmp(&y.0));
        (all, self.offered)
    }
}

/// The multi-exon transcripts' spans on one chromosome, overlapping ones merged per strand (so
/// a position is offered once), each with the transcript that starts it; in genomic order.
fn spans<'a>(transcripts: &[&'a Transcript]) -> Vec<(&'a Transcript, u64, u64)> {
    let mut by_start: Vec<(&Transcript, u64, u64)> = transcripts
        .iter()
        .filter(|t| t.exons.len() >= 2)
        .map(|t| (*t, t.exons[0].0, t.exons[t.exons.len() - 1].1))
        .collect();
    by_start.sort_by_key(|&(t, s, e)| (!t.plus, s, e));
    let mut out: Vec<(&Transcript, u64, u64)> = vec![];
    for (t, s, e) in by_start {
        match out.last_mut() {
            Some(last) if last.0.plus == t.plus && s <= last.2 => last.2 = last.2.max(e),
            _ => out.push((t, s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(id: &str, plus: bool, exons: &[(u64, u64)]) -> Transcript {
        Transcript {
            id: id.into(),
            gene: id.into(),
            chrom: "c".into(),
            plus,
            exons: exons.to_vec(),
            lines: vec![0; exons.len()],
        }
    }

    #[test]
    fn decoys_carry_the_dinucleotide_where_the_site_s_would_be_on_both_strands() {
        // 60 bases of C with GT at 21..22 and AG at 39..40 (1-based) on the plus strand, and
        // their reverse complements' counterparts AC at 11..12, CT at 51..52 for the minus one.
        let mut seq = vec![b'C'; 60];
        seq[20..22].copy_from_slice(b"GT");
        seq[38..40].copy_from_slice(b"AG");
        seq[10..12].copy_from_slice(b"AC");
        seq[50..52].copy_from_slice(b"TT"); // not CT: no minus acceptor
        let plus = transcript("p", true, &[(15, 18), (45, 48)]);
        let minus = transcript("m", false, &[(5, 8), (13, 14)]);
        let sites = vec![];
        let near = NearSites::new(&sites, 1);
        let mut d = Decoys::new(10, 0, 8);
        d.scan(&seq, &[&plus, &minus], &near);
        let (kept, offered) = d.finish();
        let got: Vec<(u64, bool)> = kept.iter().map(|(s, _)| (s.pos, s.plus)).collect();
        // plus: GT at 21..22 means a donor-like site at 20; AG at 39..40 an acceptor-like at 41.
        // minus: AC at 11..12 means a donor-like site at 13.
        assert_eq!(got, vec![(13, false), (20, true), (41, true)]);
        assert_eq!(offered, [2, 1]);
        for (s, w) in &kept {
            let c = 4;
            assert!(
                &w[c + 1..c + 3] == b"GT" || &w[c - 2..c] == b"AG",
                "{s:?} {w:?}"
            );
        }
        // Near an annotated site (within the margin): not a decoy.
        let site = Site {
            chrom: "c".into(),
            pos: 22,
            plus: true,
            class: Class::Donor,
            transcript: "p".into(),
        };
        let sites = vec![site];
        let near = NearSites::new(&sites, 3);
        let mut d = Decoys::new(10, 0, 8);
        d.scan(&seq, &[&plus], &near);
        assert!(d.finish().0.iter().all(|(s, _)| s.pos != 20));
    }

    #[test]
    fn the_reservoir_keeps_the_number_asked_the_same_for_a_seed() {
        let seq: Vec<u8> = b"GTAG".iter().cycle().take(4000).copied().collect();
        let t = transcript("t", true, &[(10, 20), (3980, 3990)]);
        let near = NearSites::new(&[], 1);
        let run = |seed| {
            let mut d = Decoys::new(50, seed, 8);
            d.scan(&seq, &[&t], &near);
            d.finish()
                .0
                .into_iter()
                .map(|(s, _)| s.pos)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3).len(), 50);
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
