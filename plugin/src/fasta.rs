//! Streaming FASTA input, plain or gzip (also multi-member, as bgzip writes).
//!
//! Records are read one at a time into a reused buffer and lent out from there, so a genome is
//! held one chromosome at a time, once. Parsing is `bio`'s; this module adds errors that name the
//! file, the record and the line. Soft-masked (lowercase) bases are left as they are in the
//! buffer: the tokenizer reads them as uppercase, which spares a copy of the chromosome.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bio::io::fasta::{self, FastaRead};
use flate2::read::MultiGzDecoder;

#[derive(Debug, thiserror::Error)]
pub enum FastaError {
    // The io error is in the message and not a `source`: anyhow's chain would print it twice.
    #[error("{path}: cannot open: {error}")]
    Open { path: PathBuf, error: io::Error },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: record '{id}' (#{index}) has no sequence")]
    EmptyRecord {
        path: PathBuf,
        line: u64,
        id: String,
        index: usize,
    },
    #[error("{path}: no FASTA records found (is this a FASTA file?)")]
    NoRecords { path: PathBuf },
}

/// One FASTA record, lent from the reader's buffer. `line` is the 1-based line of its header.
#[derive(Debug, Clone, Copy)]
pub struct Sequence<'a> {
    pub id: &'a str,
    /// As in the file: soft-masked bases stay lowercase.
    pub seq: &'a [u8],
    pub line: u64,
}

/// Counts the newlines that the parser consumes, so errors can point at a line.
struct LineCounter<B> {
    inner: B,
    lines: Arc<AtomicU64>,
}

fn count_lines(lines: &AtomicU64, b: &[u8]) {
    let n = b.iter().filter(|&&c| c == b'\n').count() as u64;
    lines.fetch_add(n, Ordering::Relaxed);
}

impl<B: BufRead> Read for LineCounter<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        count_lines(&self.lines, &buf[..n]);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for LineCounter<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(buf) = self.inner.fill_buf() {
            count_lines(&self.lines, &buf[..amt.min(buf.len())]);
        }
        self.inner.consume(amt)
    }
}

type Inner = LineCounter<Box<dyn BufRead + Send>>;

/// A compression other than gzip, by its magic bytes.
fn other_compression(magic: &[u8]) -> Option<&'static str> {
    [
        (&b"BZh"[..], "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0][..], "xz"),
        (&[0x28, 0xb5, 0x2f, 0xfd][..], "zstd"),
        (&b"PK\x03\x04"[..], "zip"),
    ]
    .iter()
    .find(|(m, _)| magic.starts_with(m))
    .map(|(_, kind)| *kind)
}

