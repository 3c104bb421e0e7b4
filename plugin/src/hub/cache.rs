//! The Hugging Face cache layout, shared with Python's `huggingface_hub`:
//!
//! ```text
//! $HF_HUB_CACHE/models--ORG--NAME/
//!     refs/REVISION            the commit a branch or tag pointed to when last fetched
//!     blobs/ETAG               file contents, named by ETag (sha256 for LFS files,
//!                              the git blob id for the others)
//!     snapshots/COMMIT/FILE    a relative symlink to ../../blobs/ETAG
//! $HF_HUB_CACHE/.locks/models--ORG--NAME/ETAG.lock
//! ```
//!
//! A blob is written as `blobs/ETAG.incomplete` and renamed when complete and checked, under
//! an exclusive `flock` on its lock file: the lock `huggingface_hub` takes (its `filelock` is
//! `flock` on Unix), so neither tool, nor two of our own tasks, write one blob at once.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub struct Repo {
    pub dir: PathBuf,
    locks: PathBuf,
}

/// Whether a revision is a full commit id.
pub fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Repo {
    pub fn new(cache: &Path, repo_id: &str) -> Self {
        let folder = format!("models--{}", repo_id.replace('/', "--"));
        Self {
            dir: cache.join(&folder),
            locks: cache.join(".locks").join(folder),
        }
    }

    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    /// The commit a revision names: itself if it is one, else what `refs/REVISION` says.
    pub fn resolve(&self, rev: &str) -> Option<String> {
        if is_commit(rev) {
            return Some(rev.to_owned());
        }
        let text = std::fs::read_to_string(self.dir.join("refs").join(rev)).ok()?;
        let commit = text.trim().to_owned();
        is_commit(&commit).then_some(commit)
    }

    pub fn write_ref(&self, rev: &str, commit: &str) -> Result<()> {
        if is_commit(rev) || self.resolve(rev).as_deref() == Some(commit) {
            return Ok(());
        }
        let path = self.dir.join("refs").join(rev);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        crate::io_util::write_atomic(&path, commit.as_bytes())
    }

    /// Points `snapshots/COMMIT/FILE` at `blobs/ETAG` with a relative symlink, replaced
    /// atomically if it pointed elsewhere.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> Result<PathBuf> {
        let pointer = self.snapshot(commit).join(file);
        let parent = pointer.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
        let depth = file.matches('/').count() + 2;
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        if std::fs::read_link(&pointer).ok().as_deref() == Some(target.as_path()) {
            return Ok(pointer);
        }
        let tmp = parent.join(format!(
            ".{}.{}.link",
            pointer
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file"),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, &tmp)
            .with_context(|| format!("{}: cannot create a symlink", tmp.display()))?;
        #[cfg(not(unix))]
        std::fs::copy(self.blob(etag), &tmp)
            .with_context(|| format!("{}: cannot copy", tmp.display()))?;
        std::fs::rename(&tmp, &pointer)
            .with_context(|| format!("{}: cannot move into place", pointer.display()))?;
        Ok(pointer)
    }

    /// Holds the blob's lock until dropped.
    pub fn lock(&self, etag: &str) -> Result<BlobLock> {
        std::fs::create_dir_all(&self.locks)
            .with_context(|| format!("{}: cannot create", self.locks.display()))?;
        let path = self.locks.join(format!("{etag}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a descriptor this function owns; blocks until the lock is free.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                bail!(
                    "{}: cannot lock: {}",
                    path.display(),
                    std::io::Error::last_os_error()
                );
            }
        }
        Ok(BlobLock { _file: file })
    }
}

/// An exclusive lock on one blob (released when the file closes).
pub struct BlobLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_huggingface_hub_s() {
        let cache = tempfile::tempdir().unwrap();
        let repo = Repo::new(cache.path(), "zhihan1996/DNA_bert_6");
        assert!(repo.dir.ends_with("models--zhihan1996--DNA_bert_6"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.blob("x").parent().unwrap()).unwrap();
        std::fs::write(repo.blob("e1"), b"{}").unwrap();
        std::fs::write(repo.blob("e2"), b"nested").unwrap();
        let p = repo.link(commit, "config.json", "e1").unwrap();
        assert_eq!(std::fs::read_link(&p).unwrap(), Path::new("../../blobs/e1"));
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let p = repo.link(commit, "onnx/model.onnx", "e2").unwrap();
        assert_eq!(
            std::fs::read_link(&p).unwrap(),
            Path::new("../../../blobs/e2")
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"nested");
        assert_eq!(repo.resolve("main"), None);
        repo.write_ref("main", commit).unwrap();
        assert_eq!(repo.resolve("main").as_deref(), Some(commit));
        assert_eq!(repo.resolve(commit).as_deref(), Some(commit));
        let _held = repo.lock("e1").unwrap();
    }
}
