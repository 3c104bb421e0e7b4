//! `embed --select PLUGIN`: a region selector decides, record by record, which parts to embed
//! (promoters, exons, peaks) instead of every base. Each region is embedded as a sequence of
//! its own; the output index names the record and gives the region's coordinates on it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{abi, LimitArgs, Limits, Plugin};
use crate::splice::annotation::{self, Transcript};

/// The flags of `embed` for a selector.
#[derive(clap::Args, Debug, Clone)]
pub struct SelectArgs {
    /// A region selector (.wasm or .wat, docs/plugins.md): only the regions it returns are
    /// embedded, each indexed by its record and coordinates.
    #[arg(long)]
    pub select: Option<PathBuf>,
    /// GFF3/GTF annotation whose transcripts the selector sees, record by record (needs
    /// --select).
    #[arg(long)]
    pub annotation: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Clone)]
pub struct SelectOptions {
    pub plugin: PathBuf,
    pub annotation: Option<PathBuf>,
    pub limits: Limits,
}

impl SelectArgs {
    pub fn options(&self) -> Result<Option<SelectOptions>> {
        match (&self.select, &self.annotation) {
            (None, Some(_)) => bail!("--annotation goes with --select (the selector reads it)"),
            (None, None) => Ok(None),
            (Some(plugin), annotation) => Ok(Some(SelectOptions {
                plugin: plugin.clone(),
                annotation: annotation
                    .as_deref()
                    .map(crate::remote::local)
                    .transpose()?,
                limits: self.limits.limits()?,
            })),
        }
    }
}

pub struct Selector {
    plugin: Plugin,
    transcripts: HashMap<String, Vec<Transcript>>,
    input: PathBuf,
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
        let mut transcripts: HashMap<String, Vec<Transcript>> = HashMap::new();
        if let Some(a) = &o.annotation {
            for t in annotation::read(a)?.1 {
                transcripts.entry(t.chrom.clone()).or_default().push(t);
            }
        }
        Ok(Self {
            plugin,
            transcripts,
            input: input.to_owned(),
        })
    }

    /// The regions of one record, in the order the selector gave them.
    pub fn regions(&mut self, id: &str, seq: &[u8]) -> Result<Vec<abi::Region>> {
        let mut text = abi::record_line(id, seq.len());
        for t in self.transcripts.get(id).into_iter().flatten() {
            text.push_str(&abi::transcript_line(t));
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
