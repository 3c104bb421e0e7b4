//! A stand-in for the Hugging Face Hub on 127.0.0.1: `tests/hub_standin.py` (Python's standard
//! library only; checked by hand against `huggingface_hub`), started per test and killed when
//! dropped. Repositories are folders of files; `org/private` needs [`TOKEN`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "hf_standin_secret_4f2a9c";

/// Says why a test is skipped, or fails it where skipping is not allowed (CI).
pub fn skip(why: &str) {
    let required = std::env::var("DNABERT_REQUIRE_ENGINES").is_ok_and(|v| v == "1");
    assert!(!required, "{why} (DNABERT_REQUIRE_ENGINES=1)");
    eprintln!("SKIPPED: {why}");
}

/// The stand-in Hub, serving `repos/ORG/NAME/…`, killed when dropped.
pub struct StandIn {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    /// The repositories served live here.
    _dir: tempfile::TempDir,
}

impl StandIn {
    /// Repositories as (id, files to copy into it); `org/private` needs the token.
    pub fn start(repos: &[(&str, Vec<PathBuf>)], extra: &[&str]) -> Option<Self> {
        if Command::new("python3").arg("--version").output().is_err() {
            skip("python3 is needed for the Hub stand-in");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for (id, files) in repos {
            let d = dir.path().join("repos").join(id);
            std::fs::create_dir_all(&d).unwrap();
            for f in files {
                std::fs::copy(f, d.join(f.file_name().unwrap())).unwrap();
            }
        }
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/hub_standin.py"))
            .arg("--repos")
            .arg(dir.path().join("repos"))
            .args(["--private", "org/private", "--token", TOKEN, "--log"])
            .arg(&log)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        Some(Self {
            child,
            port,
            log,
            _dir: dir,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests so far: (method, path, host, had Authorization, Range).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
