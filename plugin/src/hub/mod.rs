//! Models from the Hugging Face Hub: `ORG/NAME[@REVISION]` to a local folder, through the
//! cache that Python's `huggingface_hub` uses (so either fills it for the other), with the
//! environment variables it reads: `HF_ENDPOINT`, `HF_HOME`, `HF_HUB_CACHE`, `HF_TOKEN` (else
//! the token file `huggingface-cli login` writes), `HF_HUB_OFFLINE`.
//!
//! The protocol is the Hub's: `GET /api/models/ORG/NAME/revision/REV` gives the commit and
//! its files, `GET /api/models/ORG/NAME/tree/COMMIT?recursive=true` their sizes and ids (the
//! sha256 of LFS files), and `HEAD /ORG/NAME/resolve/COMMIT/FILE` each file's ETag, answered
//! for LFS files by a redirect to a CDN (`X-Linked-Etag`, `X-Linked-Size`). Only the files a
//! DNABERT model needs are fetched: `config.json`, `vocab.txt`, the tokenizer files, the model
//! card, the weights (safetensors preferred, as `transformers` does; every shard of an index)
//! and a `model.onnx` if the repository has one.

mod cache;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

pub use cache::is_commit;
use cache::Repo;

use crate::net::{self, Client, Expect, HttpStatus, Secret};

pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A model on the Hub: `ORG/NAME`, at a revision (a branch, tag or commit; `main` if none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub repo_id: String,
    pub revision: String,
}

/// Whether `s` is a Hub repository id, `ORG/NAME`, by `huggingface_hub`'s rules.
pub fn is_repo_id(s: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && !part.starts_with(['-', '.'])
            && !part.ends_with(['-', '.'])
    };
    match s.split_once('/') {
        Some((org, name)) => ok(org) && ok(name) && !s.contains("--") && !s.contains(".."),
        None => false,
    }
}

impl ModelRef {
    /// `ORG/NAME` or `ORG/NAME@REVISION`; `None` for anything else (a path).
    pub fn parse(s: &str) -> Option<Self> {
        let (repo, rev) = match s.split_once('@') {
            Some((r, v)) => (r, v),
            None => (s, "main"),
        };
        let rev_ok = !rev.is_empty() && !rev.contains(char::is_whitespace) && !rev.contains("..");
        (is_repo_id(repo) && rev_ok).then(|| Self {
            repo_id: repo.to_owned(),
            revision: rev.to_owned(),
        })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.repo_id, self.revision)
    }
}

/// The Hub as the environment describes it.
pub struct Hub {
    pub endpoint: Url,
    pub cache: PathBuf,
    token: Option<Secret>,
    pub offline: bool,
    pub progress: bool,
}

#[derive(Deserialize)]
struct RevisionInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

#[derive(Deserialize, Clone)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Deserialize, Clone)]
struct Lfs {
    oid: String,
    size: u64,
}

