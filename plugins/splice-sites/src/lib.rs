//! `dnabert splice-sites` as a dataset task: donors, acceptors and "neither" windows from the
//! multi-exon transcripts, written against the plugin interface alone. With the same settings,
//! `make-dataset --plugin splice_sites.wasm` writes the same train/validation/test tables as
//! `splice-sites`, byte for byte (plugin/tests/it/plugins.rs checks it on the chrX data): the
//! proof that the interface carries everything the built-in task uses.
//!
//! Sites are 1-based, as in plugin/src/splice/sites.rs: a donor is the last base of an exon that
//! is not the transcript's last, an acceptor the first base of one that is not its first, in
//! transcript orientation; the window of `window` bases has the site at index window/2.
//!
//! Three passes over the genome (two for random negatives): pass 0 reads every transcript (the
//! true sites, and the number of negatives, depend on the whole annotation); pass 1 emits the
//! sites and the random negatives and, for decoys, offers each chromosome's candidates to a
//! seeded reservoir that is uniform over the whole genome; pass 2 emits the decoys it kept.
//!
//! --config window=400 max_per_class=10000 negatives=N negative_kind=decoy|random|gene-body
//! margin=50 seed=0 (give `make-dataset` the same `--max-per-class` and `--seed`).
use std::collections::{BTreeMap, HashMap, HashSet};

use dnabert_plugin::{cap, emit, fail, label, passes, sequence, Config, Label, Record, Task};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The host's stream numbers (plugin/src/rng.rs) for the draws this task makes.
const STREAM_NEGATIVES: u64 = 20;
const STREAM_DECOYS: u64 = 21;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r.set_word_pos(0);
    r
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Decoy,
    Random,
    GeneBody,
}

/// A transcript as splice-sites reads it: 1-based inclusive exons, sorted.
struct Tx {
    gene: String,
    chrom: String,
    plus: bool,
    exons: Vec<(u64, u64)>,
    line: u64,
}

/// A position to emit: (1-based pos, strand, class, the gene of its transcript).
type Site = (u64, bool, usize, String);

const DONOR: usize = 0;
const ACCEPTOR: usize = 1;
const NEITHER: usize = 2;

struct Splice {
    w: u64,
    max_per_class: u64,
    negatives: Option<u64>,
    kind: Kind,
    margin: u64,
    seed: u64,
    labels: [Label; 3],
    pass: u32,
    transcripts: Vec<Tx>,
    /// By chromosome: the sites and drawn negatives to emit (pass 1), sorted positions of every
    /// true site (for the margin), and the decoys kept (pass 2).
    emit_on: HashMap<String, Vec<Site>>,
    near: HashMap<String, Vec<u64>>,
    decoys: Decoys,
}

impl Task for Splice {
    fn start(config: &Config) -> Self {
        let kind = match config.0.get("negative_kind").map(String::as_str) {
            None | Some("decoy") => Kind::Decoy,
            Some("random") => Kind::Random,
            Some("gene-body") => Kind::GeneBody,
            Some(other) => fail(&format!(
                "--config negative_kind={other}: decoy, random or gene-body"
            )),
        };
        let w = config.number("window", 400);
        if w < 8 || w % 2 == 1 {
            fail(&format!("--config window={w}: an even number of bases ≥ 8"));
        }
        passes(if kind == Kind::Decoy { 3 } else { 2 });
        Splice {
            w,
            max_per_class: config.number("max_per_class", 10_000),
            negatives: config
                .0
                .get("negatives")
                .map(|_| config.number("negatives", 0)),
            kind,
            margin: config.number("margin", 50),
            seed: config.number("seed", 0),
            labels: [label("donor"), label("acceptor"), label("neither")],
            pass: 0,
            transcripts: vec![],
            emit_on: HashMap::new(),
            near: HashMap::new(),
            decoys: Decoys::default(),
        }
    }

    fn pass(&mut self, n: u32, _of: u32) {
        self.pass = n;
        if n == 1 {
            self.plan();
        }
    }

    fn transcript(&mut self, t: &dnabert_plugin::Transcript, record: &Record) {
        if self.pass == 0 {
            self.transcripts.push(Tx {
                gene: t.gene.clone(),
                chrom: record.id.clone(),
                plus: t.plus,
                exons: t.exons.iter().map(|&(s, e)| (s + 1, e)).collect(),
                line: t.line,
            });
        }
    }

    fn record_end(&mut self, record: &Record) {
        match self.pass {
            1 => {
                // splice-sites looks for decoys on the chromosomes that have a site.
                if self.kind == Kind::Decoy && self.near.contains_key(&record.id) {
                    self.scan_decoys(record);
                }
                let sites = self.emit_on.remove(&record.id).unwrap_or_default();
                self.emit_all(record, &sites);
            }
            2 => {
                let kept: Vec<Site> = self.decoys.kept_on(&record.id);
                self.emit_all(record, &kept);
            }
            _ => {}
        }
    }
}

