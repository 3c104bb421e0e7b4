//! Every line of an annotation as a plugin sees it through `features`: a GFF3, GTF or BED
//! line's type, strand, span (0-based, end-exclusive) and attributes, GFF3-style whatever the
//! file (`key=value;key=value`: a GTF's `key "value";` pairs rewritten, a BED's name, score and
//! further columns as `name=`, `score=`, `col7=`, …; `;`, `=`, `%` and `,` inside a value
//! percent-encoded as GFF3 does). Only the types a plugin asked for are kept, so a task that
//! wants the CDS of a whole human annotation holds those, not its 3 million lines.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};

use crate::splice::annotation::{detect, read_text, Format};

/// One annotation line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// GFF's 3rd column; `bed` for a BED line.
    pub kind: String,
    /// `+`, `-` or `.`.
    pub strand: char,
    pub start: u64,
    pub end: u64,
    /// The file's line (1-based).
    pub line: usize,
    pub attributes: String,
}

impl Feature {
    /// An attribute's value (as written, still percent-encoded).
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The group of a window emitted for this feature without one: what keeps related windows
    /// in one split (its gene_id, else its ID, Parent or BED name, else its own span).
    pub fn group(&self, chrom: &str) -> String {
        ["gene_id", "ID", "Parent", "name"]
            .iter()
            .find_map(|k| self.attribute(k).filter(|v| !v.is_empty()))
            .map_or_else(
                || format!("{chrom}:{}-{}", self.start, self.end),
                str::to_owned,
            )
    }
}

/// Which feature types a plugin asked for (`features("CDS,exon")`, `*` for all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted(pub Vec<String>);

impl Wanted {
    pub fn add(&mut self, list: &str) {
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !self.0.iter().any(|w| w == t) {
                self.0.push(t.to_owned());
            }
        }
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|w| w == "*" || w == kind)
    }
}

/// The wanted features of `path`, by chromosome, each chromosome's in the file's order.
pub fn read(path: &Path, wanted: &Wanted) -> Result<HashMap<String, Vec<Feature>>> {
    let text = read_text(path)?;
    let format = detect(path, &text);
    let mut out: HashMap<String, Vec<Feature>> = HashMap::new();
    for (i, l) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        // A GFF3 may end with its sequences.
        if l.starts_with("##FASTA") {
            break;
        }
        if l.starts_with('#') || l.trim().is_empty() {
            continue;
        }
        let c: Vec<&str> = l.split('\t').collect();
        let (chrom, f) = match format {
            Format::Bed => {
                if l.starts_with("track") || l.starts_with("browser") {
                    continue;
                }
                if c.len() < 3 {
                    bail!(
                        "{}: {} tab-separated columns, BED has 3 or more",
                        at(),
                        c.len()
                    );
                }
                let (start, end) = span(&at, c[1], c[2], 0)?;
                let mut attrs = vec![];
                for (j, v) in c.iter().enumerate().skip(3) {
                    let key = match j {
                        3 => "name".to_owned(),
                        4 => "score".to_owned(),
                        5 => continue,
                        _ => format!("col{}", j + 1),
                    };
                    attrs.push(format!("{key}={}", encode(v)));
                }
                let strand = strand(&at, c.get(5).copied().unwrap_or("."))?;
                (c[0], ("bed", strand, start, end, attrs.join(";")))
            }
            Format::Gff3 | Format::Gtf => {
                if c.len() != 9 {
                    bail!(
                        "{}: {} tab-separated columns, a GFF/GTF line has 9",
                        at(),
                        c.len()
                    );
                }
                let (start, end) = span(&at, c[3], c[4], 1)?;
                let attrs = if format == Format::Gtf {
                    gtf_attributes(c[8])
                } else {
                    c[8].trim().to_owned()
                };
                (c[0], (c[2], strand(&at, c[6])?, start, end, attrs))
            }
        };
        let (kind, strand, start, end, attributes) = f;
        if !wanted.matches(kind) {
            continue;
        }
        out.entry(chrom.to_owned()).or_default().push(Feature {
            kind: kind.to_owned(),
            strand,
            start,
            end,
            line: i + 1,
            attributes,
        });
    }
    Ok(out)
}

