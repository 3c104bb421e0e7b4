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

    pub fn finish(mut self) -> Result<()> {
        let h = header(self.rows, self.cols);
        self.file.patch(0, &h)?;
        self.file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
