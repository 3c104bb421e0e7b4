//! `dnabert splice-sites`: the seed's splice-site dataset from a genome FASTA and a GFF3/GTF
//! annotation (donor / acceptor / neither windows, split train/validation/test), and
//! `dnabert splice-report`: the seed's donor/acceptor tables from a model's predictions.

pub mod annotation;
pub mod report;
pub mod sites;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::fasta::FastaReader;
use crate::rng::{shuffle, Stream};
use sites::{Class, Cut, Site, Skipped};

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
    /// Negatives keep at least this many bases from every annotated site.
    #[arg(long, default_value_t = 50)]
    pub margin: u64,
    /// Seed of the negatives, the caps and the split: the same seed, the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hold these chromosomes out for validation (comma-separated) instead of 80/10/10.
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
    /// A TSV with `label` and `predicted` columns (finetune's test_predictions.tsv); classes
    /// donor 0, acceptor 1, neither 2.
    #[arg(long)]
    pub predictions: PathBuf,
    /// Output prefix: writes PREFIX.json and PREFIX.md.
    #[arg(long)]
    pub output: PathBuf,
    /// The tables' title.
    #[arg(long, default_value = "Splice sites")]
    pub title: String,
}

impl ReportArgs {
    /// `dnabert splice-report`: prints the Markdown tables.
    pub fn run(self) -> Result<()> {
        let r = report_from_predictions(&self.predictions, &self.output, &self.title)?;
        crate::cli::say(report::markdown(&r, &self.title).trim_end())
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub annotation_format: String,
    pub transcripts: usize,
    pub window: usize,
    /// Per split, per class.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub donors_with_gt: f64,
    pub acceptors_with_ag: f64,
    pub skipped: Skipped,
}

const SPLITS: [&str; 3] = ["train", "validation", "test"];

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
    let (format, transcripts) = annotation::read(&o.annotation)?;
    let mut skipped = Skipped::default();
    let truth = sites::true_sites(&transcripts, &mut skipped);
    let n_donor = truth.iter().filter(|s| s.class == Class::Donor).count();
    let n_acceptor = truth.len() - n_donor;
    let want_neg = o
        .negatives
        .unwrap_or(n_donor.max(n_acceptor).min(o.max_per_class));
    // Some negatives will fall into N runs or off the sequence: draw a few more than needed.
    let neg = sites::negatives(
        &transcripts,
        &truth,
        want_neg + want_neg / 5 + 10,
        o.margin,
        o.seed,
    );
    eprintln!(
        "splice-sites: {} transcripts; {n_donor} donors, {n_acceptor} acceptors, {} candidate negatives",
        transcripts.len(),
        neg.len()
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
        for t in &by_chrom_transcripts[chrom.as_str()] {
            sites::check_inside(t, rec.seq.len(), &o.annotation)?;
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

    // Cap each class (negatives at the number asked for), seeded.
    for (class, list) in windows.iter_mut() {
        let cap = if *class == Class::Neither {
            want_neg
        } else {
            o.max_per_class
        };
        if list.len() > cap {
            shuffle(list, o.seed, Stream::SpliceCap(*class as u64));
            *skipped
                .over_class_cap
                .entry(class.name().to_owned())
                .or_default() += list.len() - cap;
            list.truncate(cap);
            list.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }

    let gt = share(
        &windows,
        Class::Donor,
        |w, c| &w[c + 1..c + 3] == b"GT",
        o.window,
    );
    let ag = share(
        &windows,
        Class::Acceptor,
        |w, c| &w[c - 2..c] == b"AG",
        o.window,
    );

    // Split, per class: by chromosome, or 80/10/10 of a seeded shuffle.
    let mut split: BTreeMap<&str, Vec<(Site, Vec<u8>)>> = BTreeMap::new();
    for (class, list) in windows {
        let mut list = list;
        if o.validation_chroms.is_empty() && o.test_chroms.is_empty() {
            shuffle(&mut list, o.seed, Stream::SpliceSplit(class as u64));
            let n = list.len();
            let (nv, nt) = (
                (n as f64 * 0.1).round() as usize,
                (n as f64 * 0.1).round() as usize,
            );
            let test = list.split_off(n - nt);
            let val = list.split_off(n - nt - nv);
            split.entry("train").or_default().extend(list);
            split.entry("validation").or_default().extend(val);
            split.entry("test").or_default().extend(test);
        } else {
            for item in list {
                let to = if o.test_chroms.contains(&item.0.chrom) {
                    "test"
                } else if o.validation_chroms.contains(&item.0.chrom) {
                    "validation"
                } else {
                    "train"
                };
                split.entry(to).or_default().push(item);
            }
        }
    }

    std::fs::create_dir_all(&o.output)
        .with_context(|| format!("{}: cannot create", o.output.display()))?;
    let mut counts = BTreeMap::new();
    for name in SPLITS {
        let mut rows = split.remove(name).unwrap_or_default();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::from("chrom\tpos\tstrand\tclass\tlabel\ttranscript\tsequence\n");
        let mut per_class = BTreeMap::new();
        for c in Class::ALL {
            per_class.insert(c.name().to_owned(), 0);
        }
        for (s, w) in &rows {
            *per_class.get_mut(s.class.name()).expect("every class") += 1;
            writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                s.chrom,
                s.pos,
                if s.plus { '+' } else { '-' },
                s.class.name(),
                s.class as usize,
                s.transcript,
                String::from_utf8_lossy(w)
            )
            .expect("String");
        }
        crate::io_util::write_atomic(&o.output.join(format!("{name}.tsv")), text.as_bytes())?;
        counts.insert(name.to_owned(), per_class);
    }
    let summary = Summary {
        annotation_format: format!("{format:?}"),
        transcripts: transcripts.len(),
        window: o.window,
        counts,
        donors_with_gt: gt,
        acceptors_with_ag: ag,
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

fn share(
    windows: &BTreeMap<Class, Vec<(Site, Vec<u8>)>>,
    class: Class,
    test: impl Fn(&[u8], usize) -> bool,
    w: usize,
) -> f64 {
    let list = windows.get(&class).map(Vec::as_slice).unwrap_or(&[]);
    let hits = list.iter().filter(|(_, seq)| test(seq, w / 2)).count();
    hits as f64 / list.len().max(1) as f64
}

fn summary_md(s: &Summary) -> String {
    let mut m = format!(
        "# Splice-site dataset\n\n{} transcripts ({}), windows of {} bases.\n\n| split | donor | acceptor | neither |\n|---|---|---|---|\n",
        s.transcripts, s.annotation_format, s.window
    );
    for name in SPLITS {
        let c = &s.counts[name];
        writeln!(
            m,
            "| {name} | {} | {} | {} |",
            c["donor"], c["acceptor"], c["neither"]
        )
        .expect("String");
    }
    write!(
        m,
        "\nGT donors: {:.1}%; AG acceptors: {:.1}%.\n\nSkipped: {} single-exon transcripts; {} positions both donor and acceptor; windows off the sequence {:?}; windows with N {:?}; over the class cap {:?}.\n",
        100.0 * s.donors_with_gt,
        100.0 * s.acceptors_with_ag,
        s.skipped.single_exon_transcripts,
        s.skipped.ambiguous_sites,
        s.skipped.window_off_sequence,
        s.skipped.window_with_n,
        s.skipped.over_class_cap
    )
    .expect("String");
    m
}

/// Reads `label` and `predicted` columns (finetune's `test_predictions.tsv`, or `dnabert
/// predict`'s output on a labelled table) and writes the seed's tables as JSON and Markdown.
pub fn report_from_predictions(
    predictions: &Path,
    output: &Path,
    title: &str,
) -> Result<report::SpliceReport> {
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
    let r = report::compute(&truth, &pred);
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::io_util::write_atomic(
        &output.with_extension("json"),
        serde_json::to_string_pretty(&r)?.as_bytes(),
    )?;
    crate::io_util::write_atomic(
        &output.with_extension("md"),
        report::markdown(&r, title).as_bytes(),
    )?;
    Ok(r)
}