/// What a snapshot run fetched.
#[derive(Debug, Default)]
pub struct Fetched {
    pub files: usize,
    pub downloaded: usize,
    pub bytes: u64,
    pub seconds: f64,
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

impl Hub {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// As `huggingface_hub` reads its configuration (`constants.py`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let endpoint = var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let endpoint = Url::parse(endpoint.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
            .with_context(|| format!("HF_ENDPOINT '{endpoint}' is not an http(s) URL"))?;
        let home = match var("HF_HOME") {
            Some(h) => PathBuf::from(h),
            None => {
                let xdg = var("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                    .unwrap_or_else(|| PathBuf::from(".cache"));
                xdg.join("huggingface")
            }
        };
        let cache = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("hub"));
        let token = match var("HF_TOKEN") {
            Some(t) => Secret::new(&t),
            None => {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| home.join("token"));
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| Secret::new(&t))
            }
        };
        Ok(Self {
            endpoint,
            cache,
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            progress: true,
        })
    }

    fn client(&self) -> Result<Client> {
        Client::new(
            self.token.clone().map(|t| (t, &self.endpoint)),
            self.progress,
        )
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.endpoint.clone();
        // Always Ok: the endpoint is checked to be an http(s) URL when it is read.
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty();
            // One segment each (a revision's slashes are escaped); callers split repository
            // ids and file paths into theirs.
            p.extend(segments);
        }
        u
    }

    fn repo_segments(repo_id: &str) -> Vec<&str> {
        repo_id.split('/').collect()
    }

    /// The local folder of a model: its snapshot in the cache, fetched first unless offline.
    pub fn snapshot(&self, r: &ModelRef) -> Result<PathBuf> {
        self.fetch(r).map(|(dir, _)| dir)
    }

    /// [`Self::snapshot`], with what was fetched.
    pub fn fetch(&self, r: &ModelRef) -> Result<(PathBuf, Fetched)> {
        let repo = Repo::new(&self.cache, &r.repo_id);
        if self.offline {
            return self.cached(&repo, r).map(|d| (d, Fetched::default()));
        }
        let client = self.client()?;
        let mut segments = vec!["api", "models"];
        segments.extend(Self::repo_segments(&r.repo_id));
        segments.extend(["revision", r.revision.as_str()]);
        let info_url = self.url(&segments);
        let (info, _): (RevisionInfo, _) = match client.get_json(info_url.as_str()) {
            Ok(x) => x,
            Err(e) => {
                if e.downcast_ref::<HttpStatus>().is_none() {
                    // The Hub is unreachable: use the cache, as huggingface_hub does.
                    if let Ok(dir) = self.cached(&repo, r) {
                        eprintln!(
                            "download: the Hub cannot be reached ({e:#}); using the cached snapshot of {r}"
                        );
                        return Ok((dir, Fetched::default()));
                    }
                }
                return Err(self.explain(e, r));
            }
        };
        if !is_commit(&info.sha) {
            bail!(
                "{}: the Hub gave '{}' as the commit of {r}",
                self.endpoint,
                info.sha
            );
        }
        let commit = info.sha;
        let tree = self.tree(&client, &r.repo_id, &commit)?;
        let listed: Vec<String> = if info.siblings.is_empty() {
            tree.iter()
                .filter(|t| t.kind == "file")
                .map(|t| t.path.clone())
                .collect()
        } else {
            info.siblings.into_iter().map(|s| s.rfilename).collect()
        };
        let mut wanted =
            wanted_files(&listed).with_context(|| format!("{r}: not a DNABERT model folder"))?;
        let started = Instant::now();
        let mut fetched = Fetched::default();
        let mut i = 0;
        while i < wanted.len() {
            let file = wanted[i].clone();
            let entry = tree.iter().find(|t| t.path == file);
            let got = self
                .fetch_file(&client, &repo, &r.repo_id, &commit, &file, entry)
                .with_context(|| format!("{r}: {file}"))?;
            fetched.files += 1;
            if let Some(t) = got {
                fetched.downloaded += 1;
                fetched.bytes += t.bytes - t.resumed_from;
            }
            if file.ends_with(".index.json") {
                let index = repo.snapshot(&commit).join(&file);
                let idx = crate::checkpoint::ShardIndex::read(&index)?;
                for shard in idx.shards() {
                    if !wanted.iter().any(|w| w == shard) {
                        wanted.push(shard.to_owned());
                    }
                }
            }
            i += 1;
        }
        fetched.seconds = started.elapsed().as_secs_f64();
        repo.write_ref(&r.revision, &commit)?;
        if self.progress && fetched.downloaded > 0 {
            eprintln!(
                "download: {}@{}: {} of {} files fetched, {} in {:.1} s ({}/s)",
                r.repo_id,
                &commit[..7],
                fetched.downloaded,
                fetched.files,
                net::human(fetched.bytes),
                fetched.seconds,
                net::human((fetched.bytes as f64 / fetched.seconds.max(1e-9)) as u64)
            );
        }
        Ok((repo.snapshot(&commit), fetched))
    }

    /// The snapshot of a revision already in the cache.
    fn cached(&self, repo: &Repo, r: &ModelRef) -> Result<PathBuf> {
        let why = if self.offline {
            "HF_HUB_OFFLINE is set"
        } else {
            "the Hub cannot be reached"
        };
        let commit = repo.resolve(&r.revision).ok_or_else(|| {
            anyhow!(
                "{r} is not in the Hub cache ({}) and {why}; fetch it first where there is network: dnabert download {}",
                self.cache.display(),
                r.repo_id
            )
        })?;
        let dir = repo.snapshot(&commit);
        if !dir.join("config.json").exists() {
            bail!(
                "{r}: the cache ({}) has commit {commit} but not its files, and {why}",
                self.cache.display()
            );
        }
        Ok(dir)
    }

    fn tree(&self, client: &Client, repo_id: &str, commit: &str) -> Result<Vec<TreeEntry>> {
        let mut segments = vec!["api", "models"];
        segments.extend(Self::repo_segments(repo_id));
        segments.extend(["tree", commit]);
        let mut url = self.url(&segments);
        url.set_query(Some("recursive=true&expand=false"));
        let mut all = vec![];
        let mut next = Some(url.to_string());
        while let Some(u) = next.take() {
            let (page, headers): (Vec<TreeEntry>, HeaderMap) = client.get_json(&u)?;
            all.extend(page);
            // More than one page: the Hub links the next with `Link: <URL>; rel="next"`.
            next = headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(|l| {
                    l.split(',')
                        .find(|p| p.contains("rel=\"next\""))
                        .and_then(|p| p.split(['<', '>']).nth(1))
                        .map(str::to_owned)
                });
        }
        Ok(all)
    }

    /// Makes `snapshots/COMMIT/FILE` point at a complete, checked blob. Returns the transfer
    /// if anything was downloaded.
    fn fetch_file(
        &self,
        client: &Client,
        repo: &Repo,
        repo_id: &str,
        commit: &str,
        file: &str,
        entry: Option<&TreeEntry>,
    ) -> Result<Option<net::Transfer>> {
        let mut expect = Expect {
            size: entry.and_then(|e| e.lfs.as_ref().map(|l| l.size).or(e.size)),
            sha256: entry.and_then(|e| e.lfs.as_ref().map(|l| l.oid.clone())),
            git_sha1: entry
                .filter(|e| e.lfs.is_none())
                .and_then(|e| e.oid.clone()),
        };
        // Already here and sound: nothing to ask the Hub.
        let pointer = repo.snapshot(commit).join(file);
        if (expect.sha256.is_some() || expect.git_sha1.is_some())
            && pointer.exists()
            && net::verify(&pointer, &expect).is_ok()
        {
            return Ok(None);
        }
        let mut segments = Self::repo_segments(repo_id);
        segments.extend(["resolve", commit]);
        segments.extend(file.split('/'));
        let mut resolve = self.url(&segments);
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("identity"),
        );
        // A renamed repository answers with a relative redirect to its new name (followed, as
        // huggingface_hub does); an LFS file with an absolute one to the CDN (kept: it is
        // where the content is).
        let mut head = client.request(Method::HEAD, resolve.as_str(), &headers, false)?;
        for _ in 0..5 {
            let relative = head
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .filter(|l| l.starts_with('/'))
                .map(str::to_owned);
            match relative {
                Some(to)
                    if head.status().is_redirection()
                        && head.headers().get("x-linked-etag").is_none() =>
                {
                    resolve = resolve.join(&to)?;
                    head = client.request(Method::HEAD, resolve.as_str(), &headers, false)?;
                }
                _ => break,
            }
        }
        let h = |n: &str| {
            head.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = h("x-linked-etag")
            .or_else(|| h("etag"))
            .map(|e| e.trim_start_matches("W/").trim_matches('"').to_owned())
            .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .ok_or_else(|| anyhow!("the Hub sent no usable ETag for {file}"))?;
        let lfs = h("x-linked-etag").is_some();
        if let Some(size) = h("x-linked-size")
            .or_else(|| h("content-length").filter(|_| head.status() == StatusCode::OK))
            .and_then(|s| s.parse().ok())
        {
            expect.size.get_or_insert(size);
        }
        // An LFS file's ETag is its sha256, a git file's its blob id: checkable either way.
        if lfs && etag.len() == 64 {
            expect.sha256.get_or_insert_with(|| etag.clone());
        } else if !lfs && etag.len() == 40 {
            expect.git_sha1.get_or_insert_with(|| etag.clone());
        }
        let location = if head.status().is_redirection() {
            let to = h("location").ok_or_else(|| anyhow!("a redirect without Location"))?;
            resolve.join(&to)?.to_string()
        } else {
            resolve.to_string()
        };
        drop(head);

        let blob = repo.blob(&etag);
        std::fs::create_dir_all(blob.parent().unwrap_or(&repo.dir))
            .with_context(|| format!("{}: cannot create", repo.dir.display()))?;
        let _lock = repo.lock(&etag)?;
        let mut transfer = None;
        if blob.exists() {
            if let Err(e) = net::verify(&blob, &expect) {
                eprintln!("download: {e:#}; fetching it again");
                std::fs::remove_file(&blob)
                    .with_context(|| format!("{}: cannot remove", blob.display()))?;
            }
        }
        if !blob.exists() {
            let label = format!("{repo_id} {file}");
            transfer = Some(client.download(&location, &blob, &expect, &label)?);
        }
        repo.link(commit, file, &etag)?;
        Ok(transfer)
    }

    /// A Hub answer explained: what to do about a 401, 403 or 404.
    fn explain(&self, e: anyhow::Error, r: &ModelRef) -> anyhow::Error {
        let Some(s) = e.downcast_ref::<HttpStatus>() else {
            return e.context(format!("{r}: cannot reach the Hub at {}", self.endpoint));
        };
        let has_token = self.token.is_some();
        let msg = match (s.status.as_u16(), s.code.as_deref()) {
            (401, _) if !has_token => format!(
                "{r}: the Hub answered 401: the repository is private or gated, or does not exist; a token is needed: set HF_TOKEN (or run `huggingface-cli login`)"
            ),
            (401, _) => format!(
                "{r}: the Hub answered 401: the token is not valid, or gives no access to {}",
                r.repo_id
            ),
            (403, _) => format!(
                "{r}: the Hub answered 403: the repository is gated; accept its conditions on its page with the account of the token{}",
                if has_token { "" } else { ", and set HF_TOKEN" }
            ),
            (404, Some("RevisionNotFound")) => format!("{r}: no revision '{}' on the Hub", r.revision),
            (404, _) => format!("{r}: the Hub has no model {} (or it is private: set HF_TOKEN)", r.repo_id),
            _ => return e.context(format!("{r}")),
        };
        anyhow!(msg)
    }
}

