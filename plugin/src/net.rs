//! HTTP for the Hugging Face Hub and remote inputs, through `reqwest`'s blocking client.
//!
//! - **The token** (a [`Secret`]) is attached by hand to requests for the endpoint's own
//!   origin and to nothing else. Redirects are followed here, not by `reqwest`, so a redirect
//!   to another host (the Hub sends large files to a CDN) never carries it; it is never
//!   printed, logged or put in an error.
//! - **Downloads** go to `DEST.incomplete` (the name `huggingface_hub` uses, so either tool
//!   resumes the other's), resume with a `Range` request after a cut connection (retrying a
//!   few times in the same run, or in the next run), are checked for size and hash (sha256,
//!   or git's blob sha1) before they are renamed into place, and show progress on stderr.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::Response;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, RANGE};
use reqwest::{Method, StatusCode, Url};
use sha1::Digest;

/// A token: its text never leaves this type except into an `Authorization` header.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(token: &str) -> Option<Self> {
        let t = token.trim();
        (!t.is_empty()).then(|| Self(t.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Scheme, host and port: where a token may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin(String, String, Option<u16>);

impl Origin {
    fn of(url: &Url) -> Self {
        Origin(
            url.scheme().to_owned(),
            url.host_str().unwrap_or("").to_ascii_lowercase(),
            url.port_or_known_default(),
        )
    }
}

/// An HTTP status that is not success, for the caller to explain.
#[derive(Debug)]
pub struct HttpStatus {
    pub status: StatusCode,
    pub url: String,
    /// The Hub's `X-Error-Code` / `X-Error-Message`, if it sent them.
    pub code: Option<String>,
    pub message: Option<String>,
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered {}", self.url, self.status)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpStatus {}

/// What a downloaded file must be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub size: Option<u64>,
    /// Hex sha256 of the content (a Hub LFS file's id).
    pub sha256: Option<String>,
    /// Hex sha1 of `blob SIZE\0` + content (a Hub git file's id).
    pub git_sha1: Option<String>,
}

/// A download's size and time, for the summary line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Transfer {
    pub bytes: u64,
    pub seconds: f64,
    /// Bytes that were already there from an earlier, interrupted attempt.
    pub resumed_from: u64,
}

pub struct Client {
    http: reqwest::blocking::Client,
    token: Option<(Secret, Origin)>,
    progress: bool,
}

const MAX_REDIRECTS: usize = 10;
const ATTEMPTS: usize = 5;

impl Client {
    /// A client that sends `token` (if any) to `origin`'s scheme, host and port only.
    pub fn new(token: Option<(Secret, &Url)>, progress: bool) -> Result<Self> {
        // reqwest is built without a default crypto provider: rustls with ring, installed
        // once for the process (an error means another part installed one first: fine).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("dnabert/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            // Per read, not per request: a large file may take as long as it takes.
            .timeout(Duration::from_secs(120))
            .build()
            .context("cannot start the HTTP client")?;
        Ok(Self {
            http,
            token: token.map(|(t, u)| (t, Origin::of(u))),
            progress,
        })
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// One request, redirects followed (if `follow`) with the token sent only to its origin.
    /// A non-success status comes back as an [`HttpStatus`] error.
    pub fn request(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        follow: bool,
    ) -> Result<Response> {
        let mut url = Url::parse(url).with_context(|| format!("{url}: not a URL"))?;
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some((token, origin)) = &self.token {
                if *origin == Origin::of(&url) {
                    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.0))
                        .map_err(|_| anyhow!("the token holds characters a header cannot"))?;
                    v.set_sensitive(true);
                    req = req.header(AUTHORIZATION, v);
                }
            }
            let resp = req
                .send()
                .map_err(|e| anyhow!("{}: {}", safe_url(&url), describe(&e)))?;
            let status = resp.status();
            if status.is_redirection() && follow {
                let to = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| anyhow!("{}: a redirect without Location", safe_url(&url)))?;
                url = url
                    .join(to)
                    .with_context(|| format!("{}: redirect to a bad URL", safe_url(&url)))?;
                continue;
            }
            if status.is_success() || status.is_redirection() {
                return Ok(resp);
            }
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            return Err(HttpStatus {
                status,
                url: safe_url(&url),
                code: header("x-error-code"),
                message: header("x-error-message"),
            }
            .into());
        }
        bail!("{}: more than {MAX_REDIRECTS} redirects", safe_url(&url))
    }

    pub fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<(T, HeaderMap)> {
        let resp = self.request(Method::GET, url, &HeaderMap::new(), true)?;
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .with_context(|| format!("{url}: reading the answer"))?;
        let value =
            serde_json::from_str(&text).with_context(|| format!("{url}: not the JSON expected"))?;
        Ok((value, headers))
    }

    /// Downloads `url` to `dest`: into `dest.incomplete` first (resumed if an earlier attempt
    /// left one), checked against `expect`, then renamed. `label` names it in progress lines.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expect: &Expect,
        label: &str,
    ) -> Result<Transfer> {
        let partial = incomplete(dest);
        let started = Instant::now();
        let resumed_from = match self.fetch_checked(url, &partial, expect, label) {
            Ok(from) => from,
            // Resumed from an earlier attempt's bytes and wrong: those bytes were the fault
            // (the file changed on the server since). Once more from nothing.
            Err((e, from)) if from > 0 => {
                if self.progress {
                    eprintln!("download: {label}: {e:#}; fetching it from the start");
                }
                self.fetch_checked(url, &partial, expect, label)
                    .map_err(|(e, _)| e)?;
                from
            }
            Err((e, _)) => return Err(e),
        };
        std::fs::rename(&partial, dest).with_context(|| {
            format!(
                "{}: cannot move the finished download into place",
                dest.display()
            )
        })?;
        let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        Ok(Transfer {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            resumed_from,
        })
    }

    /// Attempts (resuming) until `partial` is complete, then checks it; a file that fails the
    /// check is removed. The error comes with the bytes the first attempt resumed from.
    fn fetch_checked(
        &self,
        url: &str,
        partial: &Path,
        expect: &Expect,
        label: &str,
    ) -> std::result::Result<u64, (anyhow::Error, u64)> {
        let mut resumed_from = None;
        let mut last_err = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
            }
            match self.fetch_into(url, partial, expect, label) {
                Ok(from) => {
                    resumed_from.get_or_insert(from);
                    last_err = None;
                    break;
                }
                Err(Fetch::Retry(e, from)) => {
                    resumed_from.get_or_insert(from);
                    if self.progress {
                        eprintln!("download: {label}: {e:#}; resuming");
                    }
                    last_err = Some(e);
                }
                // A fatal error keeps the partial file: the next run may resume from it.
                Err(Fetch::Fatal(e)) => return Err((e, 0)),
            }
        }
        let from = resumed_from.unwrap_or(0);
        if let Some(e) = last_err {
            return Err((
                e.context(format!(
                    "{label}: download interrupted {ATTEMPTS} times; {} keeps what arrived, and the next run resumes from it",
                    partial.display()
                )),
                0,
            ));
        }
        if let Err(e) = verify(partial, expect) {
            // Not what the server promised: the partial file cannot be trusted to resume.
            let _ = std::fs::remove_file(partial);
            return Err((
                e.context(format!(
                    "{label}: downloaded file removed; run again to fetch it anew"
                )),
                from,
            ));
        }
        Ok(from)
    }

    /// One attempt: appends what the server sends after the bytes already in `partial`.
    /// Returns how many bytes were there before.
    fn fetch_into(
        &self,
        url: &str,
        partial: &Path,
        expect: &Expect,
        label: &str,
    ) -> Result<u64, Fetch> {
        let mut have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if expect.size.is_some_and(|s| have > s) {
            have = 0; // longer than the file can be: start again
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        if have > 0 {
            headers.insert(
                RANGE,
                HeaderValue::from_str(&format!("bytes={have}-"))
                    .map_err(|e| Fetch::Fatal(e.into()))?,
            );
        }
        let resp = match self.request(Method::GET, url, &headers, true) {
            Ok(r) => r,
            Err(e) => match e.downcast_ref::<HttpStatus>() {
                Some(s) if s.status == StatusCode::RANGE_NOT_SATISFIABLE => {
                    // Everything is already here (an earlier run stopped before the rename).
                    return Ok(have);
                }
                Some(s) if s.status.is_server_error() => return Err(Fetch::Retry(e, have)),
                Some(_) => return Err(Fetch::Fatal(e)),
                None => return Err(Fetch::Retry(e, have)),
            },
        };
        let partial_content = resp.status() == StatusCode::PARTIAL_CONTENT;
        let range_start = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        if partial_content && (have == 0 || range_start != Some(have)) {
            return Err(Fetch::Fatal(anyhow!(
                "{label}: the server sent a range that was not asked for ({range_start:?}, asked {have})"
            )));
        }
        let append = have > 0 && partial_content;
        let start = if append { have } else { 0 };
        let total = resp.content_length().map(|n| n + start).or(expect.size);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(partial)
            .and_then(|mut f| {
                f.set_len(start)?;
                f.seek(SeekFrom::Start(start))?;
                Ok(f)
            })
            .with_context(|| format!("{}: cannot write", partial.display()))
            .map_err(Fetch::Fatal)?;
        let mut progress = Progress::new(self.progress, label, total, start);
        let mut resp = resp;
        let mut buf = vec![0u8; 1 << 16];
        let mut at = start;
        loop {
            let n = match resp.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    file.flush().ok();
                    return Err(Fetch::Retry(
                        anyhow!("connection lost after {at} bytes: {e}"),
                        start,
                    ));
                }
            };
            file.write_all(&buf[..n])
                .with_context(|| format!("{}: write failed (disk full?)", partial.display()))
                .map_err(Fetch::Fatal)?;
            at += n as u64;
            progress.update(at);
        }
        file.sync_all()
            .with_context(|| format!("{}: sync failed (disk full?)", partial.display()))
            .map_err(Fetch::Fatal)?;
        progress.finish();
        if let Some(t) = total {
            if at < t {
                return Err(Fetch::Retry(
                    anyhow!("connection closed after {at} of {t} bytes"),
                    start,
                ));
            }
        }
        Ok(start)
    }
}

