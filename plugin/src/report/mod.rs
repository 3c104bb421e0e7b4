//! `dnabert report`: one self-contained HTML page, a standalone SVG per chart and MultiQC
//! custom-content files, from what the other stages wrote:
//! - a `pretrain` run folder: loss (training and validation), masked accuracy, learning rate
//!   and tokens/s against steps, from `metrics.jsonl`;
//! - a `finetune` run folder: losses and validation metrics against epochs, and the test set's
//!   per-class metrics and confusion matrix (`metrics.json`, class names from `model/`);
//! - a `splice-report` JSON (`PREFIX.json`): the donor / acceptor tables beside the baselines;
//! - an `embed` output (PREFIX, or PREFIX.npy / PREFIX.tsv): rows, norms, a 2-D projection.
//!
//! Every file is written atomically, `report.html` last: a folder with `report.html` is whole.

mod chart;
mod embeddings;
mod multiqc;
mod page;
mod runs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use chart::{Axes, Series};
use page::Page;

/// `dnabert report`'s flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to report on, in any order and number: pretrain or finetune run folders,
    /// splice-report JSON files (PREFIX.json), embed outputs (PREFIX, PREFIX.npy or PREFIX.tsv).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder: report.html, one .svg per chart, and *_mqc.json files for MultiQC.
    #[arg(long)]
    pub output: PathBuf,
    /// The page's title.
    #[arg(long, default_value = "DNABERT report")]
    pub title: String,
    /// Show the BioNeMo DNABERT model card's splice figures beside splice tables, labelled as
    /// a reference from another dataset and setting.
    #[arg(long)]
    pub reference: bool,
}

impl Args {
    pub fn run(self) -> Result<()> {
        let html = write_report(&self.inputs, &self.output, &self.title, self.reference)?;
        crate::cli::say(html.display())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Input {
    Pretrain(PathBuf),
    Finetune(PathBuf),
    Splice(PathBuf),
    Embeddings(PathBuf),
}

fn classify(p: &Path) -> Result<Input> {
    if p.is_dir() {
        if p.join("metrics.json").is_file() {
            return Ok(Input::Finetune(p.to_owned()));
        }
        if p.join("metrics.jsonl").is_file() {
            return Ok(Input::Pretrain(p.to_owned()));
        }
        bail!(
            "{}: a folder with neither metrics.json (a finetune run) nor metrics.jsonl (a \
             pretrain run)",
            p.display()
        );
    }
    let ext = p.extension().and_then(|e| e.to_str());
    if ext == Some("json") && p.is_file() {
        return Ok(Input::Splice(p.to_owned()));
    }
    let prefix = match ext {
        Some("npy" | "tsv") => p.with_extension(""),
        _ => p.to_owned(),
    };
    if crate::embed::output_paths(&prefix).0.is_file() {
        return Ok(Input::Embeddings(prefix));
    }
    bail!(
        "{}: not a pretrain or finetune run folder, a splice-report .json, or an embed output \
         (PREFIX.npy + PREFIX.tsv)",
        p.display()
    )
}

/// A short name for an input, unique among `taken`: its file or folder name.
fn name_of(p: &Path, taken: &mut Vec<String>) -> String {
    let base = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != ".")
        .unwrap_or_else(|| "run".into());
    let mut name = base.clone();
    let mut i = 2;
    while taken.contains(&name) {
        name = format!("{base}_{i}");
        i += 1;
    }
    taken.push(name.clone());
    name
}

/// A name usable in a file name and an HTML id.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Files to write, by name in the output folder.
#[derive(Default)]
struct Outputs {
    files: Vec<(String, Vec<u8>)>,
}

impl Outputs {
    /// Saves a chart as FILE and returns the figure for the page.
    fn chart(&mut self, file: String, svg: String, caption: &str) -> (String, String, String) {
        self.files.push((file.clone(), svg.clone().into_bytes()));
        (svg, caption.to_owned(), file)
    }