/// The files of a repository that a DNABERT model folder needs, weights last.
fn wanted_files(listed: &[String]) -> Result<Vec<String>> {
    let has = |f: &str| listed.iter().any(|l| l == f);
    for required in ["config.json", "vocab.txt"] {
        if !has(required) {
            bail!("the repository has no {required}");
        }
    }
    let mut files: Vec<String> = [
        "config.json",
        "vocab.txt",
        crate::folder::TOKENIZER_CONFIG,
        crate::folder::SPECIAL_TOKENS_MAP,
        crate::folder::CARD,
        "model.onnx",
    ]
    .iter()
    .filter(|f| has(f))
    .map(|f| f.to_string())
    .collect();
    let weights = crate::checkpoint::WEIGHT_FILES
        .iter()
        .find(|f| has(f))
        .ok_or_else(|| {
            anyhow!(
                "the repository has no weights ({})",
                crate::checkpoint::WEIGHT_FILES.join(", ")
            )
        })?;
    files.push(weights.to_string());
    Ok(files)
}

/// `dnabert download`'s flags.
#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// ORG/NAME, or ORG/NAME@REVISION (a branch, tag or commit; default main).
    pub model: String,
    /// Also copy the files into this plain folder (no links into the cache), for a pipeline
    /// to stage or a node without the cache.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl DownloadArgs {
    /// Prints the local folder.
    pub fn run(self) -> Result<()> {
        let dir = download(&self.model, self.output.as_deref())?;
        crate::cli::say(dir.display())
    }
}

