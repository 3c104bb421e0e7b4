//! Scatter and gather for workflow engines: cut a genome FASTA into chunks that can be embedded
//! as separate tasks, and join the per-chunk embeddings back into one `PREFIX.npy` + `PREFIX.tsv`
//! in genome order.
//!
//! Chunks hold whole records, in input order, until they reach `chunk_bases`; a record longer
//! than that is cut into pieces of `chunk_bases` named `ID:START-END` (1-based, inclusive, as
//! samtools writes regions). `manifest.tsv` lists every piece, so `gather` can give rows back
//! their record's name and coordinates. The k-mers that span a cut are not embedded, and bases
//! near a cut see context from one side only; records that were not cut come out exactly as
//! from a single `dnabert embed` run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::embed::index_layout::{IndexLine, RowLayout};
use crate::embed::INDEX_HEADER;
use crate::fasta::FastaReader;
use crate::io_util::AtomicFile;
use crate::npy::NpyWriter;

pub const MANIFEST: &str = "manifest.tsv";
const MANIFEST_HEADER: &str = "chunk\tpiece_id\tseq_id\toffset\tlength";
const FASTA_WIDTH: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub chunk: String,
    pub piece_id: String,
    pub seq_id: String,
    pub offset: u64,
    pub length: u64,
}

#[derive(Debug, Default)]
pub struct SplitSummary {
    pub chunks: Vec<PathBuf>,
    pub records: usize,
    pub pieces: usize,
    pub bases: u64,
}

fn chunk_name(i: usize) -> String {
    format!("chunk_{i:05}")
}

/// Writes `DIR/chunk_NNNNN.fa` and `DIR/manifest.tsv`; every file appears only when complete.
/// `dnabert split-fasta`'s flags.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// Genome FASTA, plain or gzip, or an https:// URL (downloaded once and cached).
    #[arg(long)]
    pub input: PathBuf,
    /// Output folder: chunk_NNNNN.fa and manifest.tsv.
    #[arg(long)]
    pub output: PathBuf,
    /// At most this many bases per chunk; a longer record is cut into pieces of it.
    #[arg(long, default_value_t = 10_000_000)]
    pub chunk_bases: u64,
}

impl SplitArgs {
    /// `dnabert split-fasta`: a summary on stderr, the chunk files on stdout.
    pub fn run(self) -> Result<()> {
        let s = split_fasta(&self.input, &self.output, self.chunk_bases)?;
        eprintln!(
            "split-fasta: {} records ({} bases) into {} chunks, {} pieces",
            s.records,
            s.bases,
            s.chunks.len(),
            s.pieces
        );
        s.chunks
            .iter()
            .try_for_each(|c| crate::cli::say(c.display()))
    }
}

/// `dnabert gather-embeddings`' flags.
#[derive(Debug, clap::Args)]
pub struct GatherArgs {
    /// manifest.tsv from `split-fasta`.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Output prefix: writes PREFIX.npy and PREFIX.tsv.
    #[arg(long)]
    pub output: PathBuf,
    /// Per-chunk outputs (chunk_NNNNN.npy/.tsv, or their prefixes), in any order.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
}

impl GatherArgs {
    /// `dnabert gather-embeddings`: a summary on stderr, the two files on stdout.
    pub fn run(self) -> Result<()> {
        let s = gather_embeddings(&self.manifest, &self.parts, &self.output)?;
        eprintln!(
            "gather-embeddings: {} chunks, {} rows × {}",
            s.chunks, s.rows, s.cols
        );
        let (npy, tsv) = crate::embed::output_paths(&self.output);
        crate::cli::say(format!(
            "{}\t{} rows\n{}",
            npy.display(),
            s.rows,
            tsv.display()
        ))
    }
}