    fn json(&mut self, file: String, v: &Value) -> Result<()> {
        self.files.push((file, serde_json::to_vec_pretty(v)?));
        Ok(())
    }
}

/// The MultiQC sections that gather every run of a kind into one plot or table.
#[derive(Default)]
struct Gathered {
    pretrain_loss: Vec<Series>,
    finetune_val_loss: Vec<Series>,
    finetune: BTreeMap<String, BTreeMap<String, f64>>,
    splice: BTreeMap<String, BTreeMap<String, f64>>,
    embeddings: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Writes the report into `out` and returns the path of its report.html.
pub fn write_report(
    inputs: &[PathBuf],
    out: &Path,
    title: &str,
    reference: bool,
) -> Result<PathBuf> {
    let inputs: Vec<Input> = inputs.iter().map(|p| classify(p)).collect::<Result<_>>()?;
    let mut page = Page::new(
        title,
        &format!(
            "dnabert {}; {} input{}.",
            env!("CARGO_PKG_VERSION"),
            inputs.len(),
            if inputs.len() == 1 { "" } else { "s" }
        ),
    );
    let mut files = Outputs::default();
    let mut gathered = Gathered::default();
    let mut taken = Vec::new();
    for input in &inputs {
        match input {
            Input::Pretrain(dir) => {
                let name = name_of(dir, &mut taken);
                pretrain(dir, &name, &mut page, &mut files, &mut gathered)?
            }
            Input::Finetune(dir) => {
                let name = name_of(dir, &mut taken);
                finetune(dir, &name, &mut page, &mut files, &mut gathered)?
            }
            Input::Splice(json) => {
                let name = name_of(json, &mut taken);
                splice(json, &name, reference, &mut page, &mut gathered)?
            }
            Input::Embeddings(prefix) => {
                let name = name_of(prefix, &mut taken);
                embeddings(prefix, &name, &mut page, &mut files, &mut gathered)?
            }
        }
    }
    multiqc_sections(&gathered, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    for (name, bytes) in &files.files {
        crate::io_util::write_atomic(&out.join(name), bytes)?;
    }
    let html = out.join("report.html");
    crate::io_util::write_atomic(&html, page.finish().as_bytes())?;
    Ok(html)
}

fn last(curves: &runs::Curves, key: &str) -> Option<(u64, f64)> {
    curves.get(key)?.iter().next_back().map(|(&x, &y)| (x, y))
}

fn fmt_last(curves: &runs::Curves, key: &str) -> String {
    last(curves, key).map_or("–".into(), |(_, y)| format!("{y:.4}"))
}

fn pretrain(
    dir: &Path,
    name: &str,
    page: &mut Page,
    files: &mut Outputs,
    gathered: &mut Gathered,
) -> Result<()> {
    let c = runs::read_curves(&dir.join("metrics.jsonl"), "step")?;
    let s = slug(name);
    page.section(&format!("pretrain-{s}"), &format!("Pretraining: {name}"));
    let steps = last(&c, "loss").map_or(0, |(x, _)| x);
    page.paragraph(&format!(
        "{}: {steps} steps and {} validations logged in metrics.jsonl.",
        dir.display(),
        c.get("val_loss").map_or(0, |v| v.len())
    ));
    let train = runs::series(&c, "loss", "training");
    let val = runs::series(&c, "val_loss", "validation");
    let mut figs = vec![files.chart(
        format!("pretrain_{s}_loss.svg"),
        chart::xy(
            &Axes {
                title: "Masked-LM loss",
                x: "step",
                y: "cross-entropy",
            },
            &[train.clone(), val.clone()],
            false,
        )?,
        "Training loss per step and validation loss at each validation.",
    )];
    for (key, title, y, file, caption) in [
        (
            "val_masked_accuracy",
            "Masked accuracy (validation)",
            "accuracy",
            "masked_accuracy",
            "Share of masked k-mers predicted exactly, on the validation windows.",
        ),
        (
            "lr",
            "Learning rate",
            "lr",
            "lr",
            "The schedule's learning rate at each step (warm-up, then decay).",
        ),
        (
            "tokens_per_s",
            "Throughput",
            "tokens/s",
            "tokens_per_s",
            "Tokens per second since the run (or its resumption) began.",
        ),
    ] {
        let series = runs::series(&c, key, name);
        if series.points.is_empty() {
            continue;
        }
        figs.push(files.chart(
            format!("pretrain_{s}_{file}.svg"),
            chart::xy(
                &Axes {
                    title,
                    x: "step",
                    y,
                },
                &[series],
                false,
            )?,
            caption,
        ));
    }
    page.figures(&figs);
    page.table(
        "Last values",
        &[
            "Run".into(),
            "Step".into(),
            "Training loss".into(),
            "Validation loss".into(),
            "Validation perplexity".into(),
            "Masked accuracy".into(),
        ],
        &[vec![
            name.to_owned(),
            steps.to_string(),
            fmt_last(&c, "loss"),
            fmt_last(&c, "val_loss"),
            fmt_last(&c, "val_perplexity"),
            fmt_last(&c, "val_masked_accuracy"),
        ]],
    );
    page.end_section();
    gathered
        .pretrain_loss
        .push(Series::new(format!("{name} training"), train.points));
    if !val.points.is_empty() {
        gathered
            .pretrain_loss
            .push(Series::new(format!("{name} validation"), val.points));
    }
    Ok(())
}

fn finetune(
    dir: &Path,
    name: &str,
    page: &mut Page,
    files: &mut Outputs,
    gathered: &mut Gathered,
) -> Result<()> {
    let m = runs::read_finetune_metrics(&dir.join("metrics.json"))?;
    let c = runs::read_curves(&dir.join("metrics.jsonl"), "epoch")?;
    let labels = runs::class_names(
        &dir.join("model").join("config.json"),
        m.test.per_class.len(),
    );
    let s = slug(name);
    page.section(&format!("finetune-{s}"), &format!("Fine-tuning: {name}"));
    page.paragraph(&format!(
        "{}: {} training, {} validation and {} test examples; the model kept is epoch {} \
         (lowest validation loss), and the test set is scored with it.",
        dir.display(),
        m.train_examples,
        m.validation_examples,
        m.test_examples,
        m.best_epoch
    ));
    let val_loss = runs::series(&c, "val_loss", "validation");
    let figs = vec![
        files.chart(
            format!("finetune_{s}_loss.svg"),
            chart::xy(
                &Axes {
                    title: "Loss",
                    x: "epoch",
                    y: "cross-entropy",
                },
                &[runs::series(&c, "train_loss", "training"), val_loss.clone()],
                false,
            )?,
            "Mean training loss of each epoch and the validation loss after it.",
        ),
        files.chart(
            format!("finetune_{s}_validation.svg"),
            chart::xy(
                &Axes {
                    title: "Validation metrics",
                    x: "epoch",
                    y: "score",
                },
                &[
                    runs::series(&c, "val_accuracy", "accuracy"),
                    runs::series(&c, "val_mcc", "MCC"),
                    runs::series(&c, "val_macro_f1", "macro F1"),
                ],
                false,
            )?,
            "Accuracy, Matthews correlation and macro F1 on the validation set after each epoch.",
        ),
    ];
    page.figures(&figs);
    let mut rows: Vec<Vec<String>> = labels
        .iter()
        .zip(&m.test.per_class)
        .map(|(l, k)| {
            vec![
                l.clone(),
                format!("{:.4}", k.precision),
                format!("{:.4}", k.recall),
                format!("{:.4}", k.f1),
                k.support.to_string(),
            ]
        })
        .collect();
    rows.push(vec![
        format!(
            "all: accuracy {:.4}, MCC {:.4}",
            m.test.accuracy, m.test.mcc
        ),
        String::new(),
        String::new(),
        format!("{:.4} (macro)", m.test.macro_f1),
        m.test_examples.to_string(),
    ]);
    page.table(
        "Test set, per class",
        &[
            "Class".into(),
            "Precision".into(),
            "Recall".into(),
            "F1".into(),
            "Support".into(),
        ],
        &rows,
    );
    page.confusion(
        "Test confusion matrix (rows: true class; shade: share of the row)",
        &labels,
        &m.test.confusion,
    );
    page.end_section();
    files.json(
        format!("dnabert_finetune_{s}_confusion_mqc.json"),
        &multiqc::heatmap(
            &format!("dnabert_finetune_{s}_confusion"),
            &format!("DNABERT fine-tuning: {name}, test confusion"),
            "Rows: true class; columns: predicted class (counts of test examples).",
            (&labels, &labels),
            &m.test.confusion,
        ),
    )?;
    gathered
        .finetune_val_loss
        .push(Series::new(name, val_loss.points));
    gathered.finetune.insert(
        name.to_owned(),
        BTreeMap::from([
            ("test_accuracy".into(), m.test.accuracy),
            ("test_mcc".into(), m.test.mcc),
            ("test_macro_f1".into(), m.test.macro_f1),
            ("validation_accuracy".into(), m.validation.accuracy),
            ("best_epoch".into(), m.best_epoch as f64),
        ]),
    );
    Ok(())
}

fn splice(
    json: &Path,
    name: &str,
    reference: bool,
    page: &mut Page,
    gathered: &mut Gathered,
) -> Result<()> {
    let text = std::fs::read_to_string(json)
        .with_context(|| format!("{}: cannot read", json.display()))?;
    let e: crate::splice::report::Evaluation = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a splice-report JSON (dnabert splice-report --output PREFIX writes PREFIX.json)",
            json.display()
        )
    })?;
    page.section(
        &format!("splice-{}", slug(name)),
        &format!("Splice sites: {}", e.title),
    );
    page.paragraph(&crate::splice::report::caption(&e));
    let (header, rows) = crate::splice::report::metric_table(&e, reference);
    page.table(&format!("{} ({})", e.title, json.display()), &header, &rows);
    page.paragraph(&format!(
        "Confusion (TP/FP/TN/FN): {}.",
        crate::splice::report::confusion_lines(&e).join("; ")
    ));
    page.end_section();
    gathered.splice.insert(
        name.to_owned(),
        e.mean.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    );
    Ok(())
}