/// The line and column of base `base` (0-based) of the record whose header is on
/// `header_line`: the sequence's lines are read again (only on the way to an error).
fn locate(path: &Path, header_line: u64, base: usize) -> Option<(u64, usize)> {
    let file = File::open(path).ok()?;
    let mut buffered = BufReader::new(file);
    let gz = crate::io_util::is_gzip(buffered.fill_buf().ok()?);
    let inner: Box<dyn BufRead> = if gz {
        Box::new(BufReader::new(MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    let mut seen = 0usize;
    for (i, line) in inner.split(b'\n').enumerate().skip(header_line as usize) {
        let line = line.ok()?;
        let len = line.strip_suffix(b"\r").unwrap_or(&line).len();
        if base < seen + len {
            return Some((i as u64 + 1, base - seen + 1));
        }
        seen += len;
    }
    None
}

pub struct FastaReader {
    path: PathBuf,
    reader: fasta::Reader<Inner>,
    record: fasta::Record,
    lines: Arc<AtomicU64>,
    index: usize,
    done: bool,
}

impl FastaReader {
    /// Opens `path`; gzip is recognised by its magic bytes, not by the file name.
    pub fn open(path: &Path) -> Result<Self, FastaError> {
        let open_err = |error| FastaError::Open {
            path: path.to_owned(),
            error,
        };
        let file = File::open(path).map_err(open_err)?;
        // 1 MiB of buffer for a genome, no more than the file for a small one (the gzip
        // decoder's buffer too: it is zeroed before its first read): a 1 MiB allocation per
        // open was an mmap, page faults and an munmap, most of the fuzz target's time.
        let size = file.metadata().map_or(u64::MAX, |m| m.len());
        let capacity = size.clamp(8 << 10, 1 << 20) as usize;
        let mut buffered = BufReader::with_capacity(capacity, file);
        let magic = buffered.fill_buf().map_err(open_err)?;
        if let Some(kind) = other_compression(magic) {
            return Err(FastaError::Parse {
                path: path.to_owned(),
                line: 1,
                message: format!(
                    "{kind}-compressed: dnabert reads plain or gzip (bgzip) FASTA; decompress it \
                     first, or recompress it with gzip or bgzip"
                ),
            });
        }
        let gz = crate::io_util::is_gzip(magic);
        let inner: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(
                capacity,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        let lines = Arc::new(AtomicU64::new(0));
        let counter = LineCounter {
            inner,
            lines: lines.clone(),
        };
        Ok(Self {
            path: path.to_owned(),
            reader: fasta::Reader::from_bufread(counter),
            record: fasta::Record::new(),
            lines,
            index: 0,
            done: false,
        })
    }

    /// Lines consumed so far; the parser reads one line ahead (the next header).
    fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Option<Result<Sequence<'_>, FastaError>> {
        if self.done {
            return None;
        }
        let result = self.read_one();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        match result {
            None if self.index == 0 => Some(Err(FastaError::NoRecords {
                path: self.path.clone(),
            })),
            None => None,
            Some(Err(e)) => Some(Err(e)),
            Some(Ok(line)) => Some(Ok(Sequence {
                id: self.record.id(),
                seq: self.record.seq(),
                line,
            })),
        }
    }

    /// Reads the next record into the buffer; returns its header line.
    fn read_one(&mut self) -> Option<Result<u64, FastaError>> {
        // bio keeps the next header once it has read a record, so its line is already counted.
        let header_line = if self.index == 0 {
            self.lines() + 1
        } else {
            self.lines()
        };
        if let Err(e) = self.reader.read(&mut self.record) {
            return Some(Err(self.parse_error(header_line, e)));
        }
        if self.record.is_empty() {
            return None;
        }
        self.index += 1;
        let id = self.record.id();
        if self.record.seq().is_empty() {
            return Some(Err(FastaError::EmptyRecord {
                path: self.path.clone(),
                line: header_line,
                id: id.to_owned(),
                index: self.index,
            }));
        }
        if let Err(e) = self.record.check() {
            let seq = self.record.seq();
            let bad = seq
                .iter()
                .position(|&c| !(c.is_ascii_alphabetic() || matches!(c, b'-' | b'.' | b'*')))
                .unwrap_or(0);
            // The error points at the line that holds the bad byte, not at the header.
            let (line, column) = locate(&self.path, header_line, bad).unwrap_or((header_line, 0));
            let message = format!(
                "record '{id}' (#{}, header on line {header_line}): {e} (byte {:?} at base {}, \
                 column {column})",
                self.index,
                seq.get(bad).map(|&c| c as char).unwrap_or('?'),
                bad + 1
            );
            return Some(Err(FastaError::Parse {
                path: self.path.clone(),
                line,
                message,
            }));
        }
        Some(Ok(header_line))
    }

    fn parse_error(&self, line: u64, e: io::Error) -> FastaError {
        let message = match e.kind() {
            io::ErrorKind::UnexpectedEof => format!("file ends early (truncated gzip?): {e}"),
            io::ErrorKind::InvalidData => format!("not text (binary or corrupt file?): {e}"),
            _ if e.to_string().contains("Expected >") => {
                "expected a FASTA header starting with '>' (is this a FASTA file?)".to_string()
            }
            _ => e.to_string(),
        };
        let what = if self.index == 0 {
            "before the first record".to_string()
        } else {
            format!("after record #{} '{}'", self.index, self.record.id())
        };
        FastaError::Parse {
            path: self.path.clone(),
            line,
            message: format!("{message} ({what})"),
        }
    }
}
