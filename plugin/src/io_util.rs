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

/// Reads a file in 1 MiB chunks, handing each to `f` (checksums of files of any size).
pub fn for_each_chunk(path: &Path, mut f: impl FnMut(&[u8])) -> Result<()> {
    use std::io::Read;
    let mut file = File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("{}: read failed", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n]);
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut out = AtomicFile::create(path)?;
    out.write_all(bytes)
        .with_context(|| format!("{}: write failed", path.display()))?;
    out.commit()
}

/// A file that appears at `path` only on `commit`; dropped uncommitted, it vanishes.
///
/// The temporary file is `.NAME.HOST.PID.partial` beside `path`: named for its writer, so that
/// SIGINT/SIGTERM remove it (`crate::signals`, through [`registry`]) and the next run at `path`
/// removes one a SIGKILL left (its process is gone), while another live writer's is left alone.
pub struct AtomicFile {
    path: PathBuf,
    tmp_path: PathBuf,
    writer: Option<BufWriter<NamedTempFile>>,
}

/// A file written in full and synced, not yet in place.
pub struct Finished {
    path: PathBuf,
    tmp_path: PathBuf,
    tmp: Option<NamedTempFile>,
}

/// The temporary files and locks of this process, removed by the signal handler.
pub mod registry {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub fn add(p: &Path) {
        if let Ok(mut v) = PATHS.lock() {
            v.push(p.to_owned());
        }
    }

    pub fn remove(p: &Path) {
        if let Ok(mut v) = PATHS.lock() {
            v.retain(|q| q != p);
        }
    }

    /// Deletes every registered file (the signal handler's cleanup); returns how many.
    pub fn delete_all() -> usize {
        // try_lock: a signal that lands while this thread holds the lock must not deadlock.
        match PATHS.try_lock() {
            Ok(v) => v.iter().filter(|p| std::fs::remove_file(p).is_ok()).count(),
            Err(_) => 0,
        }
    }
}

/// This machine's name, as temporary files carry it.
fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if ok && !h.is_empty() => h.replace(['.', '/'], "_"),
        _ => "host".into(),
    }
}

/// Whether process `pid` exists on this machine.
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks for existence and permission only; nothing is delivered.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes `.NAME.HOST.PID.partial` files in `dir` that this host's dead processes left.
fn remove_stale(dir: &Path, name: &str, host: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let head = format!(".{name}.{host}.");
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(f) = file.to_str() else { continue };
        let Some(pid) = f
            .strip_prefix(&head)
            .and_then(|r| r.strip_suffix(".partial"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let host = host();
        remove_stale(dir, name, &host);
        let prefix = format!(".{name}.{host}.{}", std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial").rand_bytes(0);
        // A finished output gets the mode any new file would (0666 less the umask), not the
        // temporary file's private 0600: others in the project group must be able to read it.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(dir).with_context(|| {
            format!(
                "{}: cannot create a temporary file in {} (is this output being written \
                 twice by this run?)",
                path.display(),
                dir.display()
            )
        })?;
        let tmp_path = tmp.path().to_owned();
        registry::add(&tmp_path);
        Ok(Self {
            path: path.to_owned(),
            tmp_path,
            writer: Some(BufWriter::with_capacity(1 << 20, tmp)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[allow(
        clippy::expect_used,
        reason = "finish() consumes self, so a writer is always there"
    )]
    fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        self.writer
            .as_mut()
            .expect("an AtomicFile is written only before it is finished")
    }

    /// Overwrites bytes at `offset` (for headers whose content is known only at the end).
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        let ctx = || format!("{}: write failed", path.display());
        let w = self.writer();
        w.flush().with_context(ctx)?;
        let file: &mut File = w.get_mut().as_file_mut();
        let end = file.stream_position().with_context(ctx)?;
        file.seek(SeekFrom::Start(offset)).with_context(ctx)?;
        file.write_all(bytes).with_context(ctx)?;
        file.seek(SeekFrom::Start(end)).with_context(ctx)?;
        Ok(())
    }

    /// Everything written out and synced (a full disk fails here), not yet in place.
    pub fn finish(mut self) -> Result<Finished> {
        let path = self.path.clone();
        let writer = self
            .writer
            .take()
            .with_context(|| format!("{}: finished twice (a bug)", path.display()))?;
        let tmp = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("{}: write failed: {}", path.display(), e.error()))?;
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("{}: sync failed (disk full?)", path.display()))?;
        Ok(Finished {
            path,
            tmp_path: std::mem::take(&mut self.tmp_path),
            tmp: Some(tmp),
        })
    }

    pub fn commit(self) -> Result<()> {
        self.finish()?.persist()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Unfinished: the temporary file goes with the NamedTempFile.
        registry::remove(&self.tmp_path);
    }
}

