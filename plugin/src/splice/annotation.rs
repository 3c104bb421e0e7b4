//! Transcripts and their exons from a GFF3 (gene → mRNA/transcript → exon through `Parent`) or
//! GTF (exons grouped by `transcript_id`) annotation, plain or gzip. Lines are parsed by `bio`'s
//! GFF reader; errors name the file and line. A BED file (also recognised here) holds regions,
//! not transcripts: plugins read its lines as features (`sandbox::features`).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use bio::io::gff;
use bio_types::strand::Strand;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gff3,
    Gtf,
    Bed,
}

/// One transcript: exons as 1-based inclusive (start, end), sorted by start, with the line of
/// each exon for error messages.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub id: String,
    pub gene: String,
    pub chrom: String,
    /// true for the plus strand.
    pub plus: bool,
    pub exons: Vec<(u64, u64)>,
    pub lines: Vec<usize>,
}

impl Transcript {
    /// The first line of the file that names it (transcripts are listed in this order).
    pub fn first_line(&self) -> usize {
        self.lines.iter().min().copied().unwrap_or(0)
    }
}

/// The file's text, gunzipped when it starts with gzip's magic bytes.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if crate::io_util::is_gzip(&bytes) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut s)
            .with_context(|| format!("{}: not a readable gzip text file", path.display()))?;
        Ok(s)
    } else {
        String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", path.display()))
    }
}

/// By the name (.gtf, .gff3/.gff, .bed/.narrowPeak/.broadPeak, gzipped or not), else by the
/// first data line: BED when its 2nd and 3rd columns are numbers (GFF's 2nd is the source), GTF
/// when the attributes look like `key "value";`, GFF3 otherwise.
pub(crate) fn detect(path: &Path, text: &str) -> Format {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.trim_end_matches(".gz");
    if name.ends_with(".gtf") {
        return Format::Gtf;
    }
    if name.ends_with(".gff3") || name.ends_with(".gff") {
        return Format::Gff3;
    }
    if [".bed", ".narrowpeak", ".broadpeak"]
        .iter()
        .any(|x| name.ends_with(x))
    {
        return Format::Bed;
    }
    let first = text.lines().find(|l| {
        !l.starts_with('#')
            && !l.starts_with("track")
            && !l.starts_with("browser")
            && !l.trim().is_empty()
    });
    let cols: Vec<&str> = first.map(|l| l.split('\t').collect()).unwrap_or_default();
    let number = |i: usize| cols.get(i).is_some_and(|c| c.parse::<u64>().is_ok());
    if number(1) && number(2) {
        return Format::Bed;
    }
    match cols.get(8) {
        Some(a) if a.contains('"') && !a.contains('=') => Format::Gtf,
        _ => Format::Gff3,
    }
}

/// Multi-exon and single-exon transcripts alike, in the order of the file; an error when there
/// are none (a BED file, a GFF without exons).
pub fn read(path: &Path) -> Result<(Format, Vec<Transcript>)> {
    let (format, out) = read_transcripts(path)?;
    if format == Format::Bed {
        bail!(
            "{}: a BED file holds regions, not transcripts with exons: give a GFF3 or GTF \
             annotation",
            path.display()
        );
    }
    if out.is_empty() {
        bail!("{}: no exon features", path.display());
    }
    Ok((format, out))
}

