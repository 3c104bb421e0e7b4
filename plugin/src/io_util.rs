//! Atomic output files: written under a temporary name in the destination folder and renamed
//! into place only when complete, so a killed job never leaves a half-written output behind.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

/// Whether bytes open a gzip stream (its magic number): inputs are recognised by content, not
/// by file name.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// The first `n` bytes of a file (fewer if it is shorter).
pub fn head(path: &Path, n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(n);
    File::open(path)
        .and_then(|f| f.take(n as u64).read_to_end(&mut buf))
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(buf)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut out = AtomicFile::create(path)?;
    out.write_all(bytes)
        .with_context(|| format!("{}: write failed", path.display()))?;
    out.commit()
}

/// A file that appears at `path` only on `commit`; dropped uncommitted, it vanishes.
pub struct AtomicFile {
    path: PathBuf,
    writer: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // A finished output gets the mode any new file would (0666 less the umask), not the
        // temporary file's private 0600: others in the project group must be able to read it.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(dir).with_context(|| {
            format!(
                "{}: cannot create a temporary file in {}",
                path.display(),
                dir.display()
            )
        })?;
        Ok(Self {
            path: path.to_owned(),
            writer: BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Overwrites bytes at `offset` (for headers whose content is known only at the end).
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let ctx = || format!("{}: write failed", self.path.display());
        self.writer.flush().with_context(ctx)?;
        let file: &mut File = self.writer.get_mut().as_file_mut();
        let end = file.stream_position().with_context(ctx)?;
        file.seek(SeekFrom::Start(offset)).with_context(ctx)?;
        file.write_all(bytes).with_context(ctx)?;
        file.seek(SeekFrom::Start(end)).with_context(ctx)?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let tmp = self
            .writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}: write failed: {}", path.display(), e.error()))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("{}: sync failed (disk full?)", path.display()))?;
        tmp.persist(&path).with_context(|| {
            format!(
                "{}: cannot move the finished file into place",
                path.display()
            )
        })?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn committed_files_get_the_mode_of_any_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }
}