impl Finished {
    /// Moves the file into place.
    pub fn persist(mut self) -> Result<()> {
        let tmp = self
            .tmp
            .take()
            .with_context(|| format!("{}: moved into place twice (a bug)", self.path.display()))?;
        tmp.persist(&self.path).with_context(|| {
            format!(
                "{}: cannot move the finished file into place",
                self.path.display()
            )
        })?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        registry::remove(&self.tmp_path);
    }
}

/// Commits two files as a pair (an embedding's `.npy` and its `.tsv` index): both are
/// finished first (a full disk fails before either moves), the old `second` is removed, then
/// `first` and `second` are moved into place in that order. So `second` appears last, after
/// its partner is complete: a reader that finds `second` finds `first` of the same run beside
/// it (under an [`OutputLock`], no other run moves either in between).
pub fn commit_pair(first: AtomicFile, second: AtomicFile) -> Result<()> {
    let (first, second) = (first.finish()?, second.finish()?);
    match std::fs::remove_file(second.path()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!("{}: cannot replace the old file", second.path().display())
            })
        }
    }
    first.persist()?;
    second.persist()
}

/// An exclusive lock on an output prefix, held while a run writes it: `.NAME.lock` beside
/// the output, `flock`ed (released by the kernel however the process ends, SIGKILL included),
/// removed when the run is done. A second run at the same prefix fails at once with an error
/// instead of interleaving its files with the first run's.
pub struct OutputLock {
    path: PathBuf,
    _file: File,
}

impl OutputLock {
    pub fn acquire(output: &Path) -> Result<Self> {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::io::AsRawFd;
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = output.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let path = dir.join(format!(".{name}.lock"));
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("{}: cannot create the output lock", path.display()))?;
            // SAFETY: flock on a file descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    anyhow::bail!(
                        "{}: another run is writing this output now (it holds {}); wait for it, \
                         or write to another --output",
                        output.display(),
                        path.display()
                    );
                }
                return Err(e).with_context(|| format!("{}: cannot lock", path.display()));
            }
            // The previous holder may have removed the file between our open and our lock:
            // then the lock is on a file nobody else will open, so take the new one.
            let ours = file.metadata()?;
            match std::fs::metadata(&path) {
                Ok(now) if now.ino() == ours.ino() && now.dev() == ours.dev() => {
                    registry::add(&path);
                    return Ok(Self { path, _file: file });
                }
                _ => continue,
            }
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Removed while still held, so the next run's open-then-check sees a fresh file.
        let _ = std::fs::remove_file(&self.path);
        registry::remove(&self.path);
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_dead_writers_temporary_file_is_removed_and_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let h = host();
        // pid 1 lives; a pid past the kernel's limit (4194304) never did.
        let (live, dead) = (
            dir.path().join(format!(".out.npy.{h}.1.partial")),
            dir.path().join(format!(".out.npy.{h}.99999999.partial")),
        );
        let other_host = dir.path().join(".out.npy.elsewhere.99999999.partial");
        for p in [&live, &dead, &other_host] {
            File::create(p).unwrap();
        }
        let f = AtomicFile::create(&dir.path().join("out.npy")).unwrap();
        assert!(live.exists() && other_host.exists() && !dead.exists());
        f.commit().unwrap();
        assert!(dir.path().join("out.npy").exists());
    }

    #[test]
    fn a_pair_commits_its_second_file_last_and_a_lock_excludes_a_second_writer() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("emb");
        let lock = OutputLock::acquire(&prefix).unwrap();
        let e = OutputLock::acquire(&prefix).err().unwrap().to_string();
        assert!(e.contains("another run is writing this output now"), "{e}");
        let (a, b) = (dir.path().join("emb.npy"), dir.path().join("emb.tsv"));
        std::fs::write(&b, "old").unwrap();
        let (mut fa, mut fb) = (
            AtomicFile::create(&a).unwrap(),
            AtomicFile::create(&b).unwrap(),
        );
        fa.write_all(b"new npy").unwrap();
        fb.write_all(b"new tsv").unwrap();
        commit_pair(fa, fb).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new npy");
        assert_eq!(std::fs::read(&b).unwrap(), b"new tsv");
        drop(lock);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["emb.npy", "emb.tsv"],
            "no lock or temporary file left"
        );
        OutputLock::acquire(&prefix).unwrap();
    }

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
