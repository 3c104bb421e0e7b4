//! Genome and annotation inputs given as `https://` (or `http://`) URLs, as Ensembl, UCSC and
//! NCBI serve them, for the binary used alone (a workflow engine stages its own inputs).
//!
//! A URL is downloaded once into `$DNABERT_CACHE/inputs/` (default `~/.cache/dnabert`), into a
//! folder named for the URL, and read from there; a cut download resumes on the next run
//! (`FILE.incomplete`, as for the Hub). A later run asks the server whether the file changed
//! (its ETag, `Last-Modified` and size) and reuses the copy if not, or if the server cannot be
//! reached. `URL#sha256=HEX` (or `--sha256` where a stage has one input) checks the content.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use sha2::Digest;

use crate::net::{self, Client, Expect};

/// Whether an input names a URL rather than a file.
pub fn is_url(input: &Path) -> bool {
    let s = input.to_string_lossy();
    s.starts_with("https://") || s.starts_with("http://")
}

/// The local file for an input: the path itself, or a URL's cached download.
pub fn local(input: &Path) -> Result<PathBuf> {
    local_checked(input, None)
}

/// [`local`], with the content checked against `sha256` (hex) if given.
pub fn local_checked(input: &Path, sha256: Option<&str>) -> Result<PathBuf> {
    if !is_url(input) {
        if let Some(want) = sha256 {
            net::verify(
                input,
                &Expect {
                    sha256: Some(want.to_owned()),
                    ..Default::default()
                },
            )?;
        }
        return Ok(input.to_owned());
    }
    let text = input.to_string_lossy();
    let mut url = Url::parse(&text).with_context(|| format!("{text}: not a URL"))?;
    let from_fragment = url
        .fragment()
        .and_then(|f| f.strip_prefix("sha256="))
        .map(str::to_owned);
    url.set_fragment(None);
    let want = match (sha256, from_fragment.as_deref()) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            bail!("{text}: --sha256 and the URL's #sha256= differ")
        }
        (a, b) => a.or(b).map(str::to_owned),
    };
    if let Some(w) = &want {
        if w.len() != 64 || !w.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{text}: sha256 '{w}' is not 64 hex digits");
        }
    }
    fetch(&url, want, &cache_dir())
}

fn cache_dir() -> PathBuf {
    cache_root().join("inputs")
}

/// `$DNABERT_CACHE`, else `$XDG_CACHE_HOME/dnabert`, else `~/.cache/dnabert`.
pub fn cache_root() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("DNABERT_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("dnabert")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("dnabert")))
        .unwrap_or_else(|| PathBuf::from(".dnabert-cache"))
}

/// What the server said of the file when it was fetched: compared on later runs.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Default)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    size: Option<u64>,
}

impl Validators {
    fn of(h: &HeaderMap) -> Self {
        let g = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Self {
            etag: g("etag"),
            last_modified: g("last-modified"),
            size: g("content-length").and_then(|s| s.parse().ok()),
        }
    }

    fn known(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }
}

pub fn fetch(url: &Url, sha256: Option<String>, cache: &Path) -> Result<PathBuf> {
    let shown = net::safe_url(url);
    let key = net::hex(&sha2::Sha256::digest(url.as_str().as_bytes()));
    let name = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .unwrap_or("download")
        .to_owned();
    let dir = cache.join(&key[..16]);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let dest = dir.join(&name);
    let meta_path = dir.join(format!(".{name}.validators.json"));
    let client = Client::new(None, true)?;
    // What the server says of the file now. One that answers HEAD with an error other than
    // 404 is reachable but says nothing (the file is then fetched again).
    let head = client.request(Method::HEAD, url.as_str(), &HeaderMap::new(), true);
    let (reachable, now) = match head {
        Ok(r) => (Ok(()), Some(Validators::of(r.headers()))),
        Err(e) => match e.downcast_ref::<net::HttpStatus>() {
            Some(s) if s.status == reqwest::StatusCode::NOT_FOUND => {
                return Err(e.context(format!("{shown}: not found on the server")));
            }
            Some(_) => (Ok(()), None),
            None => (Err(e), None),
        },
    };
    let expect = Expect {
        size: now.as_ref().and_then(|v| v.size),
        sha256: sha256.clone(),
        git_sha1: None,
    };
    if dest.exists() {
        let before: Option<Validators> = std::fs::read_to_string(&meta_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let unchanged = match (&reachable, &now, &before) {
            // The server cannot be reached: the copy is what there is.
            (Err(_), _, _) => true,
            (Ok(()), Some(n), Some(b)) => n.known() && n == b,
            _ => false,
        };
        if unchanged {
            if let Some(want) = &sha256 {
                net::verify(
                    &dest,
                    &Expect {
                        sha256: Some(want.clone()),
                        ..Default::default()
                    },
                )?;
            }
            if reachable.is_err() {
                eprintln!(
                    "input: {shown} cannot be reached; using the copy in {}",
                    dest.display()
                );
            }
            return Ok(dest);
        }
        std::fs::remove_file(&dest)
            .with_context(|| format!("{}: cannot remove", dest.display()))?;
    }
    if let Err(e) = reachable {
        return Err(e.context(format!("{shown}: cannot fetch the input")));
    }
    // A partial download from an earlier run is resumed only if the file has not changed.
    let partial = net::incomplete(&dest);
    let before_partial: Option<Validators> = std::fs::read_to_string(&meta_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if partial.exists() && before_partial.as_ref() != now.as_ref() {
        let _ = std::fs::remove_file(&partial);
    }
    if let Some(n) = &now {
        crate::io_util::write_atomic(&meta_path, serde_json::to_string(n)?.as_bytes())?;
    }
    let t = client
        .download(url.as_str(), &dest, &expect, &shown)
        .with_context(|| format!("{shown}: cannot fetch the input"))?;
    eprintln!(
        "input: {shown}: {} in {:.1} s -> {}",
        net::human(t.bytes),
        t.seconds,
        dest.display()
    );
    if dest.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(anyhow!("{shown}: the server sent an empty file"));
    }
    Ok(dest)
}
