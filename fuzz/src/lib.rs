//! What every fuzz target shares: the parsers read paths, so each input is written to a file
//! (one per process, in a RAM-backed folder when there is one) and the parser opens it. A
//! parser may return any error; a panic, an abort or a sanitizer report is the finding.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The fuzz input as a file named `name`, rewritten for each input.
pub fn as_file(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // fuzz/run.sh names a scratch folder it removes afterwards; else a RAM-backed one.
        let base = if let Some(d) = std::env::var_os("DNABERT_FUZZ_SCRATCH") {
            PathBuf::from(d)
        } else if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("dnabert-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}
