//! `dnabert splice-sites`: the seed's splice-site dataset from a genome FASTA and a GFF3/GTF
//! annotation (donor / acceptor / neither windows, split train/validation/test), and
//! `dnabert splice-report`: the seed's donor/acceptor tables from a model's predictions.

pub mod annotation;
pub mod baselines;
mod decoys;
pub mod report;
pub mod sites;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::fasta::FastaReader;
pub use crate::tables::SplitKind;
use crate::tables::{self, Row, SPLITS};
pub use sites::NegativeKind;
use sites::{Class, Cut, NearSites, Site, Skipped};

/// `dnabert splice-sites`' flags, and the library's options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Genome FASTA, plain or gzip, or an https:// URL (URL#sha256=HEX to check it).
    #[arg(long)]
    pub fasta: PathBuf,
    /// GFF3 (gene → mRNA/transcript → exon by Parent) or GTF (by transcript_id); .gz too; or
    /// an https:// URL.
    #[arg(long)]
    pub annotation: PathBuf,
    /// Output folder: {train,validation,test}.tsv and summary.{json,md}.
    #[arg(long)]
    pub output: PathBuf,
    /// Window length in bases (even). A donor's window has the last exon base at index
    /// window/2 (GT at window/2 + 1..2); an acceptor's the first exon base (AG at
    /// window/2 - 2..1); a negative's the drawn position.
    #[arg(long, default_value_t = 400)]
    pub window: usize,
    /// At most this many windows per class (the seed's 10,000), a seeded sample.
    #[arg(long, default_value_t = 10_000)]
    pub max_per_class: usize,
    /// Negatives ("neither") to draw [default: as many as the larger site class, capped alike].
    #[arg(long)]
    pub negatives: Option<usize>,
    /// What the negatives are: decoy (GT or AG where a site's would be, from the same genes:
    /// the hard case), gene-body (random positions in the genes), random (random intron
    /// positions, mostly without GT/AG: a two-letter rule tells them apart).
    #[arg(long, value_enum, default_value_t = NegativeKind::Decoy)]
    pub negative_kind: NegativeKind,
    /// Negatives keep at least this many bases from every annotated site.
    #[arg(long, default_value_t = 50)]
    pub margin: u64,
    /// Seed of the negatives, the caps and the split: the same seed, the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// How the windows are split: gene (every gene's windows in one split, 10% of the windows
    /// each to validation and test), random (80/10/10 per class), chroms (by
    /// --validation-chroms/--test-chroms) [default: chroms when those are given, else gene].
    #[arg(long, value_enum)]
    pub split: Option<SplitKind>,
    /// Hold these chromosomes out for validation (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub validation_chroms: Vec<String>,
    /// Hold these chromosomes out for testing (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub test_chroms: Vec<String>,
}

impl Options {
    /// `dnabert splice-sites`: a line on stderr with the GT/AG shares.
    pub fn run(self) -> Result<()> {
        let s = run(&self)?;
        eprintln!(
            "splice-sites: wrote {} (GT donors {:.1}%, AG acceptors {:.1}%)",
            self.output.display(),
            100.0 * s.donors_with_gt,
            100.0 * s.acceptors_with_ag
        );
        Ok(())
    }
}

/// `dnabert splice-report`'s flags.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// TSVs with `label` and `predicted` columns (finetune's test_predictions.tsv), one per
    /// fine-tuning run on the same test set (comma-separated or repeated: seeds give mean ± sd);
    /// classes donor 0, acceptor 1, neither 2.
    #[arg(long, value_delimiter = ',', required = true)]
    pub predictions: Vec<PathBuf>,
    /// The test table the predictions are of (splice-sites' test.tsv, rows in the same order):
    /// adds the GT/AG rule as a baseline on the same rows.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// The training table (splice-sites' train.tsv): adds a position weight matrix learnt on it
    /// as a baseline (needs --test).
    #[arg(long, requires = "test")]
    pub train: Option<PathBuf>,
    /// Another model's predictions on the same test set (comma-separated: one per seed), shown
    /// beside the model with its mean ± sd and the model's lift over it, in standard deviations
    /// across seeds too (e.g. the same architecture fine-tuned from random weights).
    #[arg(long, value_delimiter = ',')]
    pub versus: Vec<PathBuf>,
    /// The --versus model's name in the tables.
    #[arg(long, default_value = "other model", requires = "versus")]
    pub versus_name: String,
    /// Output prefix: writes PREFIX.json and PREFIX.md.
    #[arg(long)]
    pub output: PathBuf,
    /// The tables' title.
    #[arg(long, default_value = "Splice sites")]
    pub title: String,
    /// Also show the BioNeMo DNABERT model card's figures, labelled as a reference from another
    /// dataset and setting (not a baseline of this one).
    #[arg(long)]
    pub reference: bool,
}