/// Start and end columns as 0-based end-exclusive (`base` 1: GFF's 1-based inclusive start).
fn span(at: &dyn Fn() -> String, s: &str, e: &str, base: u64) -> Result<(u64, u64)> {
    match (s.trim().parse::<u64>(), e.trim().parse::<u64>()) {
        (Ok(s), Ok(e)) if s >= base && e + base > s => Ok((s - base, e)),
        _ => bail!(
            "{}: start {s:?} and end {e:?} are not {}",
            at(),
            if base == 1 {
                "1-based start ≤ end"
            } else {
                "0-based start < end"
            }
        ),
    }
}

fn strand(at: &dyn Fn() -> String, s: &str) -> Result<char> {
    match s {
        "+" => Ok('+'),
        "-" => Ok('-'),
        "." | "?" | "" => Ok('.'),
        _ => bail!("{}: strand {s:?} (+, - or .)", at()),
    }
}

/// GFF3's escapes for the characters that structure its attributes.
fn encode(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '%' => s.push_str("%25"),
            ';' => s.push_str("%3B"),
            '=' => s.push_str("%3D"),
            ',' => s.push_str("%2C"),
            '\t' => s.push_str("%09"),
            c => s.push(c),
        }
    }
    s
}

/// `gene_id "G1"; transcript_id "T1"; tag "basic";` → `gene_id=G1;transcript_id=T1;tag=basic`
/// (a `;` inside quotes kept as part of the value).
fn gtf_attributes(text: &str) -> String {
    let mut pairs = vec![];
    let mut field = String::new();
    let mut quoted = false;
    let mut fields = vec![];
    for ch in text.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                field.push(ch);
            }
            ';' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    for f in fields {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        let (k, v) = f.split_once(char::is_whitespace).unwrap_or((f, ""));
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        pairs.push(format!("{}={}", encode(k), encode(v)));
    }
    pairs.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtf_attributes_become_gff3_pairs() {
        assert_eq!(
            gtf_attributes(r#"gene_id "G1"; transcript_id "T;1"; exon_number 2; tag "a=b";"#),
            "gene_id=G1;transcript_id=T%3B1;exon_number=2;tag=a%3Db"
        );
    }

    #[test]
    fn lines_of_each_format_read_as_features() {
        let dir = tempfile::tempdir().unwrap();
        let all = Wanted(vec!["*".into()]);
        let bed = dir.path().join("peaks.bed");
        std::fs::write(
            &bed,
            "track name=x\nchr1\t10\t20\tpeak;1\t5\t-\t7.5\nchr2\t0\t5\n",
        )
        .unwrap();
        let f = read(&bed, &all).unwrap();
        assert_eq!(
            f["chr1"],
            vec![Feature {
                kind: "bed".into(),
                strand: '-',
                start: 10,
                end: 20,
                line: 2,
                attributes: "name=peak%3B1;score=5;col7=7.5".into()
            }]
        );
        assert_eq!(f["chr2"][0].group("chr2"), "chr2:0-5");
        assert_eq!(f["chr1"][0].group("chr1"), "peak%3B1");

        let gff = dir.path().join("a.gff3");
        std::fs::write(
            &gff,
            "##gff-version 3\nchr1\tx\tgene\t1\t100\t.\t+\t.\tID=g1\nchr1\tx\tCDS\t5\t10\t.\t+\t0\tParent=t1\n##FASTA\n>chr1\nACGT\n",
        )
        .unwrap();
        let cds = read(&gff, &Wanted(vec!["CDS".into()])).unwrap();
        assert_eq!(cds["chr1"].len(), 1);
        assert_eq!((cds["chr1"][0].start, cds["chr1"][0].end), (4, 10));
        assert_eq!(cds["chr1"][0].line, 3);
        assert_eq!(cds["chr1"][0].group("chr1"), "t1");

        std::fs::write(&bed, "chr1\t20\t10\n").unwrap();
        let e = read(&bed, &all).unwrap_err().to_string();
        assert!(
            e.contains("peaks.bed:1") && e.contains("not 0-based"),
            "{e}"
        );
        std::fs::write(&gff, "chr1\tx\tgene\t1\t100\t.\t*\t.\tID=g1\n").unwrap();
        let e = read(&gff, &all).unwrap_err().to_string();
        assert!(e.contains("a.gff3:1") && e.contains("strand"), "{e}");
    }
}