enum Fetch {
    /// Worth another attempt (resuming): a cut connection, a server error.
    Retry(anyhow::Error, u64),
    Fatal(anyhow::Error),
}

/// Where a download in progress lies: `dest.incomplete`.
pub fn incomplete(dest: &Path) -> PathBuf {
    let mut s = dest.as_os_str().to_owned();
    s.push(".incomplete");
    PathBuf::from(s)
}

/// Checks a file against what it must be; the error says what differed.
pub fn verify(path: &Path, expect: &Expect) -> Result<()> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    if let Some(want) = expect.size {
        if size != want {
            bail!("{}: {size} bytes, expected {want}", path.display());
        }
    }
    if expect.sha256.is_none() && expect.git_sha1.is_none() {
        return Ok(());
    }
    let mut sha256 = sha2::Sha256::new();
    let mut git = sha1::Sha1::new();
    git.update(format!("blob {size}\0").as_bytes());
    crate::io_util::for_each_chunk(path, |chunk| {
        if expect.sha256.is_some() {
            sha256.update(chunk);
        }
        if expect.git_sha1.is_some() {
            git.update(chunk);
        }
    })?;
    if let Some(want) = &expect.sha256 {
        let got = hex(&sha256.finalize());
        if !got.eq_ignore_ascii_case(want) {
            bail!(
                "{}: sha256 {got}, expected {want} (corrupt or changed)",
                path.display()
            );
        }
    }
    if let Some(want) = &expect.git_sha1 {
        let got = hex(&git.finalize());
        if !got.eq_ignore_ascii_case(want) {
            bail!(
                "{}: git blob id {got}, expected {want} (corrupt or changed)",
                path.display()
            );
        }
    }
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A URL as it may appear in messages: without credentials or a query string.
pub fn safe_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A transport error in a few words (reqwest's own message repeats the URL).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_connect() {
        "cannot connect".to_string()
    } else if e.is_timeout() {
        "timed out".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

/// Progress on stderr: a bar on a terminal, a line every ten seconds in a log.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    log: bool,
    label: String,
    total: Option<u64>,
    last: Instant,
    started: Instant,
    start: u64,
}

