//! `dnabert make-dataset`: a fine-tuning dataset from a genome, its annotation and a task
//! plugin. The plugin sees each transcript and says which windows to take and how to label
//! them; the host does the rest, the same for every task: windows holding anything but
//! A/C/G/T dropped and counted, the reverse complement on the minus strand, duplicates merged
//! (a window given two labels dropped), a seeded cap per label, a seeded 80/10/10 split by
//! group (a window's group, else its transcript's gene) or by chromosome, the three tables
//! and `summary.{json,md}`. The tables open in `dnabert finetune` as they are (`sequence`
//! and `label` columns) and in pandas.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{abi, LimitArgs, Plugin};
use crate::fasta::FastaReader;
use crate::rng::{shuffle, Stream};
use crate::splice::annotation::{self, Transcript};

pub const SPLITS: [&str; 3] = ["train", "validation", "test"];
const HEADER: &str = "chrom\tstart\tend\tstrand\tclass\tlabel\tgroup\tsequence\n";

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Genome FASTA, plain or gzip, or an https:// URL.
    #[arg(long)]
    pub fasta: PathBuf,
    /// GFF3 or GTF annotation (.gz too), or an https:// URL: its transcripts, with their
    /// exons, are what the plugin sees.
    #[arg(long)]
    pub annotation: PathBuf,
    /// The task: a WebAssembly module (.wasm, or .wat text) built against docs/plugins.md.
    #[arg(long)]
    pub plugin: PathBuf,
    /// A parameter for the plugin, KEY=VALUE (repeatable); passed to it as text.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Output folder: {train,validation,test}.tsv and summary.{json,md}.
    #[arg(long)]
    pub output: PathBuf,
    /// At most this many windows per label, a seeded sample.
    #[arg(long, default_value_t = 10_000)]
    pub max_per_class: usize,
    /// Seed of the caps and the split: the same seed, the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hold these chromosomes out for validation (comma-separated); with --test-chroms, the
    /// split is by chromosome instead of 80/10/10 by group.
    #[arg(long, value_delimiter = ',')]
    pub validation_chroms: Vec<String>,
    /// Hold these chromosomes out for testing (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub test_chroms: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What was dropped, by label.
#[derive(Debug, Default, Serialize)]
pub struct Dropped {
    pub with_non_acgt: BTreeMap<String, usize>,
    pub duplicates: usize,
    pub conflicting_labels: usize,
    pub over_class_cap: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub plugin: String,
    pub plugin_sha256: String,
    pub config: Vec<String>,
    pub labels: Vec<String>,
    pub transcripts: usize,
    pub split: String,
    /// Windows per split, per label.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub dropped: Dropped,
    /// Windows the plugin emitted (before any was dropped).
    pub emitted: usize,
    /// Calls into the plugin and the seconds spent in them (its share of the run).
    pub plugin_calls: u64,
    pub plugin_seconds: f64,
}

struct Row {
    chrom: String,
    start: u64,
    end: u64,
    plus: bool,
    label: usize,
    group: String,
    seq: Vec<u8>,
}

impl Options {
    pub fn run(self) -> Result<()> {
        let s = run(&self)?;
        let total: usize = s.counts.values().flat_map(|c| c.values()).sum();
        eprintln!(
            "make-dataset: {total} windows of {} labels from {} transcripts into {}",
            s.labels.len(),
            s.transcripts,
            self.output.display()
        );
        eprintln!(
            "make-dataset: {} calls into the plugin ({} windows emitted) took {:.3} s: {:.0} \
             calls/s",
            s.plugin_calls,
            s.emitted,
            s.plugin_seconds,
            s.plugin_calls as f64 / s.plugin_seconds.max(1e-9)
        );
        Ok(())
    }
}

