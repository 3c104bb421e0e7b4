//! `embed --select PLUGIN`: a region selector decides, record by record, which parts to embed
//! (promoters, exons, peaks) instead of every base. Each region is embedded as a sequence of
//! its own; the output index names the record and gives the region's coordinates on it. With
//! `--annotation` the selector sees the record's transcripts and, when it asks (`features`),
//! the annotation's lines of the types it names (GFF3, GTF or BED).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::features::{self, Feature};
use super::{abi, LimitArgs, Limits, Plugin};
use crate::splice::annotation::{self, Transcript};

/// The flags of `embed` for a selector.
#[derive(clap::Args, Debug, Clone)]
pub struct SelectArgs {
    /// A region selector (.wasm or .wat, docs/plugins.md): only the regions it returns are
    /// embedded, each indexed by its record and coordinates.
    #[arg(long)]
    pub select: Option<PathBuf>,
    /// GFF3, GTF or BED annotation whose transcripts (and, when the selector asks, lines of
    /// the types it names) the selector sees, record by record (needs --select).
    #[arg(long)]
    pub annotation: Option<PathBuf>,
    /// A parameter for the selector, KEY=VALUE (repeatable), passed to its
    /// dnabert_select_start as text (needs --select).
    #[arg(long = "select-config", value_name = "KEY=VALUE")]
    pub select_config: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Clone)]
pub struct SelectOptions {
    pub plugin: PathBuf,
    pub annotation: Option<PathBuf>,
    /// The --select-config lines.
    pub config: String,
    pub limits: Limits,
}

impl SelectArgs {
    pub fn options(&self) -> Result<Option<SelectOptions>> {
        match (&self.select, &self.annotation) {
            (None, Some(_)) => bail!("--annotation goes with --select (the selector reads it)"),
            (None, None) if !self.select_config.is_empty() => {
                bail!("--select-config goes with --select (the selector reads it)")
            }
            (None, None) => Ok(None),
            (Some(plugin), annotation) => Ok(Some(SelectOptions {
                plugin: plugin.clone(),
                annotation: annotation
                    .as_deref()
                    .map(crate::remote::local)
                    .transpose()?,
                config: super::config_text("--select-config", &self.select_config)?,
                limits: self.limits.limits()?,
            })),
        }
    }
}

pub struct Selector {
    plugin: Plugin,
    transcripts: HashMap<String, Vec<Transcript>>,
    features: HashMap<String, Vec<Feature>>,
    input: PathBuf,
    annotation: PathBuf,
}

impl Selector {
    pub fn load(o: &SelectOptions, input: &Path) -> Result<Self> {
        let mut plugin = Plugin::load(&o.plugin, o.limits)?;
        if !plugin.exports(abi::SELECT_RECORD) {
            bail!(
                "{}: exports no {}: not a region selector (a dataset task is used with \
                 `make-dataset`)",
                o.plugin.display(),
                abi::SELECT_RECORD
            );
        }
        plugin.host().declaring = true;
        if plugin.exports(abi::SELECT_START) {
            plugin.call(
                abi::SELECT_START,
                o.config.as_bytes(),
                "its --select-config",
            )?;
        } else if !o.config.is_empty() {
            bail!(
                "{}: exports no {}: it takes no --select-config",
                o.plugin.display(),
                abi::SELECT_START
            );
        }
        plugin.host().declaring = false;
        let wanted = plugin.host().features.clone();
        let mut transcripts: HashMap<String, Vec<Transcript>> = HashMap::new();
        let mut features = HashMap::new();
        match &o.annotation {
            Some(a) => {
                for t in annotation::read_transcripts(a)?.1 {
                    transcripts.entry(t.chrom.clone()).or_default().push(t);
                }
                if !wanted.0.is_empty() {
                    features = features::read(a, &wanted)?;
                } else if transcripts.is_empty() {
                    // A selector that reads transcripts only, given none: say why.
                    annotation::read(a)?;
                }
            }
            None if !wanted.0.is_empty() => bail!(
                "{}: asks for the annotation's features ({}): give --annotation",
                o.plugin.display(),
                wanted.0.join(",")
            ),
            None => {}
        }
        Ok(Self {
            plugin,
            transcripts,
            features,
            annotation: o.annotation.clone().unwrap_or_default(),
            input: input.to_owned(),
        })
    }

    /// The regions of one record, in the order the selector gave them.
    pub fn regions(&mut self, id: &str, seq: &[u8]) -> Result<Vec<abi::Region>> {
        let mut text = abi::record_line(id, seq.len());
        for t in self.transcripts.get(id).into_iter().flatten() {
            text.push_str(&abi::transcript_line(t));
        }
        for f in self.features.get(id).into_iter().flatten() {
            if f.end > seq.len() as u64 {
                bail!(
                    "{}:{}: {} ends at {}, past the end of '{id}' ({} bases in {})",
                    self.annotation.display(),
                    f.line,
                    f.kind,
                    f.end,
                    seq.len(),
                    self.input.display()
                );
            }
            text.push_str(&abi::feature_line(f));
        }
        let host = self.plugin.host();
        host.record = Some((id.to_owned(), seq.to_vec()));
        host.regions.clear();
        let at = format!("record '{id}' of {}", self.input.display());
        let called = self.plugin.call(abi::SELECT_RECORD, text.as_bytes(), &at);
        let host = self.plugin.host();
        host.record = None;
        called?;
        Ok(std::mem::take(&mut host.regions))
    }
}