impl Progress {
    fn new(on: bool, label: &str, total: Option<u64>, start: u64) -> Self {
        use std::io::IsTerminal;
        let tty = on && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style);
            }
            b.set_message(label.to_owned());
            b.set_position(start);
            b
        });
        if on && !tty {
            match total {
                Some(t) => eprintln!("download: {label} ({})", human(t)),
                None => eprintln!("download: {label}"),
            }
        }
        Self {
            bar,
            log: on && !tty,
            label: label.to_owned(),
            total,
            last: Instant::now(),
            started: Instant::now(),
            start,
        }
    }

    fn update(&mut self, at: u64) {
        if let Some(b) = &self.bar {
            b.set_position(at);
        } else if self.log && self.last.elapsed() >= Duration::from_secs(10) {
            self.last = Instant::now();
            let rate = (at - self.start) as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            match self.total {
                Some(t) => eprintln!(
                    "download: {} {} of {} ({}/s)",
                    self.label,
                    human(at),
                    human(t),
                    human(rate as u64)
                ),
                None => eprintln!(
                    "download: {} {} ({}/s)",
                    self.label,
                    human(at),
                    human(rate as u64)
                ),
            }
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Bytes as people read them.
pub fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new(" hf_abcdef\n").unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(Secret::new("  ").is_none());
    }

    #[test]
    fn the_token_s_origin_is_scheme_host_and_port() {
        let o = |u: &str| Origin::of(&Url::parse(u).unwrap());
        assert_eq!(
            o("https://huggingface.co/api"),
            o("https://HuggingFace.co:443/x")
        );
        assert_ne!(
            o("https://huggingface.co/"),
            o("https://cdn-lfs.huggingface.co/")
        );
        assert_ne!(o("http://127.0.0.1:8000/"), o("http://localhost:8000/"));
        assert_ne!(o("http://127.0.0.1:8000/"), o("http://127.0.0.1:8001/"));
        assert_ne!(o("https://hub.example/"), o("http://hub.example/"));
    }

    #[test]
    fn verify_checks_size_sha256_and_git_blob_ids() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello\n").unwrap();
        // `printf 'hello\n' | sha256sum`; `printf 'hello\n' | git hash-object --stdin`
        let sha256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let git = "ce013625030ba8dba906f756967f9e9ca394464a";
        let ok = Expect {
            size: Some(6),
            sha256: Some(sha256.into()),
            git_sha1: Some(git.into()),
        };
        verify(&p, &ok).unwrap();
        for bad in [
            Expect {
                size: Some(7),
                ..ok.clone()
            },
            Expect {
                sha256: Some(git.into()),
                ..ok.clone()
            },
            Expect {
                git_sha1: Some(sha256[..40].into()),
                ..ok.clone()
            },
        ] {
            assert!(verify(&p, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_in_messages_carry_no_credentials_or_query() {
        let u = Url::parse("https://user:pw@host/a/b?token=x#frag").unwrap();
        assert_eq!(safe_url(&u), "https://host/a/b");
    }
}