pub fn split_fasta(input: &Path, dir: &Path, chunk_bases: u64) -> Result<SplitSummary> {
    if chunk_bases == 0 {
        bail!("--chunk-bases must be at least 1");
    }
    let input = &crate::remote::local(input)?;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
    let mut reader = FastaReader::open(input)?;
    let mut summary = SplitSummary::default();
    let mut manifest = format!("{MANIFEST_HEADER}\n");
    let mut current: Option<(AtomicFile, u64)> = None;

    while let Some(record) = reader.next_record() {
        let record = record?;
        summary.records += 1;
        let len = record.seq.len() as u64;
        // A record that fits in a chunk is never cut; one that does not is cut into pieces of
        // `chunk_bases`, each of which starts a chunk of its own.
        let cut = len > chunk_bases;
        let mut from = 0u64;
        while from < len {
            let to = (from + chunk_bases).min(len);
            let joins_open_chunk = !cut
                && current
                    .as_ref()
                    .is_some_and(|(_, filled)| filled + len <= chunk_bases);
            if !joins_open_chunk {
                if let Some((file, _)) = current.take() {
                    file.commit()?;
                }
                let path = dir.join(format!("{}.fa", chunk_name(summary.chunks.len() + 1)));
                current = Some((AtomicFile::create(&path)?, 0));
                summary.chunks.push(path);
            }
            // Opened just above unless the piece joins the open chunk.
            let Some((file, filled)) = current.as_mut() else {
                bail!("split-fasta: no chunk open (a bug)");
            };
            let piece_id = if cut {
                format!("{}:{}-{}", record.id, from + 1, to)
            } else {
                record.id.to_owned()
            };
            write_record(file, &piece_id, &record.seq[from as usize..to as usize])?;
            let chunk = chunk_name(summary.chunks.len());
            manifest.push_str(&format!(
                "{chunk}\t{piece_id}\t{}\t{from}\t{}\n",
                record.id,
                to - from
            ));
            *filled += to - from;
            summary.pieces += 1;
            summary.bases += to - from;
            from = to;
        }
    }
    if let Some((file, _)) = current.take() {
        file.commit()?;
    }
    crate::io_util::write_atomic(&dir.join(MANIFEST), manifest.as_bytes())?;
    Ok(summary)
}

fn write_record(out: &mut AtomicFile, id: &str, seq: &[u8]) -> Result<()> {
    let path = out.path().to_owned();
    let mut write = || -> std::io::Result<()> {
        writeln!(out, ">{id}")?;
        for line in seq.chunks(FASTA_WIDTH) {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    };
    write().with_context(|| format!("{}: write failed (disk full?)", path.display()))
}

pub fn read_manifest(path: &Path) -> Result<Vec<Piece>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the manifest", path.display()))?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h == MANIFEST_HEADER => {}
        _ => bail!(
            "{}:1: not a split-fasta manifest (expected the header '{}')",
            path.display(),
            MANIFEST_HEADER.replace('\t', " ")
        ),
    }
    let pieces: Vec<(usize, Piece)> = lines
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            let num = |s: &str| {
                s.parse::<u64>()
                    .with_context(|| format!("{}:{}: '{s}' is not a number", path.display(), i + 1))
            };
            if f.len() != 5 {
                bail!(
                    "{}:{}: expected 5 columns, found {}",
                    path.display(),
                    i + 1,
                    f.len()
                );
            }
            Ok((
                i + 1,
                Piece {
                    chunk: f[0].to_owned(),
                    piece_id: f[1].to_owned(),
                    seq_id: f[2].to_owned(),
                    offset: num(f[3])?,
                    length: num(f[4])?,
                },
            ))
        })
        .collect::<Result<_>>()?;
    // A repeated piece would be gathered twice (its rows duplicated in the output).
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (line, p) in &pieces {
        if let Some(first) = seen.insert((p.chunk.as_str(), p.piece_id.as_str()), *line) {
            bail!(
                "{}:{line}: piece {} of {} is listed again (first on line {first})",
                path.display(),
                p.piece_id,
                p.chunk
            );
        }
    }
    Ok(pieces.into_iter().map(|(_, p)| p).collect())
}

/// The chunk a part belongs to, from its file name (`chunk_00003.npy`, `chunk_00003.tsv`, or the
/// prefix `chunk_00003`).
fn part_chunk(part: &Path) -> String {
    let name = part
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.strip_suffix(".npy")
        .or_else(|| name.strip_suffix(".tsv"))
        .unwrap_or(name)
        .to_owned()
}

#[derive(Debug, Default)]
pub struct GatherSummary {
    pub chunks: usize,
    pub rows: u64,
    pub cols: usize,
}

