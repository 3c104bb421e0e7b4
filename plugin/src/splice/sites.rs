//! Splice-site windows from an annotation and a genome: true donors and acceptors of
//! multi-exon transcripts, negatives drawn from their introns, a window of W bases around each,
//! read 5'→3' along the transcript.
//!
//! Coordinates are 1-based. A donor is the last base of an exon that is not the transcript's
//! last, an acceptor the first base of an exon that is not its first, in transcript orientation
//! (on the minus strand, a donor is an exon's lowest coordinate). In every window the site sits
//! at index W/2 (0-based), so the intron's GT of a donor is at W/2+1..W/2+2 and the AG of an
//! acceptor at W/2−2..W/2−1.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Result};
use rand_chacha::rand_core::RngCore;
use serde::Serialize;

use super::annotation::Transcript;
use crate::rng::{rng, Stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Donor = 0,
    Acceptor = 1,
    Neither = 2,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::Donor, Class::Acceptor, Class::Neither];
    pub fn name(self) -> &'static str {
        match self {
            Class::Donor => "donor",
            Class::Acceptor => "acceptor",
            Class::Neither => "neither",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Site {
    pub chrom: String,
    pub pos: u64,
    pub plus: bool,
    pub class: Class,
    /// The transcript that defines it (for negatives: the one whose intron it lies in).
    pub transcript: String,
}

/// What was set aside while collecting sites, and why.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Skipped {
    pub single_exon_transcripts: usize,
    /// Positions that are a donor in one transcript and an acceptor in another.
    pub ambiguous_sites: usize,
    pub window_off_sequence: BTreeMap<String, usize>,
    pub window_with_n: BTreeMap<String, usize>,
    pub over_class_cap: BTreeMap<String, usize>,
}

/// Distinct donors and acceptors of the multi-exon transcripts, sorted.
pub fn true_sites(transcripts: &[Transcript], skipped: &mut Skipped) -> Vec<Site> {
    let mut seen: BTreeMap<(String, u64, bool), (Class, String, bool)> = BTreeMap::new();
    for t in transcripts {
        if t.exons.len() < 2 {
            skipped.single_exon_transcripts += 1;
            continue;
        }
        let n = t.exons.len();
        for (i, &(start, end)) in t.exons.iter().enumerate() {
            // In genomic order: the plus strand's donors are exon ends but the last exon's; on
            // the minus strand the transcript runs backwards, so donors are exon starts but the
            // lowest exon's.
            let (donor, acceptor) = if t.plus {
                ((i + 1 < n).then_some(end), (i > 0).then_some(start))
            } else {
                ((i > 0).then_some(start), (i + 1 < n).then_some(end))
            };
            for (pos, class) in [(donor, Class::Donor), (acceptor, Class::Acceptor)] {
                let Some(pos) = pos else { continue };
                let e = seen.entry((t.chrom.clone(), pos, t.plus)).or_insert((
                    class,
                    t.id.clone(),
                    false,
                ));
                if e.0 != class {
                    e.2 = true; // ambiguous
                }
            }
        }
    }
    let mut out = vec![];
    for ((chrom, pos, plus), (class, transcript, ambiguous)) in seen {
        if ambiguous {
            skipped.ambiguous_sites += 1;
            continue;
        }
        out.push(Site {
            chrom,
            pos,
            plus,
            class,
            transcript,
        });
    }
    out
}

/// What the "neither" windows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NegativeKind {
    /// Random positions in the introns of the same transcripts (few carry GT or AG where a
    /// site's would be: a two-letter rule tells them from sites).
    Random,
    /// Positions with the canonical dinucleotide at the class's offset — GT where a donor's GT
    /// would be, AG where an acceptor's AG would be — in the exons and introns of the same
    /// genes, that are not annotated sites: half donor-like, half acceptor-like.
    Decoy,
    /// Random positions anywhere in the same genes' bodies (exons and introns), the model
    /// card's "random negative sites from gene bodies".
    GeneBody,
}

/// Positions closer than `margin` to an annotated site (or on one), by chromosome.
pub struct NearSites<'a> {
    by_chrom: HashMap<&'a str, Vec<u64>>,
    margin: u64,
}

impl<'a> NearSites<'a> {
    pub fn new(sites: &'a [Site], margin: u64) -> Self {
        let mut by_chrom: HashMap<&str, Vec<u64>> = HashMap::new();
        for s in sites {
            by_chrom.entry(&s.chrom).or_default().push(s.pos);
        }
        by_chrom.values_mut().for_each(|v| v.sort_unstable());
        Self { by_chrom, margin }
    }

    pub fn near(&self, chrom: &str, pos: u64) -> bool {
        let margin = self.margin.max(1);
        self.by_chrom.get(chrom).is_some_and(|v| {
            let i = v.partition_point(|&p| p < pos);
            let after = v.get(i).is_some_and(|&p| p - pos < margin);
            let before = i > 0 && pos - v[i - 1] < margin;
            after || before
        })
    }
}