impl Splice {
    /// After pass 0: the true sites, how many negatives, and the random ones drawn.
    fn plan(&mut self) {
        // splice-sites reads the annotation in file order; the host sends it record by record.
        self.transcripts.sort_by_key(|t| t.line);
        let truth = true_sites(&self.transcripts);
        let n_donor = truth.values().filter(|v| v.0 == DONOR).count() as u64;
        let n_acceptor = truth.len() as u64 - n_donor;
        let want = self
            .negatives
            .unwrap_or(n_donor.max(n_acceptor).min(self.max_per_class));
        cap(self.labels[NEITHER], want);
        for ((chrom, pos, plus), (class, gene)) in truth {
            self.near.entry(chrom.clone()).or_default().push(pos);
            self.emit_on
                .entry(chrom)
                .or_default()
                .push((pos, plus, class, gene));
        }
        self.near.values_mut().for_each(|v| v.sort_unstable());
        match self.kind {
            Kind::Decoy => {
                self.decoys = Decoys {
                    want: [want / 2, want - want / 2],
                    rng: Some(rng(self.seed, STREAM_DECOYS)),
                    ..Decoys::default()
                }
            }
            kind => {
                for (chrom, site) in self.draw(want + want / 5 + 10, kind) {
                    self.emit_on.entry(chrom).or_default().push(site);
                }
            }
        }
    }

    fn near(&self, chrom: &str, pos: u64) -> bool {
        self.near
            .get(chrom)
            .is_some_and(|sites| near(sites, self.margin, pos))
    }

    /// Up to `count` distinct positions in the introns (or gene bodies) of the multi-exon
    /// transcripts, weighted by length, away from every site (splice-sites' `negatives`).
    fn draw(&self, count: u64, kind: Kind) -> Vec<(String, Site)> {
        let mut regions: Vec<(&Tx, u64, u64)> = vec![];
        for t in self.transcripts.iter().filter(|t| t.exons.len() >= 2) {
            if kind == Kind::GeneBody {
                regions.push((t, t.exons[0].0, t.exons[t.exons.len() - 1].1));
            } else {
                for p in t.exons.windows(2).filter(|p| p[1].0 > p[0].1 + 1) {
                    regions.push((t, p[0].1 + 1, p[1].0 - 1));
                }
            }
        }
        let mut cumulative = Vec::with_capacity(regions.len());
        let mut total = 0u64;
        for (_, s, e) in &regions {
            total += e - s + 1;
            cumulative.push(total);
        }
        let mut r = rng(self.seed, STREAM_NEGATIVES);
        let mut taken = HashSet::new();
        let mut out = vec![];
        let mut attempts = 0;
        while (out.len() as u64) < count && total > 0 && attempts < 100 * count.max(1) {
            attempts += 1;
            let u = r.next_u64() % total;
            let i = cumulative.partition_point(|&c| c <= u);
            let (t, start, end) = regions[i];
            let pos = start + (u - (cumulative[i] - (end - start + 1)));
            if self.near(&t.chrom, pos) || !taken.insert((t.chrom.clone(), pos, t.plus)) {
                continue;
            }
            out.push((t.chrom.clone(), (pos, t.plus, NEITHER, t.gene.clone())));
        }
        out
    }

    /// The windows of `sites` that lie on the record (the host drops those holding N).
    fn emit_all(&self, record: &Record, sites: &[Site]) {
        for (pos, plus, class, gene) in sites {
            if let Some(start) = window_start(*pos, *plus, self.w) {
                if start + self.w <= record.len {
                    emit(start, start + self.w, *plus, self.labels[*class], gene);
                }
            }
        }
    }