/// Joins the embeddings of every chunk in the manifest (`parts`: their `.npy`/`.tsv` files or
/// prefixes, in any order) into `PREFIX.npy` + `PREFIX.tsv`, in the manifest's order, with
/// pieces renamed to their records and shifted to record coordinates.
pub fn gather_embeddings(
    manifest: &Path,
    parts: &[PathBuf],
    output: &Path,
) -> Result<GatherSummary> {
    let pieces = read_manifest(manifest)?;
    let by_piece: HashMap<(&str, &str), &Piece> = pieces
        .iter()
        .map(|p| ((p.chunk.as_str(), p.piece_id.as_str()), p))
        .collect();
    let mut prefixes: HashMap<String, PathBuf> = HashMap::new();
    for part in parts {
        let chunk = part_chunk(part);
        let prefix = part.with_file_name(&chunk);
        if let Some(other) = prefixes.insert(chunk.clone(), prefix.clone()) {
            if other != prefix {
                bail!(
                    "two parts for {chunk}: {} and {}",
                    other.display(),
                    prefix.display()
                );
            }
        }
    }
    let mut chunks: Vec<&str> = pieces.iter().map(|p| p.chunk.as_str()).collect();
    chunks.dedup();
    if let Some(extra) = prefixes.keys().find(|c| !chunks.contains(&c.as_str())) {
        bail!("{extra}: not a chunk of {}", manifest.display());
    }

    let (npy_out, tsv_out) = crate::embed::output_paths(output);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create the output folder", parent.display()))?;
    }
    let _lock = crate::io_util::OutputLock::acquire(output)?;
    let mut npy: Option<NpyWriter> = None;
    let mut tsv = AtomicFile::create(&tsv_out)?;
    writeln!(tsv, "{INDEX_HEADER}")?;
    let mut summary = GatherSummary::default();
    // The layout every part so far fits, and the first part's index (for the error).
    let mut layout: Option<(RowLayout, PathBuf)> = None;
    for chunk in chunks {
        let prefix = prefixes.get(chunk).with_context(|| {
            format!(
                "{chunk}: listed in {} but no embeddings were given for it",
                manifest.display()
            )
        })?;
        let (part_npy, part_tsv) = crate::embed::output_paths(prefix);
        let (rows, cols, data_at) = crate::npy::read_header(&part_npy)?;
        let writer = match npy.as_mut() {
            Some(w) => w,
            None => npy.insert(NpyWriter::create(&npy_out, cols)?),
        };
        if summary.cols != 0 && cols != summary.cols {
            bail!(
                "{}: {cols} columns, earlier chunks have {} (embedded with another model?)",
                part_npy.display(),
                summary.cols
            );
        }
        summary.cols = cols;
        let base_row = writer.rows();
        copy_rows(&part_npy, data_at, rows, cols, writer)?;
        let mut lines = BufReader::new(
            std::fs::File::open(&part_tsv)
                .with_context(|| format!("{}: cannot open", part_tsv.display()))?,
        )
        .lines();
        match lines.next() {
            Some(Ok(h)) if h == INDEX_HEADER => {}
            _ => bail!("{}:1: not a dnabert embed index", part_tsv.display()),
        }
        let mut index = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line.with_context(|| format!("{}: cannot read", part_tsv.display()))?;
            let at = || format!("{}:{}", part_tsv.display(), i + 2);
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                bail!("{}: expected 4 columns", at());
            }
            let num = |s: &str| {
                s.parse::<u64>()
                    .with_context(|| format!("{}: '{s}' is not a number", at()))
            };
            let (start, end, row) = (num(f[1])?, num(f[2])?, num(f[3])?);
            if row > rows {
                bail!(
                    "{}: row {row} is past the {rows} rows of {}",
                    at(),
                    part_npy.display()
                );
            }
            let piece = by_piece.get(&(chunk, f[0])).with_context(|| {
                format!(
                    "{}: sequence '{}' is not in {} for {chunk}",
                    at(),
                    f[0],
                    manifest.display()
                )
            })?;
            index.push((*piece, IndexLine { start, end, row }));
        }
        let lines: Vec<IndexLine> = index.iter().map(|(_, l)| *l).collect();
        let this = RowLayout::of(&lines, rows);
        layout = match layout {
            None => Some((this, part_tsv.clone())),
            Some((so_far, first)) => match so_far.meet(this) {
                Some(both) => Some((both, first)),
                None => bail!(
                    "{}: laid out {}, but the parts before it (from {}) are {}: they were \
                     embedded with different --pooling or --per-nucleotide settings",
                    part_tsv.display(),
                    this.describe(),
                    first.display(),
                    so_far.describe()
                ),
            },
        };
        for (piece, l) in index {
            writeln!(
                tsv,
                "{}\t{}\t{}\t{}",
                piece.seq_id,
                l.start + piece.offset,
                l.end + piece.offset,
                l.row + base_row
            )
            .with_context(|| format!("{}: write failed (disk full?)", tsv_out.display()))?;
        }
        summary.chunks += 1;
    }
    let writer = npy.with_context(|| format!("{}: lists no chunks", manifest.display()))?;
    summary.rows = writer.rows();
    crate::io_util::commit_pair(writer.into_file()?, tsv)?;
    Ok(summary)
}