impl ReportArgs {
    /// `dnabert splice-report`: prints the Markdown tables.
    pub fn run(self) -> Result<()> {
        let e = evaluate_files(&self)?;
        crate::cli::say(report::markdown(&e, self.reference).trim_end())
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub annotation_format: String,
    pub transcripts: usize,
    pub window: usize,
    pub negative_kind: NegativeKind,
    pub split: SplitKind,
    /// Per split, per class.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Genes per split.
    pub genes: BTreeMap<String, usize>,
    pub donors_with_gt: f64,
    pub acceptors_with_ag: f64,
    /// Per class, the share of windows with GT at the donor offset and with AG at the acceptor
    /// offset: how much a two-letter rule could tell (the dataset's difficulty).
    pub dinucleotides: BTreeMap<String, Dinucleotides>,
    /// Decoy candidates in the genes (donor-like, acceptor-like), of which the negatives are a
    /// sample; zero for other kinds.
    pub decoy_candidates: [u64; 2],
    pub skipped: Skipped,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Dinucleotides {
    pub gt_at_donor_offset: f64,
    pub ag_at_acceptor_offset: f64,
}

pub fn run(o: &Options) -> Result<Summary> {
    let local = Options {
        fasta: crate::remote::local(&o.fasta)?,
        annotation: crate::remote::local(&o.annotation)?,
        ..o.clone()
    };
    let o = &local;
    if o.window < 8 || !o.window.is_multiple_of(2) {
        bail!(
            "--window must be an even number of bases ≥ 8, not {}",
            o.window
        );
    }
    if o.max_per_class == 0 {
        bail!("--max-per-class 0 leaves every class empty: give at least 1");
    }
    let (format, transcripts) = annotation::read(&o.annotation)?;
    check_split_chroms(
        &transcripts,
        &o.annotation,
        &o.validation_chroms,
        &o.test_chroms,
    )?;
    let mut skipped = Skipped::default();
    let truth = sites::true_sites(&transcripts, &mut skipped);
    if truth.is_empty() {
        bail!(
            "{}: no splice site: {} transcripts read, {} of them with a single exon (no \
             transcript with two or more exons under its gene)",
            o.annotation.display(),
            transcripts.len(),
            skipped.single_exon_transcripts
        );
    }
    let n_donor = truth.iter().filter(|s| s.class == Class::Donor).count();
    let n_acceptor = truth.len() - n_donor;
    let want_neg = o
        .negatives
        .unwrap_or(n_donor.max(n_acceptor).min(o.max_per_class));
    let split_kind = SplitKind::resolve(o.split, &o.validation_chroms, &o.test_chroms)?;
    let near = NearSites::new(&truth, o.margin);
    // Random and gene-body negatives are positions, drawn now; some will fall into N runs or off
    // the sequence: a few more than needed. Decoys need the sequence: drawn while it streams.
    let neg = match o.negative_kind {
        NegativeKind::Decoy => vec![],
        kind => sites::negatives(
            &transcripts,
            &truth,
            want_neg + want_neg / 5 + 10,
            o.margin,
            o.seed,
            kind,
        ),
    };
    let mut decoys = (o.negative_kind == NegativeKind::Decoy)
        .then(|| decoys::Decoys::new(want_neg, o.seed, o.window));
    eprintln!(
        "splice-sites: {} transcripts; {n_donor} donors, {n_acceptor} acceptors; {} negatives",
        transcripts.len(),
        value_name(&o.negative_kind)
    );

    // Stream the genome: cut every candidate's window on its chromosome.
    let mut on_chrom: HashMap<&str, Vec<&Site>> = HashMap::new();
    for s in truth.iter().chain(&neg) {
        on_chrom.entry(&s.chrom).or_default().push(s);
    }
    let mut by_chrom_transcripts: HashMap<&str, Vec<&annotation::Transcript>> = HashMap::new();
    for t in &transcripts {
        by_chrom_transcripts.entry(&t.chrom).or_default().push(t);
    }
    let mut windows: BTreeMap<Class, Vec<(Site, Vec<u8>)>> = BTreeMap::new();
    let mut seen_chroms = std::collections::HashSet::new();
    let mut reader = FastaReader::open(&o.fasta)?;
    while let Some(rec) = reader.next_record() {
        let rec = rec?;
        let chrom = rec.id.to_owned();
        let Some(list) = on_chrom.get(chrom.as_str()) else {
            continue;
        };
        seen_chroms.insert(chrom.clone());
        let on_this = &by_chrom_transcripts[chrom.as_str()];
        for t in on_this {
            sites::check_inside(t, rec.seq.len(), &o.annotation)?;
        }
        if let Some(d) = decoys.as_mut() {
            d.scan(rec.seq, on_this, &near);
        }
        for s in list {
            let key = s.class.name().to_owned();
            match sites::window(rec.seq, s, o.window) {
                Cut::Ok(w) => windows.entry(s.class).or_default().push(((*s).clone(), w)),
                Cut::OffSequence => *skipped.window_off_sequence.entry(key).or_default() += 1,
                Cut::HasN => *skipped.window_with_n.entry(key).or_default() += 1,
            }
        }
    }
    for t in &transcripts {
        if !seen_chroms.contains(&t.chrom) && t.exons.len() >= 2 {
            bail!(
                "{}:{}: chromosome '{}' (transcript {}) is not in {}",
                o.annotation.display(),
                t.lines[0],
                t.chrom,
                t.id,
                o.fasta.display()
            );
        }
    }

    for class in [Class::Donor, Class::Acceptor] {
        if windows.get(&class).is_none_or(|w| w.is_empty()) {
            let n = |m: &BTreeMap<String, usize>| m.get(class.name()).copied().unwrap_or(0);
            bail!(
                "no {} window could be cut: {} ran off their sequence (--window {} too long?), {} \
                 held N",
                class.name(),
                n(&skipped.window_off_sequence),
                o.window,
                n(&skipped.window_with_n)
            );
        }
    }

    let mut decoy_candidates = [0; 2];
    if let Some(d) = decoys {
        let (kept, offered) = d.finish();
        decoy_candidates = offered;
        windows.entry(Class::Neither).or_default().extend(kept);
    }

    // The rest is `make-dataset`'s (`tables`): a plugin that chooses these windows writes these
    // files. Donors and acceptors are capped at --max-per-class, negatives at the number asked
    // for; the group of a window is its transcript's gene.
    let gene_of: HashMap<&str, &str> = transcripts
        .iter()
        .map(|t| (t.id.as_str(), t.gene.as_str()))
        .collect();
    let labels: Vec<String> = Class::ALL.iter().map(|c| c.name().to_owned()).collect();
    let rows: Vec<Row> = windows
        .into_values()
        .flatten()
        .map(|(s, seq)| {
            // Only windows on the sequence were cut: the start is not negative.
            let start = sites::window_start(s.pos, s.plus, o.window) as u64;
            Row {
                start,
                end: start + o.window as u64,
                plus: s.plus,
                label: s.class as usize,
                group: gene_of
                    .get(s.transcript.as_str())
                    .map_or_else(|| s.transcript.clone(), |g| (*g).to_owned()),
                chrom: s.chrom,
                seq,
            }
        })
        .collect();
    let mut dropped = tables::Dropped::default();
    let t = tables::build(
        rows,
        &tables::Plan {
            labels: &labels,
            caps: &[None, None, Some(want_neg)],
            max_per_class: o.max_per_class,
            seed: o.seed,
            split: split_kind,
            validation_chroms: &o.validation_chroms,
            test_chroms: &o.test_chroms,
        },
        &mut dropped,
    );
    skipped.over_class_cap = dropped.over_class_cap;
    let share = |class: Class, test: fn(&[u8], usize) -> bool| {
        let of_class: Vec<&Row> = t.rows().filter(|r| r.label == class as usize).collect();
        let hits = of_class
            .iter()
            .filter(|r| test(&r.seq, o.window / 2))
            .count();
        hits as f64 / of_class.len().max(1) as f64
    };
    let gt_at = |w: &[u8], c: usize| &w[c + 1..c + 3] == b"GT";
    let ag_at = |w: &[u8], c: usize| &w[c - 2..c] == b"AG";
    let (gt, ag) = (share(Class::Donor, gt_at), share(Class::Acceptor, ag_at));
    let dinucleotides: BTreeMap<String, Dinucleotides> = Class::ALL
        .iter()
        .map(|&c| {
            let d = Dinucleotides {
                gt_at_donor_offset: share(c, gt_at),
                ag_at_acceptor_offset: share(c, ag_at),
            };
            (c.name().to_owned(), d)
        })
        .collect();
    t.write(&labels, &o.output)?;
    let counts = t.counts(&labels);
    let genes = t.groups();
    let summary = Summary {
        annotation_format: format!("{format:?}"),
        transcripts: transcripts.len(),
        window: o.window,
        negative_kind: o.negative_kind,
        split: split_kind,
        counts,
        genes,
        donors_with_gt: gt,
        acceptors_with_ag: ag,
        dinucleotides,
        decoy_candidates,
        skipped,
    };
    crate::io_util::write_atomic(
        &o.output.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    crate::io_util::write_atomic(
        &o.output.join("summary.md"),
        summary_md(&summary).as_bytes(),
    )?;
    Ok(summary)
}

/// A chromosome named for a split that the annotation does not have would leave that split
/// empty: refused, naming the flag and some chromosomes the annotation has.
pub fn check_split_chroms(
    transcripts: &[annotation::Transcript],
    annotation: &std::path::Path,
    validation_chroms: &[String],
    test_chroms: &[String],
) -> Result<()> {
    let chroms: std::collections::BTreeSet<&str> =
        transcripts.iter().map(|t| t.chrom.as_str()).collect();
    for (flag, names) in [
        ("--validation-chroms", validation_chroms),
        ("--test-chroms", test_chroms),
    ] {
        if let Some(bad) = names.iter().find(|n| !chroms.contains(n.as_str())) {
            let some: Vec<&str> = chroms.iter().take(10).copied().collect();
            bail!(
                "{flag} {bad}: no transcript of {} is on it (its chromosomes: {}{})",
                annotation.display(),
                some.join(", "),
                if chroms.len() > 10 { ", …" } else { "" }
            );
        }
    }
    Ok(())
}

/// `3 donor, 2 acceptor` (`none` for an empty map), for the summaries.
pub fn counts_in_words(b: &BTreeMap<String, usize>) -> String {
    if b.is_empty() {
        "none".to_string()
    } else {
        b.iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A choice as its flag spells it (`gene-body`, not `GeneBody`).
pub fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

fn summary_md(s: &Summary) -> String {
    let mut m = format!(
        "# Splice-site dataset\n\n{} transcripts ({}), windows of {} bases; {} negatives, a {} split.\n\n| split | donor | acceptor | neither | genes |\n|---|---|---|---|---|\n",
        s.transcripts,
        s.annotation_format,
        s.window,
        value_name(&s.negative_kind),
        value_name(&s.split)
    );
    for name in SPLITS {
        let c = &s.counts[name];
        // Writing into a String cannot fail.
        let _ = writeln!(
            m,
            "| {name} | {} | {} | {} | {} |",
            c["donor"], c["acceptor"], c["neither"], s.genes[name]
        );
    }
    m.push_str("\nWhat a two-letter rule sees, per class (share of windows):\n\n| class | GT at the donor offset | AG at the acceptor offset |\n|---|---|---|\n");
    for (class, d) in &s.dinucleotides {
        // Writing into a String cannot fail.
        let _ = writeln!(
            m,
            "| {class} | {:.1}% | {:.1}% |",
            100.0 * d.gt_at_donor_offset,
            100.0 * d.ag_at_acceptor_offset
        );
    }
    if s.decoy_candidates != [0, 0] {
        // Writing into a String cannot fail.
        let _ = writeln!(
            m,
            "\nDecoy candidates in the genes: {} donor-like, {} acceptor-like.",
            s.decoy_candidates[0], s.decoy_candidates[1]
        );
    }
    let counts = counts_in_words;
    let _ = write!(
        m,
        "\nSkipped: {} single-exon transcripts; {} positions both donor and acceptor; windows off the sequence: {}; windows with N: {}; over the class cap: {}.\n",
        s.skipped.single_exon_transcripts,
        s.skipped.ambiguous_sites,
        counts(&s.skipped.window_off_sequence),
        counts(&s.skipped.window_with_n),
        counts(&s.skipped.over_class_cap)
    );
    m
}

/// `label` and `predicted` columns of a predictions TSV (finetune's `test_predictions.tsv`, or
/// `dnabert predict`'s output on a labelled table).
fn read_predictions(predictions: &Path) -> Result<(Vec<usize>, Vec<usize>)> {
    let text = std::fs::read_to_string(predictions)
        .with_context(|| format!("{}: cannot read", predictions.display()))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split('\t').collect())
        .unwrap_or_default();
    let col = |n: &str| {
        header
            .iter()
            .position(|h| *h == n)
            .with_context(|| format!("{}: no '{n}' column in the header", predictions.display()))
    };
    let (li, pi) = (col("label")?, col("predicted")?);
    let (mut truth, mut pred) = (vec![], vec![]);
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let get = |c: usize| -> Result<usize> {
            f.get(c)
                .and_then(|v| v.parse().ok())
                .filter(|v| *v < 3)
                .with_context(|| {
                    format!(
                        "{}:{}: expected a class 0, 1 or 2 in column {}",
                        predictions.display(),
                        i + 1,
                        c + 1
                    )
                })
        };
        truth.push(get(li)?);
        pred.push(get(pi)?);
    }
    if truth.is_empty() {
        bail!("{}: no predictions", predictions.display());
    }
    Ok((truth, pred))
}

/// `splice-report`: the runs' tables beside the baselines on the same rows, written as
/// PREFIX.json and PREFIX.md.
/// Prediction files of one test set: the labels (equal in every file, and to `same`'s when
/// given) and each file's predictions.
fn read_runs(
    files: &[PathBuf],
    same: Option<(&Vec<usize>, &PathBuf)>,
) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let mut first: Option<(Vec<usize>, &PathBuf)> = same.map(|(t, p)| (t.clone(), p));
    let mut runs = vec![];
    for p in files {
        let (t, pred) = read_predictions(p)?;
        match &first {
            Some((labels, from)) if *labels != t => bail!(
                "{}: its labels differ from {}'s: predictions of another test set",
                p.display(),
                from.display()
            ),
            Some(_) => {}
            None => first = Some((t, p)),
        }
        runs.push(pred);
    }
    let (truth, _) = first.context("no predictions files")?;
    Ok((truth, runs))
}

pub fn evaluate_files(a: &ReportArgs) -> Result<report::Evaluation> {
    let (truth, runs) = read_runs(&a.predictions, None)?;
    let mut baselines = vec![];
    if !a.versus.is_empty() {
        let (_, versus) = read_runs(&a.versus, Some((&truth, &a.predictions[0])))?;
        baselines.push((a.versus_name.as_str(), versus));
    }
    if let Some(test) = &a.test {
        let rows = crate::train::finetune::read_table(test, 3)?;
        if rows.len() != truth.len() {
            bail!(
                "{}: {} rows, but the predictions have {}: not the table they are of",
                test.display(),
                rows.len(),
                truth.len()
            );
        }
        if let Some(i) = rows.iter().zip(&truth).position(|(r, &t)| r.label != t) {
            bail!(
                "{}: row {} is labelled {}, the predictions say {}: not the table they are of (or in another order)",
                test.display(),
                i + 1,
                rows[i].label,
                truth[i]
            );
        }
        baselines.push((
            "gt_ag",
            vec![rows.iter().map(|r| baselines::gt_ag(&r.seq)).collect()],
        ));
        if let Some(train) = &a.train {
            let train_rows = crate::train::finetune::read_table(train, 3)?;
            let w = rows.first().map_or(0, |r| r.seq.len());
            let labelled: Vec<(&[u8], usize)> = train_rows
                .iter()
                .map(|r| (r.seq.as_slice(), r.label))
                .collect();
            let pwm = baselines::Pwm::train(&labelled, w);
            baselines.push((
                "pwm",
                vec![rows.iter().map(|r| pwm.predict(&r.seq)).collect()],
            ));
        }
    }
    let e = report::evaluate(&a.title, &truth, &runs, &baselines);
    if let Some(parent) = a.output.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    crate::io_util::write_atomic(
        &a.output.with_extension("json"),
        serde_json::to_string_pretty(&e)?.as_bytes(),
    )?;
    crate::io_util::write_atomic(
        &a.output.with_extension("md"),
        report::markdown(&e, a.reference).as_bytes(),
    )?;
    Ok(e)
}
