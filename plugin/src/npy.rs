//! A streaming writer of 2-D little-endian float32 `.npy` files (format version 1.0).
//!
//! The row count is unknown until a genome has been read, so the header is written with room
//! for any count and patched at the end.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::io_util::AtomicFile;

const HEADER_LEN: usize = 128;

pub struct NpyWriter {
    file: AtomicFile,
    cols: usize,
    rows: u64,
}

fn header(rows: u64, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&((HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

impl NpyWriter {
    pub fn create(path: &Path, cols: usize) -> Result<Self> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(&header(0, cols))
            .with_context(|| format!("{}: write failed", path.display()))?;
        Ok(Self {
            file,
            cols,
            rows: 0,
        })
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn write_row(&mut self, row: &[f32]) -> Result<()> {
        debug_assert_eq!(row.len(), self.cols);
        let mut bytes = Vec::with_capacity(row.len() * 4);
        for v in row {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.file.write_all(&bytes).with_context(|| {
            format!("{}: write failed (disk full?)", self.file.path().display())
        })?;
        self.rows += 1;
        Ok(())
    }

    /// Appends rows given as little-endian float32 bytes (as another `.npy` file holds them).
    pub fn write_le_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let row_bytes = self.cols * 4;
        if row_bytes == 0 || !bytes.len().is_multiple_of(row_bytes) {
            anyhow::bail!(
                "{}: {} bytes is not a whole number of {}-column rows",
                self.file.path().display(),
                bytes.len(),
                self.cols
            );
        }
        self.file.write_all(bytes).with_context(|| {
            format!("{}: write failed (disk full?)", self.file.path().display())
        })?;
        self.rows += (bytes.len() / row_bytes) as u64;
        Ok(())
    }

    pub fn finish(self) -> Result<()> {
        self.into_file()?.commit()
    }

    /// The file with its header patched, for committing with another (`io_util::commit_pair`).
    pub fn into_file(mut self) -> Result<AtomicFile> {
        let h = header(self.rows, self.cols);
        self.file.patch(0, &h)?;
        Ok(self.file)
    }
}

/// The shape of a 2-D little-endian float32 `.npy` file (as `NpyWriter` writes them) and the
/// offset of its data; anything else is an error that names the file.
pub fn read_header(path: &Path) -> Result<(u64, usize, u64)> {
    use std::io::Read;
    let bad =
        |why: &str| anyhow::anyhow!("{}: not a 2-D float32 .npy file ({why})", path.display());
    let mut f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre)
        .map_err(|_| bad("shorter than a header"))?;
    if &pre[..6] != b"\x93NUMPY" || pre[6] != 1 {
        return Err(bad("no NUMPY v1 magic"));
    }
    let len = u16::from_le_bytes([pre[8], pre[9]]) as usize;
    let mut dict = vec![0u8; len];
    f.read_exact(&mut dict)
        .map_err(|_| bad("truncated header"))?;
    let dict = String::from_utf8_lossy(&dict);
    if !dict.contains("'descr': '<f4'") || !dict.contains("'fortran_order': False") {
        return Err(bad("dtype must be <f4, C order"));
    }
    let shape = dict
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<u64> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad("not 2-D"));
    };
    let offset = 10 + len as u64;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    // A hostile shape's product overflows: found by fuzzing (fuzz/artifacts, test below).
    let Some(needs) = rows.checked_mul(cols).and_then(|n| n.checked_mul(4)) else {
        return Err(bad(&format!(
            "its shape ({rows}, {cols}) claims more than 2^64 bytes"
        )));
    };
    if size.checked_sub(offset) != Some(needs) {
        return Err(bad(&format!(
            "holds {} data bytes, its shape ({rows}, {cols}) needs {needs} (truncated?)",
            size.saturating_sub(offset),
        )));
    }
    Ok((rows, cols as usize, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_whose_size_overflows_is_refused() {
        // The fuzzer's crash input (npy target), reduced to its point.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let dict =
            "{'descr': '<f4', 'fortran_order': False, 'shape': (444444444444, 444444444444), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((dict.len() as u16).to_le_bytes());
        bytes.extend(dict.as_bytes());
        std::fs::write(&p, bytes).unwrap();
        let e = read_header(&p).unwrap_err().to_string();
        assert!(e.contains("claims more than 2^64 bytes"), "{e}");
    }

    #[test]
    fn header_is_aligned_and_holds_the_shape() {
        let h = header(123_456_789_012, 768);
        assert_eq!(h.len() % 64, 0);
        assert!(std::str::from_utf8(&h[10..])
            .unwrap()
            .contains("'shape': (123456789012, 768)"));
        assert_eq!(*h.last().unwrap(), b'\n');
    }

    #[test]
    fn rows_land_after_the_header_and_the_file_appears_only_on_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let mut w = NpyWriter::create(&path, 2).unwrap();
        w.write_row(&[1.0, 2.0]).unwrap();
        w.write_row(&[3.0, -4.5]).unwrap();
        assert!(!path.exists());
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 16);
        assert!(String::from_utf8_lossy(&bytes[..HEADER_LEN]).contains("(2, 2)"));
        assert_eq!(
            f32::from_le_bytes(bytes[HEADER_LEN + 12..].try_into().unwrap()),
            -4.5
        );
    }
}