fn copy_rows(path: &Path, data_at: u64, rows: u64, cols: usize, out: &mut NpyWriter) -> Result<()> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    f.seek(SeekFrom::Start(data_at))?;
    let row_bytes = cols * 4;
    let per_read = (1 << 22) / row_bytes.max(1) + 1;
    let mut buf = vec![0u8; per_read * row_bytes];
    let mut left = rows;
    while left > 0 {
        let n = left.min(per_read as u64) as usize;
        f.read_exact(&mut buf[..n * row_bytes])
            .with_context(|| format!("{}: cannot read (truncated?)", path.display()))?;
        out.write_le_bytes(&buf[..n * row_bytes])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_that_lists_a_piece_twice_is_refused_naming_both_lines() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("manifest.tsv");
        std::fs::write(
            &m,
            format!("{MANIFEST_HEADER}\nchunk_00001\tr1\tr1\t0\t10\nchunk_00001\tr2\tr2\t0\t5\nchunk_00001\tr1\tr1\t0\t10\n"),
        )
        .unwrap();
        let e = read_manifest(&m).unwrap_err().to_string();
        assert!(
            e.contains("manifest.tsv:4: piece r1 of chunk_00001 is listed again (first on line 2)"),
            "{e}"
        );
    }

    fn fasta(dir: &Path, records: &[(&str, usize)]) -> PathBuf {
        let path = dir.join("in.fa");
        let mut s = String::new();
        for (i, (id, n)) in records.iter().enumerate() {
            let seq: String = (0..*n)
                .map(|j| b"ACGT"[(i + j * 7 + j / 3) % 4] as char)
                .collect();
            s.push_str(&format!(">{id} description\n{seq}\n"));
        }
        std::fs::write(&path, s).unwrap();
        path
    }

    fn records(path: &Path) -> Vec<(String, String)> {
        let mut r = FastaReader::open(path).unwrap();
        let mut out = vec![];
        while let Some(rec) = r.next_record() {
            let rec = rec.unwrap();
            out.push((
                rec.id.to_owned(),
                String::from_utf8(rec.seq.to_vec()).unwrap(),
            ));
        }
        out
    }

    #[test]
    fn chunks_hold_whole_records_and_cut_only_the_long_ones() {
        let dir = tempfile::tempdir().unwrap();
        let input = fasta(dir.path(), &[("a", 30), ("b", 50), ("c", 250), ("d", 10)]);
        let out = dir.path().join("chunks");
        let s = split_fasta(&input, &out, 100).unwrap();
        // Every chunk holds at most 100 bases; d fills up c's last piece's chunk.
        let m = read_manifest(&out.join(MANIFEST)).unwrap();
        let ids: Vec<(&str, &str, u64, u64)> = m
            .iter()
            .map(|p| (p.chunk.as_str(), p.piece_id.as_str(), p.offset, p.length))
            .collect();
        assert_eq!(
            ids,
            [
                ("chunk_00001", "a", 0, 30),
                ("chunk_00001", "b", 0, 50),
                ("chunk_00002", "c:1-100", 0, 100),
                ("chunk_00003", "c:101-200", 100, 100),
                ("chunk_00004", "c:201-250", 200, 50),
                ("chunk_00004", "d", 0, 10),
            ]
        );
        assert_eq!(
            (s.records, s.pieces, s.bases, s.chunks.len()),
            (4, 6, 340, 4)
        );
        let original = records(&input);
        let joined: String = s
            .chunks
            .iter()
            .flat_map(|c| records(c))
            .filter(|(id, _)| id.starts_with("c:"))
            .map(|(_, seq)| seq)
            .collect();
        assert_eq!(joined, original[2].1);
        assert_eq!(records(&s.chunks[3])[1], original[3]);
        assert!(std::fs::read_dir(&out).unwrap().all(|e| {
            !e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")
        }));
    }

    fn part(dir: &Path, chunk: &str, rows: &[(&str, u64, u64, u64)], values: &[[f32; 2]]) {
        let prefix = dir.join(chunk);
        let (npy, tsv) = crate::embed::output_paths(&prefix);
        let mut w = NpyWriter::create(&npy, 2).unwrap();
        values.iter().for_each(|v| w.write_row(v).unwrap());
        w.finish().unwrap();
        let mut s = String::from("seq_id\tstart\tend\trow\n");
        rows.iter()
            .for_each(|(id, a, b, r)| s.push_str(&format!("{id}\t{a}\t{b}\t{r}\n")));
        std::fs::write(tsv, s).unwrap();
    }

    #[test]
    fn gather_renames_pieces_shifts_coordinates_and_keeps_manifest_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = fasta(dir.path(), &[("a", 30), ("c", 250)]);
        split_fasta(&input, &dir.path().join("chunks"), 100).unwrap();
        part(dir.path(), "chunk_00001", &[("a", 0, 30, 0)], &[[1., 2.]]);
        part(
            dir.path(),
            "chunk_00002",
            &[("c:1-100", 0, 100, 0)],
            &[[3., 4.]],
        );
        part(
            dir.path(),
            "chunk_00003",
            &[("c:101-200", 0, 100, 0)],
            &[[5., 6.]],
        );
        part(
            dir.path(),
            "chunk_00004",
            &[("c:201-250", 0, 25, 0), ("c:201-250", 20, 50, 1)],
            &[[7., 8.], [9., 10.]],
        );
        let parts: Vec<PathBuf> = [
            "chunk_00004.npy",
            "chunk_00001.tsv",
            "chunk_00003",
            "chunk_00002",
        ]
        .iter()
        .map(|p| dir.path().join(p))
        .collect();
        let out = dir.path().join("all");
        let s = gather_embeddings(&dir.path().join("chunks").join(MANIFEST), &parts, &out).unwrap();
        assert_eq!((s.chunks, s.rows, s.cols), (4, 5, 2));
        let tsv = std::fs::read_to_string(dir.path().join("all.tsv")).unwrap();
        assert_eq!(
            tsv,
            "seq_id\tstart\tend\trow\na\t0\t30\t0\nc\t0\t100\t1\nc\t100\t200\t2\nc\t200\t225\t3\nc\t220\t250\t4\n"
        );
        let (rows, cols, at) = crate::npy::read_header(&dir.path().join("all.npy")).unwrap();
        let bytes = std::fs::read(dir.path().join("all.npy")).unwrap();
        let values: Vec<f32> = bytes[at as usize..]
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!((rows, cols), (5, 2));
        assert_eq!(values, (1..=10).map(|v| v as f32).collect::<Vec<_>>());

        let missing =
            gather_embeddings(&dir.path().join("chunks").join(MANIFEST), &parts[..3], &out)
                .unwrap_err();
        assert!(
            format!("{missing:#}").contains("chunk_00002: listed in"),
            "{missing:#}"
        );
    }

    #[test]
    fn gather_refuses_parts_of_different_layouts_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let input = fasta(dir.path(), &[("a", 30), ("c", 250)]);
        split_fasta(&input, &dir.path().join("chunks"), 100).unwrap();
        let manifest = dir.path().join("chunks").join(MANIFEST);
        let pooled = |chunk: &str, id: &str| {
            part(
                dir.path(),
                chunk,
                &[(id, 0, 60, 0), (id, 40, 100, 1)],
                &[[0.; 2]; 2],
            )
        };
        part(
            dir.path(),
            "chunk_00001",
            &[("a", 0, 30, 0)],
            &[[0.; 2]; 25],
        );
        pooled("chunk_00002", "c:1-100");
        pooled("chunk_00003", "c:101-200");
        part(
            dir.path(),
            "chunk_00004",
            &[("c:201-250", 0, 50, 0)],
            &[[0.; 2]; 45],
        );
        let parts: Vec<PathBuf> = (1..=4)
            .map(|i| dir.path().join(format!("chunk_0000{i}")))
            .collect();
        let out = dir.path().join("all");
        let e = format!(
            "{:#}",
            gather_embeddings(&manifest, &parts, &out).unwrap_err()
        );
        assert!(
            e.contains("chunk_00002.tsv: laid out pooled (one row per window)"),
            "{e}"
        );
        assert!(
            e.contains("(from ")
                && e.contains("chunk_00001.tsv) are per token (one row per 6-mer)"),
            "{e}"
        );
        assert!(!out.with_extension("npy").exists() && !out.with_extension("tsv").exists());
        // Per-token parts throughout gather.
        for (i, id, n) in [(2, "c:1-100", 100), (3, "c:101-200", 100)] {
            part(
                dir.path(),
                &format!("chunk_0000{i}"),
                &[(id, 0, n, 0)],
                &vec![[0.; 2]; n as usize - 5],
            );
        }
        let s = gather_embeddings(&manifest, &parts, &out).unwrap();
        assert_eq!(s.rows, 25 + 95 + 95 + 45);
    }
}
