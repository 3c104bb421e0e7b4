//! `dnabert make-dataset`: a fine-tuning dataset from a genome, its annotation and a task
//! plugin. The plugin sees each transcript (and, when it asks, the annotation's lines of the
//! types it names, and the genome again in further passes) and says which windows to take and
//! how to label them; the host cuts them (windows
//! holding anything but A/C/G/T dropped and counted, the reverse complement on the minus
//! strand) and does the rest as `splice-sites` does (`tables`: duplicates merged, a window
//! given two labels dropped, a seeded cap per label, a seeded split by group or at random or
//! by chromosome, the three tables), then writes `summary.{json,md}`. The tables open in
//! `dnabert finetune` as they are (`sequence` and `label` columns) and in pandas.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::Serialize;

use super::features::{self, Feature};
use super::{abi, LimitArgs, Plugin};
use crate::fasta::FastaReader;
use crate::splice::annotation::{self, Transcript};
use crate::tables::{self, Dropped, Row, SplitKind, SPLITS};

#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Genome FASTA, plain or gzip, or an https:// URL.
    #[arg(long)]
    pub fasta: PathBuf,
    /// GFF3, GTF or BED annotation (.gz too), or an https:// URL: its transcripts, with their
    /// exons, are what the plugin sees, and its lines of the types the plugin asks for.
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
    /// How the windows are split: gene (every group's windows in one split, 10% of the windows
    /// each to validation and test; a window's group is what the plugin gave, else its
    /// transcript's gene; `group` is the same), random (80/10/10 per label), chroms (by
    /// --validation-chroms/--test-chroms) [default: chroms when those are given, else gene].
    #[arg(long, value_enum)]
    pub split: Option<SplitKind>,
    /// Hold these chromosomes out for validation (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub validation_chroms: Vec<String>,
    /// Hold these chromosomes out for testing (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub test_chroms: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub plugin: String,
    pub plugin_sha256: String,
    pub config: Vec<String>,
    pub labels: Vec<String>,
    pub transcripts: usize,
    /// Annotation lines streamed to the plugin (of the types it asked for).
    pub features: usize,
    pub split: String,
    /// Passes over the genome the plugin asked for.
    pub passes: u32,
    /// Windows per split, per label.
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    pub dropped: Dropped,
    /// Windows the plugin emitted (before any was dropped).
    pub emitted: usize,
    /// Calls into the plugin and the seconds spent in them (its share of the run).
    pub plugin_calls: u64,
    pub plugin_seconds: f64,
}