/// The transcripts of `path`, none for a BED file or a GFF with no exons (plugins may read
/// such a file's features instead).
pub fn read_transcripts(path: &Path) -> Result<(Format, Vec<Transcript>)> {
    let text = read_text(path)?;
    let format = detect(path, &text);
    if format == Format::Bed {
        return Ok((format, vec![]));
    }
    // bio's reader skips comment and blank lines; the n-th record is the n-th other line.
    let data_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, _)| i + 1)
        .collect();
    // The column count first, ourselves: the parser's own error counts lines its own way.
    for (i, l) in text.lines().enumerate() {
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let n = l.split('\t').count();
        if n != 9 {
            bail!(
                "{}:{}: {n} tab-separated columns, a {} line has 9",
                path.display(),
                i + 1,
                if format == Format::Gtf { "GTF" } else { "GFF3" }
            );
        }
    }
    let kind = match format {
        Format::Gtf => gff::GffType::GTF2,
        Format::Gff3 | Format::Bed => gff::GffType::GFF3,
    };
    let mut reader = gff::Reader::new(text.as_bytes(), kind);
    let at = |i: usize| {
        format!(
            "{}:{}",
            path.display(),
            data_lines.get(i).copied().unwrap_or(0)
        )
    };

    // GFF3: features that carry an ID (genes, transcripts), with their parent.
    let mut parents: HashMap<String, Option<String>> = HashMap::new();
    let mut order: Vec<String> = vec![];
    let mut by_id: HashMap<String, Transcript> = HashMap::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| anyhow::anyhow!("{}: {e}", at(i)))?;
        let attrs = rec.attributes();
        if format == Format::Gff3 {
            if let Some(id) = attrs.get("ID") {
                parents.insert(id.clone(), attrs.get("Parent").cloned());
            }
        }
        if rec.feature_type() != "exon" {
            continue;
        }
        let plus = match rec.strand() {
            Some(Strand::Forward) => true,
            Some(Strand::Reverse) => false,
            _ => bail!("{}: exon without a strand (+ or -)", at(i)),
        };
        let (start, end) = (*rec.start(), *rec.end());
        if start == 0 || end < start {
            bail!(
                "{}: exon coordinates {start}..{end} are not 1-based start ≤ end",
                at(i)
            );
        }
        let (ids, gene): (Vec<String>, Option<String>) = match format {
            // (BED returned above.)
            Format::Gff3 | Format::Bed => match attrs.get_vec("Parent") {
                Some(p) => (p.clone(), None),
                None => bail!("{}: exon with no Parent attribute", at(i)),
            },
            Format::Gtf => match attrs.get("transcript_id") {
                Some(t) => (vec![t.clone()], attrs.get("gene_id").cloned()),
                None => bail!("{}: exon with no transcript_id attribute", at(i)),
            },
        };
        for id in ids {
            let t = by_id.entry(id.clone()).or_insert_with(|| {
                order.push(id.clone());
                Transcript {
                    id: id.clone(),
                    gene: gene.clone().unwrap_or_default(),
                    chrom: rec.seqname().to_owned(),
                    plus,
                    exons: vec![],
                    lines: vec![],
                }
            });
            if t.chrom != rec.seqname() || t.plus != plus {
                bail!(
                    "{}: exon of {id} on {} {}, but its first exon was on {} {}",
                    at(i),
                    rec.seqname(),
                    if plus { '+' } else { '-' },
                    t.chrom,
                    if t.plus { '+' } else { '-' }
                );
            }
            t.exons.push((start, end));
            t.lines.push(data_lines.get(i).copied().unwrap_or(0));
        }
    }
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        // `order` lists each id of `by_id` once.
        let Some(mut t) = by_id.remove(&id) else {
            continue;
        };
        if format == Format::Gff3 {
            match parents.get(&id) {
                None => bail!(
                    "{}:{}: exon's Parent '{id}' is not the ID of any feature in the file",
                    path.display(),
                    t.lines[0]
                ),
                Some(gene) => t.gene = gene.clone().unwrap_or_else(|| id.clone()),
            }
        }
        let mut idx: Vec<usize> = (0..t.exons.len()).collect();
        idx.sort_by_key(|&i| t.exons[i]);
        t.exons = idx.iter().map(|&i| t.exons[i]).collect();
        t.lines = idx.iter().map(|&i| t.lines[i]).collect();
        for w in t.exons.windows(2) {
            if w[1].0 <= w[0].1 {
                bail!(
                    "{}: transcript {id} has overlapping exons {}..{} and {}..{}",
                    path.display(),
                    w[0].0,
                    w[0].1,
                    w[1].0,
                    w[1].1
                );
            }
        }
        out.push(t);
    }
    Ok((format, out))
}