fn embeddings(
    prefix: &Path,
    name: &str,
    page: &mut Page,
    files: &mut Outputs,
    gathered: &mut Gathered,
) -> Result<()> {
    let e = embeddings::summarise(prefix)?;
    let s = slug(name);
    page.section(&format!("embed-{s}"), &format!("Embeddings: {name}"));
    page.paragraph(&format!(
        "{}.npy: {} rows × {} columns from {} records; the figures use {} evenly spaced rows.",
        prefix.display(),
        e.rows,
        e.cols,
        e.records,
        e.sampled
    ));
    let mean_norm = e.norms.iter().sum::<f64>() / e.norms.len().max(1) as f64;
    let figs = vec![
        files.chart(
            format!("embed_{s}_norms.svg"),
            chart::histogram(
                &Axes {
                    title: "Row norms",
                    x: "L2 norm",
                    y: "rows",
                },
                &e.norms,
                30,
            )?,
            &format!("L2 norm of each sampled row (mean {mean_norm:.3})."),
        ),
        files.chart(
            format!("embed_{s}_pca.svg"),
            chart::xy(
                &Axes {
                    title: "First two principal components",
                    x: &format!("PC1 ({:.1}% of variance)", e.explained[0] * 100.0),
                    y: &format!("PC2 ({:.1}%)", e.explained[1] * 100.0),
                },
                &e.projection,
                true,
            )?,
            "The sampled rows projected on their first two principal components, coloured by \
             record (the records with most sampled rows; the rest as 'other records').",
        ),
    ];
    page.figures(&figs);
    page.end_section();
    gathered.embeddings.insert(
        name.to_owned(),
        BTreeMap::from([
            ("rows".into(), e.rows as f64),
            ("columns".into(), e.cols as f64),
            ("records".into(), e.records as f64),
            ("mean_norm".into(), mean_norm),
        ]),
    );
    Ok(())
}