pub fn run(o: &Options) -> Result<Summary> {
    let fasta = crate::remote::local(&o.fasta)?;
    let annotation_path = crate::remote::local(&o.annotation)?;
    if o.max_per_class == 0 {
        bail!("--max-per-class 0 leaves every label empty: give at least 1");
    }
    let mut config = String::new();
    for kv in &o.config {
        match kv.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() && !kv.contains('\n') => {
                config.push_str(kv);
                config.push('\n');
            }
            _ => bail!("--config {kv:?}: expected KEY=VALUE on one line"),
        }
    }
    let mut plugin = Plugin::load(&o.plugin, o.limits.limits()?)?;
    let name = plugin.path().display().to_string();
    if !plugin.exports(abi::TASK_TRANSCRIPT) {
        bail!(
            "{name}: exports no {}: not a dataset task (a region selector is used with `embed \
             --select`)",
            abi::TASK_TRANSCRIPT
        );
    }
    plugin.host().declaring = true;
    if plugin.exports(abi::TASK_START) {
        plugin.call(abi::TASK_START, config.as_bytes(), "its --config")?;
    }
    plugin.host().declaring = false;
    let labels = plugin.host().labels.clone();
    if labels.is_empty() {
        bail!(
            "{name}: declared no label in {} (docs/plugins.md)",
            abi::TASK_START
        );
    }

    let (_, transcripts) = annotation::read(&annotation_path)?;
    let mut on_chrom: HashMap<&str, Vec<&Transcript>> = HashMap::new();
    for t in &transcripts {
        on_chrom.entry(t.chrom.as_str()).or_default().push(t);
    }
    crate::splice::check_split_chroms(
        &transcripts,
        &annotation_path,
        &o.validation_chroms,
        &o.test_chroms,
    )?;

    let mut dropped = Dropped::default();
    let mut emitted = 0usize;
    let mut rows: Vec<Row> = vec![];
    let mut seen = BTreeSet::new();
    let mut reader = FastaReader::open(&fasta)?;
    while let Some(rec) = reader.next_record() {
        let rec = rec?;
        let Some(list) = on_chrom.get(rec.id) else {
            continue;
        };
        seen.insert(rec.id.to_owned());
        let len = rec.seq.len();
        for t in list {
            crate::splice::sites::check_inside(t, len, &annotation_path)?;
        }
        plugin.host().record = Some((rec.id.to_owned(), rec.seq.to_vec()));
        let mut take = |plugin: &mut Plugin, gene: &str, rows: &mut Vec<Row>| {
            let windows = std::mem::take(&mut plugin.host().windows);
            emitted += windows.len();
            for w in windows {
                let bases = &rec.seq[w.start as usize..w.end as usize];
                let Some(seq) = crate::splice::sites::oriented(bases, w.plus) else {
                    *dropped
                        .with_non_acgt
                        .entry(labels[w.label].clone())
                        .or_default() += 1;
                    continue;
                };
                let group = if w.group.is_empty() {
                    gene.to_owned()
                } else {
                    w.group
                };
                rows.push(Row {
                    chrom: rec.id.to_owned(),
                    start: w.start,
                    end: w.end,
                    plus: w.plus,
                    label: w.label,
                    group,
                    seq,
                });
            }
        };
        if plugin.exports(abi::TASK_RECORD) {
            let at = format!("record '{}' of {}", rec.id, fasta.display());
            plugin.call(
                abi::TASK_RECORD,
                abi::record_line(rec.id, len).as_bytes(),
                &at,
            )?;
            take(&mut plugin, "", &mut rows);
        }
        for t in list {
            let at = format!(
                "{}:{}: transcript {}",
                annotation_path.display(),
                t.lines.first().copied().unwrap_or(0),
                t.id
            );
            plugin.call(
                abi::TASK_TRANSCRIPT,
                abi::transcript_line(t).as_bytes(),
                &at,
            )?;
            take(&mut plugin, &t.gene, &mut rows);
        }
        plugin.host().record = None;
    }
    plugin.call_optional(abi::TASK_FINISH, "the end of the annotation")?;
    if let Some(t) = transcripts.iter().find(|t| !seen.contains(&t.chrom)) {
        bail!(
            "{}:{}: chromosome '{}' (transcript {}) is not in {}",
            annotation_path.display(),
            t.lines.first().copied().unwrap_or(0),
            t.chrom,
            t.id,
            fasta.display()
        );
    }

    // One window per place: the same window twice is kept once, with two labels dropped.
    rows.sort_by(|a, b| {
        (&a.chrom, a.start, a.end, a.plus, a.label)
            .cmp(&(&b.chrom, b.start, b.end, b.plus, b.label))
    });
    let mut by_label: Vec<Vec<Row>> = (0..labels.len()).map(|_| vec![]).collect();
    let mut it = rows.into_iter().peekable();
    while let Some(first) = it.next() {
        let mut labels_here = BTreeSet::from([first.label]);
        while let Some(next) = it.next_if(|r| {
            (&r.chrom, r.start, r.end, r.plus) == (&first.chrom, first.start, first.end, first.plus)
        }) {
            dropped.duplicates += usize::from(next.label == first.label);
            labels_here.insert(next.label);
        }
        if labels_here.len() > 1 {
            dropped.conflicting_labels += 1;
        } else if let Some(list) = by_label.get_mut(first.label) {
            list.push(first);
        }
    }
    for (label, list) in by_label.iter_mut().enumerate() {
        if list.len() > o.max_per_class {
            *dropped
                .over_class_cap
                .entry(labels[label].clone())
                .or_default() += list.len() - o.max_per_class;
            shuffle(list, o.seed, Stream::DatasetCap(label as u64));
            list.truncate(o.max_per_class);
            list.sort_by(|a, b| (&a.chrom, a.start, a.end).cmp(&(&b.chrom, b.start, b.end)));
        }
    }
    let rows: Vec<Row> = by_label.into_iter().flatten().collect();
    if rows.is_empty() {
        bail!(
            "{name}: no window to write ({} transcripts seen; dropped: {:?})",
            transcripts.len(),
            dropped
        );
    }

    let by_chroms = !(o.validation_chroms.is_empty() && o.test_chroms.is_empty());
    let split_of: Box<dyn Fn(&Row) -> usize> = if by_chroms {
        Box::new(|r: &Row| {
            if o.test_chroms.contains(&r.chrom) {
                2
            } else if o.validation_chroms.contains(&r.chrom) {
                1
            } else {
                0
            }
        })
    } else {
        // Whole groups to a split, dealt in a seeded order until each has its share.
        let mut groups: Vec<&str> = rows
            .iter()
            .map(|r| r.group.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        shuffle(&mut groups, o.seed, Stream::DatasetGroups);
        let n = groups.len();
        let of: HashMap<String, usize> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let s = if i * 10 < n * 8 {
                    0
                } else if i * 10 < n * 9 {
                    1
                } else {
                    2
                };
                ((*g).to_owned(), s)
            })
            .collect();
        Box::new(move |r: &Row| of.get(&r.group).copied().unwrap_or(0))
    };

    std::fs::create_dir_all(&o.output)
        .with_context(|| format!("{}: cannot create", o.output.display()))?;
    let mut texts: Vec<String> = SPLITS.iter().map(|_| HEADER.to_owned()).collect();
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = SPLITS
        .iter()
        .map(|s| {
            let per: BTreeMap<String, usize> = labels.iter().map(|l| (l.clone(), 0)).collect();
            ((*s).to_owned(), per)
        })
        .collect();
    let mut sorted = rows;
    sorted.sort_by(|a, b| {
        (&a.chrom, a.start, a.end, a.plus).cmp(&(&b.chrom, b.start, b.end, b.plus))
    });
    for r in &sorted {
        let s = split_of(r);
        let (Some(text), Some(split)) = (texts.get_mut(s), SPLITS.get(s)) else {
            continue;
        };
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            r.chrom,
            r.start,
            r.end,
            if r.plus { '+' } else { '-' },
            labels[r.label],
            r.label,
            r.group,
            String::from_utf8_lossy(&r.seq)
        ));
        if let Some(c) = counts
            .get_mut(*split)
            .and_then(|c| c.get_mut(&labels[r.label]))
        {
            *c += 1;
        }
    }
    let summary = Summary {
        plugin: name,
        plugin_sha256: crate::train::resume::sha256(plugin.path())?,
        config: o.config.clone(),
        labels,
        transcripts: transcripts.len(),
        split: if by_chroms { "chroms" } else { "group" }.to_owned(),
        counts,
        dropped,
        emitted,
        plugin_calls: plugin.calls,
        plugin_seconds: plugin.busy.as_secs_f64(),
    };
    // The tables first, the summary last: a folder with summary.json is complete.
    for (split, text) in SPLITS.iter().zip(&texts) {
        crate::io_util::write_atomic(&o.output.join(format!("{split}.tsv")), text.as_bytes())?;
    }
    crate::io_util::write_atomic(
        &o.output.join("summary.md"),
        summary_md(&summary).as_bytes(),
    )?;
    crate::io_util::write_atomic(
        &o.output.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    Ok(summary)
}

fn summary_md(s: &Summary) -> String {
    let mut m = format!(
        "# Dataset from {}\n\n{} transcripts; split by {}.\n\n| split | {} |\n|---|{}\n",
        s.plugin,
        s.transcripts,
        s.split,
        s.labels.join(" | "),
        "---|".repeat(s.labels.len())
    );
    for split in SPLITS {
        let per = s.counts.get(split);
        let cells: Vec<String> = s
            .labels
            .iter()
            .map(|l| per.and_then(|p| p.get(l)).copied().unwrap_or(0).to_string())
            .collect();
        m.push_str(&format!("| {split} | {} |\n", cells.join(" | ")));
    }
    let d = &s.dropped;
    m.push_str(&format!(
        "\nDropped: {} duplicate windows; {} windows given two labels; with a base other than \
         A/C/G/T: {}; over the class cap: {}.\n",
        d.duplicates,
        d.conflicting_labels,
        crate::splice::counts_in_words(&d.with_non_acgt),
        crate::splice::counts_in_words(&d.over_class_cap)
    ));
    m
}