impl Options {
    pub fn run(self) -> Result<()> {
        let s = run(&self)?;
        let total: usize = s.counts.values().flat_map(|c| c.values()).sum();
        eprintln!(
            "make-dataset: {total} windows of {} labels from {} transcripts and {} features into \
             {}",
            s.labels.len(),
            s.transcripts,
            s.features,
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
    let split = SplitKind::resolve(o.split, &o.validation_chroms, &o.test_chroms)?;
    let config = super::config_text("--config", &o.config)?;
    let mut plugin = Plugin::load(&o.plugin, o.limits.limits()?)?;
    let name = plugin.path().display().to_string();
    if !plugin.exports(abi::TASK_TRANSCRIPT) && !plugin.exports(abi::TASK_FEATURE) {
        bail!(
            "{name}: exports neither {} nor {}: not a dataset task (a region selector is used \
             with `embed --select`)",
            abi::TASK_TRANSCRIPT,
            abi::TASK_FEATURE
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
    let passes = plugin.host().passes;
    let wanted = plugin.host().features.clone();
    let wants_features = !wanted.0.is_empty();
    if wants_features && !plugin.exports(abi::TASK_FEATURE) {
        bail!(
            "{name}: asked for features but exports no {}",
            abi::TASK_FEATURE
        );
    }

    let (format, transcripts) = annotation::read_transcripts(&annotation_path)?;
    if !wants_features && transcripts.is_empty() {
        // The error splice-sites gives: this task reads transcripts only.
        annotation::read(&annotation_path)?;
    }
    let mut on_chrom: HashMap<&str, Vec<&Transcript>> = HashMap::new();
    for t in &transcripts {
        on_chrom.entry(t.chrom.as_str()).or_default().push(t);
    }
    let features = if wants_features {
        features::read(&annotation_path, &wanted)?
    } else {
        HashMap::new()
    };
    let n_features: usize = features.values().map(Vec::len).sum();
    if transcripts.is_empty() && n_features == 0 {
        bail!(
            "{}: no line of the types {name} asked for ({}){}",
            annotation_path.display(),
            wanted.0.join(","),
            if format == annotation::Format::Bed {
                " (a BED line's type is `bed`)"
            } else {
                ""
            }
        );
    }
    let no_features: Vec<Feature> = vec![];
    let no_transcripts: Vec<&Transcript> = vec![];
    crate::splice::check_split_chroms(
        &transcripts,
        &annotation_path,
        &o.validation_chroms,
        &o.test_chroms,
    )?;

    let mut dropped = Dropped::default();
    let mut emitted = 0usize;
    let mut rows: Vec<Row> = vec![];
    for pass in 0..passes {
        if passes > 1 && plugin.exports(abi::TASK_PASS) {
            let line = abi::pass_line(pass, passes);
            plugin.call(abi::TASK_PASS, line.as_bytes(), "the start of a pass")?;
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut reader = FastaReader::open(&fasta)?;
        while let Some(rec) = reader.next_record() {
            let rec = rec?;
            let (list, feats) = (on_chrom.get(rec.id), features.get(rec.id));
            if list.is_none() && feats.is_none() {
                continue;
            }
            let list = list.unwrap_or(&no_transcripts);
            let feats = feats.unwrap_or(&no_features);
            seen.insert(rec.id.to_owned());
            let len = rec.seq.len();
            if pass == 0 {
                for t in list {
                    crate::splice::sites::check_inside(t, len, &annotation_path)?;
                }
                if let Some(f) = feats.iter().find(|f| f.end > len as u64) {
                    bail!(
                        "{}:{}: {} ends at {}, past the end of '{}' ({len} bases in {})",
                        annotation_path.display(),
                        f.line,
                        f.kind,
                        f.end,
                        rec.id,
                        fasta.display()
                    );
                }
            }
            plugin.host().record = Some((rec.id.to_owned(), rec.seq.to_vec()));
            // The windows of the call that just returned, cut from this record.
            let mut take = |plugin: &mut Plugin, gene: &str| {
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
            let at_record = format!("record '{}' of {}", rec.id, fasta.display());
            if plugin.exports(abi::TASK_RECORD) {
                plugin.call(
                    abi::TASK_RECORD,
                    abi::record_line(rec.id, len).as_bytes(),
                    &at_record,
                )?;
                take(&mut plugin, "");
            }
            for t in list {
                let at = format!(
                    "{}:{}: transcript {}",
                    annotation_path.display(),
                    t.first_line(),
                    t.id
                );
                if plugin.exports(abi::TASK_TRANSCRIPT) {
                    plugin.call(
                        abi::TASK_TRANSCRIPT,
                        abi::transcript_line(t).as_bytes(),
                        &at,
                    )?;
                    take(&mut plugin, &t.gene);
                }
            }
            for f in feats {
                let at = format!("{}:{}: {}", annotation_path.display(), f.line, f.kind);
                plugin.call(abi::TASK_FEATURE, abi::feature_line(f).as_bytes(), &at)?;
                take(&mut plugin, &f.group(rec.id));
            }
            plugin.call_optional(abi::TASK_RECORD_END, &format!("the end of {at_record}"))?;
            take(&mut plugin, "");
            plugin.host().record = None;
        }
        if let Some(t) = transcripts.iter().find(|t| !seen.contains(&t.chrom)) {
            bail!(
                "{}:{}: chromosome '{}' (transcript {}) is not in {}",
                annotation_path.display(),
                t.first_line(),
                t.chrom,
                t.id,
                fasta.display()
            );
        }
        if let Some((chrom, f)) = features
            .iter()
            .filter(|(c, _)| !seen.contains(*c))
            .filter_map(|(c, fs)| Some((c, fs.first()?)))
            .min_by_key(|(_, f)| f.line)
        {
            bail!(
                "{}:{}: chromosome '{chrom}' ({}) is not in {}",
                annotation_path.display(),
                f.line,
                f.kind,
                fasta.display()
            );
        }
    }
    plugin.call_optional(abi::TASK_FINISH, "the end of the annotation")?;

    let caps = plugin.host().caps.clone();
    let t = tables::build(
        rows,
        &tables::Plan {
            labels: &labels,
            caps: &caps,
            max_per_class: o.max_per_class,
            seed: o.seed,
            split,
            validation_chroms: &o.validation_chroms,
            test_chroms: &o.test_chroms,
        },
        &mut dropped,
    );
    if t.rows().next().is_none() {
        bail!(
            "{name}: no window to write ({} transcripts and {n_features} features seen; \
             dropped: {:?})",
            transcripts.len(),
            dropped
        );
    }
    let summary = Summary {
        plugin: name,
        plugin_sha256: crate::train::resume::sha256(plugin.path())?,
        config: o.config.clone(),
        counts: t.counts(&labels),
        labels,
        transcripts: transcripts.len(),
        features: n_features,
        split: crate::splice::value_name(&split),
        passes,
        dropped,
        emitted,
        plugin_calls: plugin.calls,
        plugin_seconds: plugin.busy.as_secs_f64(),
    };
    // The tables first, the summary last: a folder with summary.json is complete.
    t.write(&summary.labels, &o.output)?;
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
        "# Dataset from {}\n\n{} transcripts{}; split by {}.\n\n| split | {} |\n|---|{}\n",
        s.plugin,
        s.transcripts,
        if s.features > 0 {
            format!(", {} annotation features", s.features)
        } else {
            String::new()
        },
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