fn multiqc_sections(g: &Gathered, files: &mut Outputs) -> Result<()> {
    if !g.pretrain_loss.is_empty() {
        files.json(
            "dnabert_pretrain_loss_mqc.json".into(),
            &multiqc::linegraph(
                "dnabert_pretrain_loss",
                "DNABERT pretraining loss",
                "Masked-LM cross-entropy per step (training) and at each validation.",
                ("step", "loss"),
                &g.pretrain_loss,
            ),
        )?;
    }
    if !g.finetune.is_empty() {
        files.json(
            "dnabert_finetune_val_loss_mqc.json".into(),
            &multiqc::linegraph(
                "dnabert_finetune_val_loss",
                "DNABERT fine-tuning validation loss",
                "Validation cross-entropy after each epoch.",
                ("epoch", "loss"),
                &g.finetune_val_loss,
            ),
        )?;
        files.json(
            "dnabert_finetune_mqc.json".into(),
            &multiqc::table(
                "dnabert_finetune",
                "DNABERT fine-tuning",
                "Test-set metrics of the kept (lowest validation loss) epoch.",
                &g.finetune,
            ),
        )?;
    }
    if !g.splice.is_empty() {
        files.json(
            "dnabert_splice_mqc.json".into(),
            &multiqc::table(
                "dnabert_splice",
                "DNABERT splice sites",
                "Donor and acceptor tables (the model's mean over runs), and their averages.",
                &g.splice,
            ),
        )?;
    }
    if !g.embeddings.is_empty() {
        files.json(
            "dnabert_embeddings_mqc.json".into(),
            &multiqc::table(
                "dnabert_embeddings",
                "DNABERT embeddings",
                "Rows, columns and records of each embed output, and the mean row norm.",
                &g.embeddings,
            ),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_told_apart_and_a_wrong_one_is_named() {
        let d = tempfile::tempdir().unwrap();
        let (ft, pt) = (d.path().join("ft"), d.path().join("pt"));
        std::fs::create_dir_all(&ft).unwrap();
        std::fs::create_dir_all(&pt).unwrap();
        std::fs::write(ft.join("metrics.json"), "{}").unwrap();
        std::fs::write(ft.join("metrics.jsonl"), "").unwrap();
        std::fs::write(pt.join("metrics.jsonl"), "").unwrap();
        std::fs::write(d.path().join("e.npy"), "").unwrap();
        std::fs::write(d.path().join("s.json"), "{}").unwrap();
        assert_eq!(classify(&ft).unwrap(), Input::Finetune(ft.clone()));
        assert_eq!(classify(&pt).unwrap(), Input::Pretrain(pt.clone()));
        let e = d.path().join("e");
        for p in [e.clone(), d.path().join("e.npy"), d.path().join("e.tsv")] {
            assert_eq!(classify(&p).unwrap(), Input::Embeddings(e.clone()));
        }
        let s = d.path().join("s.json");
        assert_eq!(classify(&s).unwrap(), Input::Splice(s.clone()));
        let err = classify(&d.path().join("nothing")).unwrap_err().to_string();
        assert!(
            err.contains("nothing") && err.contains("PREFIX.npy"),
            "{err}"
        );
        let err = classify(d.path()).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl"), "{err}");
    }

    #[test]
    fn names_are_unique_and_slugs_are_safe() {
        let mut taken = vec![];
        assert_eq!(name_of(Path::new("a/run"), &mut taken), "run");
        assert_eq!(name_of(Path::new("b/run"), &mut taken), "run_2");
        assert_eq!(name_of(Path::new("x/s.json"), &mut taken), "s");
        assert_eq!(slug("chr X/<1>"), "chr_X__1_");
    }
}