    /// Offers every decoy candidate of this record's multi-exon transcripts, in genomic order
    /// (splice-sites' `decoys`): GT where a donor's intron would start, AG where an acceptor's
    /// would end, in transcript orientation, not near a site, its window all A/C/G/T.
    fn scan_decoys(&mut self, record: &Record) {
        let mut spans: Vec<(&Tx, u64, u64)> = self
            .transcripts
            .iter()
            .filter(|t| t.chrom == record.id && t.exons.len() >= 2)
            .map(|t| (t, t.exons[0].0, t.exons[t.exons.len() - 1].1))
            .collect();
        spans.sort_by_key(|&(t, s, e)| (!t.plus, s, e));
        let mut merged: Vec<(bool, String, u64, u64)> = vec![];
        for (t, s, e) in spans {
            match merged.last_mut() {
                Some(last) if last.0 == t.plus && s <= last.3 => last.3 = last.3.max(e),
                _ => merged.push((t.plus, t.gene.clone(), s, e)),
            }
        }
        let w = self.w;
        let no_sites = vec![];
        let sites = self.near.get(&record.id).unwrap_or(&no_sites);
        for (plus, gene, first, last) in merged {
            // The bases every window and dinucleotide of the span reads, 0-based from `from`.
            let from = first.saturating_sub(w + 1);
            let to = (last + w).min(record.len);
            let seq: Vec<u8> = sequence(from, to)
                .iter()
                .map(u8::to_ascii_uppercase)
                .collect();
            let mut bad = vec![0u32; seq.len() + 1];
            for (i, b) in seq.iter().enumerate() {
                bad[i + 1] = bad[i] + u32::from(!matches!(b, b'A' | b'C' | b'G' | b'T'));
            }
            let at = |p0: u64, n: u64| -> Option<&[u8]> {
                let i = p0.checked_sub(from)? as usize;
                seq.get(i..i + n as usize)
            };
            for pos in first..=last {
                let p0 = pos - 1;
                let (donor_like, acceptor_like) = if plus {
                    (
                        at(p0 + 1, 2) == Some(b"GT"),
                        p0 >= 2 && at(p0 - 2, 2) == Some(b"AG"),
                    )
                } else {
                    (
                        p0 >= 2 && at(p0 - 2, 2) == Some(b"AC"),
                        at(p0 + 1, 2) == Some(b"CT"),
                    )
                };
                if !(donor_like || acceptor_like) || near(sites, self.margin, pos) {
                    continue;
                }
                let Some(start) = window_start(pos, plus, w) else {
                    continue;
                };
                if start + w > record.len {
                    continue;
                }
                let i = (start - from) as usize;
                if bad[i + w as usize] != bad[i] {
                    continue;
                }
                let kind = if donor_like { 0 } else { 1 };
                self.decoys.offer(kind, || {
                    (record.id.clone(), (pos, plus, NEITHER, gene.clone()))
                });
            }
        }
    }
}

/// Whether `pos` is closer than `margin` (at least 1) to one of the sorted `sites`.
fn near(sites: &[u64], margin: u64, pos: u64) -> bool {
    let margin = margin.max(1);
    let i = sites.partition_point(|&p| p < pos);
    let after = sites.get(i).is_some_and(|&p| p - pos < margin);
    let before = i > 0 && pos - sites[i - 1] < margin;
    after || before
}

/// The 0-based start of the window around 1-based `pos`; None off the sequence's start.
fn window_start(pos: u64, plus: bool, w: u64) -> Option<u64> {
    let p0 = pos.checked_sub(1)?;
    if plus {
        p0.checked_sub(w / 2)
    } else {
        p0.checked_sub(w - 1 - w / 2)
    }
}

/// Distinct donors and acceptors by (chrom, pos, strand), each with the gene of the first
/// transcript that has it; positions that are a donor in one transcript and an acceptor in
/// another are left out.
fn true_sites(transcripts: &[Tx]) -> BTreeMap<(String, u64, bool), (usize, String)> {
    let mut seen: BTreeMap<(String, u64, bool), (usize, String, bool)> = BTreeMap::new();
    for t in transcripts.iter().filter(|t| t.exons.len() >= 2) {
        let n = t.exons.len();
        for (i, &(start, end)) in t.exons.iter().enumerate() {
            let (donor, acceptor) = if t.plus {
                ((i + 1 < n).then_some(end), (i > 0).then_some(start))
            } else {
                ((i > 0).then_some(start), (i + 1 < n).then_some(end))
            };
            for (pos, class) in [(donor, DONOR), (acceptor, ACCEPTOR)] {
                let Some(pos) = pos else { continue };
                let e = seen.entry((t.chrom.clone(), pos, t.plus)).or_insert((
                    class,
                    t.gene.clone(),
                    false,
                ));
                if e.0 != class {
                    e.2 = true;
                }
            }
        }
    }
    seen.into_iter()
        .filter(|(_, v)| !v.2)
        .map(|(k, (class, gene, _))| (k, (class, gene)))
        .collect()
}

/// Two seeded reservoirs (Algorithm R), donor-like and acceptor-like, sharing one generator.
#[derive(Default)]
struct Decoys {
    want: [u64; 2],
    kept: [Vec<(String, Site)>; 2],
    offered: [u64; 2],
    rng: Option<ChaCha8Rng>,
}

impl Decoys {
    /// Offers the `kind` candidate that `site` makes (called only when it is kept).
    fn offer(&mut self, kind: usize, site: impl FnOnce() -> (String, Site)) {
        let i = self.offered[kind];
        self.offered[kind] += 1;
        if i < self.want[kind] {
            self.kept[kind].push(site());
        } else if let Some(r) = self.rng.as_mut() {
            let j = r.next_u64() % (i + 1);
            if j < self.want[kind] {
                self.kept[kind][j as usize] = site();
            }
        }
    }

    fn kept_on(&self, chrom: &str) -> Vec<Site> {
        self.kept
            .iter()
            .flatten()
            .filter(|(c, _)| c == chrom)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

dnabert_plugin::task!(Splice);