/// The regions random negatives are drawn from: the introns (`Random`) or the whole span
/// (`GeneBody`) of each multi-exon transcript, 1-based inclusive.
fn regions(transcripts: &[Transcript], kind: NegativeKind) -> Vec<(&Transcript, u64, u64)> {
    let multi = transcripts.iter().filter(|t| t.exons.len() >= 2);
    match kind {
        NegativeKind::GeneBody => multi
            .map(|t| (t, t.exons[0].0, t.exons[t.exons.len() - 1].1))
            .collect(),
        _ => multi
            .flat_map(|t| {
                t.exons
                    .windows(2)
                    .filter(|w| w[1].0 > w[0].1 + 1)
                    .map(move |w| (t, w[0].1 + 1, w[1].0 - 1))
            })
            .collect(),
    }
}

/// Up to `count` distinct positions inside the introns (or, for `GeneBody`, the spans) of
/// multi-exon transcripts, each at least `margin` bases from every true site on its chromosome,
/// drawn with a seed (regions weighted by length). Decoys need the sequence: see `decoys`.
pub fn negatives(
    transcripts: &[Transcript],
    sites: &[Site],
    count: usize,
    margin: u64,
    seed: u64,
    kind: NegativeKind,
) -> Vec<Site> {
    let introns = regions(transcripts, kind);
    let mut cumulative = Vec::with_capacity(introns.len());
    let mut total = 0u64;
    for (_, s, e) in &introns {
        total += e - s + 1;
        cumulative.push(total);
    }
    let near = NearSites::new(sites, margin);
    let near_a_site = |chrom: &str, pos: u64| near.near(chrom, pos);
    let mut rng = rng(seed, Stream::SpliceNegatives, 0);
    let mut taken = HashSet::new();
    let mut out = vec![];
    let mut attempts = 0;
    while out.len() < count && total > 0 && attempts < 100 * count.max(1) {
        attempts += 1;
        let u = rng.next_u64() % total;
        let i = cumulative.partition_point(|&c| c <= u);
        let (t, start, _) = introns[i];
        let pos = start + (u - (cumulative[i] - (introns[i].2 - start + 1)));
        if near_a_site(&t.chrom, pos) || !taken.insert((t.chrom.clone(), pos, t.plus)) {
            continue;
        }
        out.push(Site {
            chrom: t.chrom.clone(),
            pos,
            plus: t.plus,
            class: Class::Neither,
            transcript: t.id.clone(),
        });
    }
    out.sort();
    out
}

/// The 0-based start of the `w` bases around the 1-based site `pos` (negative: off the
/// sequence): on the plus strand the site is at index w/2, on the minus strand at index w/2
/// of the reverse complement.
pub fn window_start(pos: u64, plus: bool, w: usize) -> i64 {
    let p0 = pos as i64 - 1;
    let half = (w / 2) as i64;
    if plus {
        p0 - half
    } else {
        p0 - (w as i64 - 1 - half)
    }
}

/// Why a window could not be cut.
pub enum Cut {
    Ok(Vec<u8>),
    OffSequence,
    HasN,
}

/// The `w` bases around a site, reverse-complemented on the minus strand, uppercase; the site
/// lands at index w/2.
pub fn window(chrom_seq: &[u8], site: &Site, w: usize) -> Cut {
    let start = window_start(site.pos, site.plus, w);
    if start < 0 || start as usize + w > chrom_seq.len() {
        return Cut::OffSequence;
    }
    match oriented(&chrom_seq[start as usize..start as usize + w], site.plus) {
        Some(out) => Cut::Ok(out),
        None => Cut::HasN,
    }
}

/// `bases` uppercase, reverse-complemented on the minus strand; None when any is not A/C/G/T
/// (N runs, IUPAC codes). What both `splice-sites` and `make-dataset` write.
pub fn oriented(bases: &[u8], plus: bool) -> Option<Vec<u8>> {
    let upper = bases.iter().map(u8::to_ascii_uppercase);
    let out: Vec<u8> = if plus {
        upper.collect()
    } else {
        upper
            .rev()
            .map(|b| match b {
                b'A' => b'T',
                b'C' => b'G',
                b'G' => b'C',
                b'T' => b'A',
                other => other,
            })
            .collect()
    };
    out.iter()
        .all(|b| matches!(b, b'A' | b'C' | b'G' | b'T'))
        .then_some(out)
}

/// Checks that a transcript's exons lie inside its chromosome.
pub fn check_inside(t: &Transcript, len: usize, annotation: &std::path::Path) -> Result<()> {
    for (&(_, end), &line) in t.exons.iter().zip(&t.lines) {
        if end as usize > len {
            bail!(
                "{}:{line}: exon of {} ends at {end}, past the end of {} ({len} bases in the FASTA)",
                annotation.display(),
                t.id,
                t.chrom
            );
        }
    }
    Ok(())
}