/// `dnabert download`: fetches a model into the cache and, with `output`, copies it into a
/// plain folder (the files themselves, no links), for a compute node without network or for
/// a pipeline to stage.
pub fn download(model: &str, output: Option<&Path>) -> Result<PathBuf> {
    let r = ModelRef::parse(model)
        .ok_or_else(|| anyhow!("'{model}' is not a Hub id (ORG/NAME or ORG/NAME@REVISION)"))?;
    let hub = Hub::from_env()?;
    let (dir, _) = hub.fetch(&r)?;
    let Some(out) = output else {
        return Ok(dir);
    };
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    for entry in
        std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        let from = entry.path();
        if from.is_file() {
            let bytes =
                std::fs::read(&from).with_context(|| format!("{}: cannot read", from.display()))?;
            crate::io_util::write_atomic(&out.join(&name), &bytes)?;
        }
    }
    Ok(out.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_ids_parse_and_paths_do_not() {
        let r = ModelRef::parse("zhihan1996/DNA_bert_6").unwrap();
        assert_eq!(
            (r.repo_id.as_str(), r.revision.as_str()),
            ("zhihan1996/DNA_bert_6", "main")
        );
        let r = ModelRef::parse("org/name@v1.0").unwrap();
        assert_eq!(r.revision, "v1.0");
        let r = ModelRef::parse("org/name@refs/pr/3").unwrap();
        assert_eq!(r.revision, "refs/pr/3");
        for path in [
            "models/dnabert6-chrx-4x256/extra",
            "./org/name",
            "/abs/path",
            "name",
            "org/na me",
            "org/name@",
            "org/-name",
            "org--x/name",
            "../x",
            "org/name@../../etc",
        ] {
            assert_eq!(ModelRef::parse(path), None, "{path}");
        }
    }

    #[test]
    fn the_environment_is_read_as_huggingface_hub_reads_it() {
        let vars = |pairs: &'static [(&str, &str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let h = Hub::from_vars(vars(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(h.endpoint.as_str(), "https://huggingface.co/");
        assert_eq!(h.cache, Path::new("/home/u/.cache/huggingface/hub"));
        assert!(!h.offline && h.token.is_none());
        let h = Hub::from_vars(vars(&[
            ("HF_HOME", "/data/hf"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "yes"),
            ("HF_TOKEN", "hf_x"),
        ]))
        .unwrap();
        assert_eq!(h.cache, Path::new("/data/hf/hub"));
        assert_eq!(h.endpoint.as_str(), "http://127.0.0.1:9/");
        assert!(h.offline && h.token.is_some());
        let h = Hub::from_vars(vars(&[
            ("HF_HOME", "/data/hf"),
            ("HF_HUB_CACHE", "/fast/hub"),
        ]))
        .unwrap();
        assert_eq!(h.cache, Path::new("/fast/hub"));
        let u = h.url(&["api", "models"]);
        assert_eq!(u.as_str(), "https://huggingface.co/api/models");
    }

    #[test]
    fn only_what_a_model_needs_is_fetched_safetensors_first() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let files = wanted_files(&l(&[
            "config.json",
            "vocab.txt",
            "pytorch_model.bin",
            "model.safetensors",
            "tf_model.h5",
            "README.md",
        ]))
        .unwrap();
        assert_eq!(
            files,
            l(&["config.json", "vocab.txt", "README.md", "model.safetensors"])
        );
        assert!(wanted_files(&l(&["config.json", "vocab.txt"])).is_err());
        assert!(wanted_files(&l(&["config.json", "model.safetensors"])).is_err());
    }
}
