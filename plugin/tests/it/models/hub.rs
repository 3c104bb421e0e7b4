//! Models by Hub id through a stand-in for the Hugging Face Hub on 127.0.0.1
//! (`tests/hub_standin.py`, checked by hand against Python's `huggingface_hub`; where that
//! client is installed — `DNABERT_HF_PYTHON`, set by tests/engines/install.sh — the tests run it
//! too, both ways through one cache).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

use crate::common::standin::{skip, StandIn, TOKEN};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let d = fixtures().join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// `dnabert ARGS` with the Hub environment of `home`; returns the output (never asserting).
fn dnabert_with(env: &[(&str, &str)], home: &Path, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnabert"));
    cmd.args(args).env("HF_HOME", home);
    for v in ["HF_TOKEN", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_ENDPOINT"] {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let o = cmd.output().unwrap();
    for stream in [&o.stdout, &o.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(TOKEN),
            "the token was printed: {args:?}"
        );
    }
    o
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn embed_args<'a>(model: &'a str, out: &'a Path) -> Vec<String> {
    vec![
        "embed".into(),
        "--quiet".into(),
        "--model".into(),
        model.into(),
        "--input".into(),
        fixtures().join("seqs.fa").to_string_lossy().into(),
        "--output".into(),
        out.to_string_lossy().into(),
    ]
}

fn run_embed_cli(env: &[(&str, &str)], home: &Path, model: &str, out: &Path) -> Output {
    let args = embed_args(model, out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    dnabert_with(env, home, &args, None)
}

/// The `.npy` of a local run of the same model, to compare Hub runs with.
fn local_npy(model: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("local");
    let o = run_embed_cli(
        &[],
        dir.path(),
        fixtures().join(model).to_str().unwrap(),
        &out,
    );
    ok(&o);
    std::fs::read(out.with_extension("npy")).unwrap()
}

#[test]
fn a_hub_id_downloads_embeds_and_then_works_offline_from_the_cache() {
    let Some(hub) = StandIn::start(&[("org/tiny-k6-bin", files("tiny-k6-bin"))], &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    let out = home.path().join("hub-run");
    ok(&run_embed_cli(&env, home.path(), "org/tiny-k6-bin", &out));
    let want = local_npy("tiny-k6-bin");
    assert!(
        std::fs::read(out.with_extension("npy")).unwrap() == want,
        "Hub run differs from the local folder"
    );
    let repo = home.path().join("hub/models--org--tiny-k6-bin");
    let commit = std::fs::read_to_string(repo.join("refs/main")).unwrap();
    assert_eq!(commit.len(), 40);
    let link = std::fs::read_link(
        repo.join("snapshots")
            .join(&commit)
            .join("pytorch_model.bin"),
    )
    .unwrap();
    assert!(link.starts_with("../../blobs"), "{link:?}");
    let lfs = hub
        .requests()
        .into_iter()
        .filter(|r| r["host"].as_str().unwrap().starts_with("localhost"))
        .count();
    assert_eq!(lfs, 1, "the LFS file came from the CDN host");

    // Offline, and the Hub gone: the cache serves, with no request made.
    let before = hub.requests().len();
    let offline = [("HF_ENDPOINT", endpoint.as_str()), ("HF_HUB_OFFLINE", "1")];
    let out2 = home.path().join("offline-run");
    ok(&run_embed_cli(
        &offline,
        home.path(),
        "org/tiny-k6-bin",
        &out2,
    ));
    assert!(std::fs::read(out2.with_extension("npy")).unwrap() == want);
    ok(&run_embed_cli(
        &offline,
        home.path(),
        &format!("org/tiny-k6-bin@{commit}"),
        &out2,
    ));
    assert_eq!(hub.requests().len(), before, "offline runs ask nothing");
    drop(hub);
    // Online but unreachable: the cache serves with a warning, as huggingface_hub does.
    let o = run_embed_cli(&env, home.path(), "org/tiny-k6-bin", &out2);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be reached"));
    // Offline and not cached: a clear error that says how to fetch it.
    let o = run_embed_cli(&offline, home.path(), "org/other", &out2);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("HF_HUB_OFFLINE") && err.contains("dnabert download org/other"),
        "{err}"
    );
}

#[test]
fn a_corrupted_blob_is_found_and_fetched_again() {
    let Some(hub) = StandIn::start(&[("org/tiny-k6-bin", files("tiny-k6-bin"))], &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    ok(&dnabert_with(
        &env,
        home.path(),
        &["download", "org/tiny-k6-bin"],
        None,
    ));
    let blobs = home.path().join("hub/models--org--tiny-k6-bin/blobs");
    let big = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| p.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&big).unwrap();
    let good = bytes.clone();
    bytes[1000] ^= 0xff; // same size, one byte off
    std::fs::write(&big, &bytes).unwrap();
    let cdn_before = hub
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/cdn/"))
        .count();
    let o = dnabert_with(&env, home.path(), &["download", "org/tiny-k6-bin"], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("fetching it again"));
    assert!(
        std::fs::read(&big).unwrap() == good,
        "the blob was fetched again"
    );
    let cdn_after = hub
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/cdn/"))
        .count();
    assert_eq!(cdn_after, cdn_before + 1);
    // Sound files are not fetched again.
    let n = hub.requests().len();
    ok(&dnabert_with(
        &env,
        home.path(),
        &["download", "org/tiny-k6-bin"],
        None,
    ));
    let new: Vec<_> = hub.requests()[n..].to_vec();
    assert!(
        new.iter()
            .all(|r| r["path"].as_str().unwrap().starts_with("/api/")),
        "{new:?}"
    );
}

#[test]
fn a_download_cut_in_the_middle_resumes_in_the_run_and_across_runs() {
    let Some(hub) = StandIn::start(
        &[("org/tiny-k6-bin", files("tiny-k6-bin"))],
        &["--cut-once", "pytorch_model.bin:300000"],
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    let o = dnabert_with(&env, home.path(), &["download", "org/tiny-k6-bin"], None);
    let dir = PathBuf::from(ok(&o).trim());
    assert!(String::from_utf8_lossy(&o.stderr).contains("resuming"));
    let cdn: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/cdn/"))
        .collect();
    assert_eq!(cdn.len(), 2, "{cdn:?}");
    assert_eq!(cdn[1]["range"], "bytes=300000-");
    assert!(
        std::fs::read(dir.join("pytorch_model.bin")).unwrap()
            == std::fs::read(fixtures().join("tiny-k6-bin/pytorch_model.bin")).unwrap()
    );

    // A run killed mid-download leaves blobs/ETAG.incomplete; the next run asks for the rest.
    let home2 = tempfile::tempdir().unwrap();
    let full = std::fs::read(fixtures().join("tiny-k6-bin/pytorch_model.bin")).unwrap();
    let sha = dnabert::net::hex(&sha2_digest(&full));
    let blobs = home2.path().join("hub/models--org--tiny-k6-bin/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &full[..123_456]).unwrap();
    let n = hub.requests().len();
    ok(&dnabert_with(
        &env,
        home2.path(),
        &["download", "org/tiny-k6-bin"],
        None,
    ));
    let cdn: Vec<_> = hub.requests()[n..]
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/cdn/"))
        .cloned()
        .collect();
    assert_eq!(cdn.len(), 1);
    assert_eq!(cdn[0]["range"], "bytes=123456-");
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
    assert!(std::fs::read(blobs.join(&sha)).unwrap() == full);

    // A partial file that is not a prefix of the file (it changed since): the resumed result
    // fails its sha256, and the file is fetched once more from the start.
    let home3 = tempfile::tempdir().unwrap();
    let blobs = home3.path().join("hub/models--org--tiny-k6-bin/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(format!("{sha}.incomplete")), vec![7u8; 50_000]).unwrap();
    let o = dnabert_with(&env, home3.path(), &["download", "org/tiny-k6-bin"], None);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("fetching it from the start"));
    assert!(std::fs::read(blobs.join(&sha)).unwrap() == full);
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn a_private_repo_needs_the_token_which_never_reaches_the_cdn() {
    let Some(hub) = StandIn::start(&[("org/private", files("tiny-k6-bin"))], &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let out = home.path().join("out");
    let o = run_embed_cli(
        &[("HF_ENDPOINT", &endpoint)],
        home.path(),
        "org/private",
        &out,
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("401") && err.contains("HF_TOKEN"), "{err}");
    let o = run_embed_cli(
        &[("HF_ENDPOINT", &endpoint), ("HF_TOKEN", "hf_wrong")],
        home.path(),
        "org/private",
        &out,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("token is not valid"));

    // The token also comes from the file `huggingface-cli login` writes.
    std::fs::write(home.path().join("token"), format!("{TOKEN}\n")).unwrap();
    ok(&run_embed_cli(
        &[("HF_ENDPOINT", &endpoint)],
        home.path(),
        "org/private",
        &out,
    ));
    assert!(std::fs::read(out.with_extension("npy")).unwrap() == local_npy("tiny-k6-bin"));
    let reqs = hub.requests();
    let cdn: Vec<_> = reqs
        .iter()
        .filter(|r| r["host"].as_str().unwrap().starts_with("localhost"))
        .collect();
    assert!(!cdn.is_empty());
    assert!(
        cdn.iter().all(|r| r["auth"] == false),
        "the token went to the CDN: {cdn:?}"
    );
    assert!(
        reqs.iter().any(|r| r["auth"] == true),
        "the token went to the Hub"
    );
    // Nor is it written anywhere in the cache.
    for e in walk(home.path()) {
        if e.file_name().unwrap() != "token" && e.is_file() {
            let bytes = std::fs::read(&e).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "{}",
                e.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_sharded_checkpoint_comes_with_every_shard_its_index_names() {
    let Some(hub) = StandIn::start(&[("org/sharded", files("tiny-k3-sharded-bin"))], &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let out = home.path().join("out");
    ok(&run_embed_cli(
        &[("HF_ENDPOINT", &endpoint)],
        home.path(),
        "org/sharded",
        &out,
    ));
    assert!(std::fs::read(out.with_extension("npy")).unwrap() == local_npy("tiny-k3-sharded-bin"));
    let got: Vec<String> = hub
        .requests()
        .iter()
        .filter(|r| r["method"] == "HEAD")
        .map(|r| {
            r["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    for f in [
        "pytorch_model.bin.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ] {
        assert!(got.iter().any(|g| g == f), "{f} not fetched: {got:?}");
    }
}

#[test]
fn a_renamed_repository_is_followed_to_its_new_name() {
    let Some(hub) = StandIn::start(
        &[("org/tiny-k6-bin", files("tiny-k6-bin"))],
        &["--renamed", "old-org/old-name=org/tiny-k6-bin"],
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let out = home.path().join("out");
    ok(&run_embed_cli(
        &[("HF_ENDPOINT", &endpoint)],
        home.path(),
        "old-org/old-name",
        &out,
    ));
    assert!(std::fs::read(out.with_extension("npy")).unwrap() == local_npy("tiny-k6-bin"));
    let moved = hub
        .requests()
        .iter()
        .filter(|r| r["path"].as_str().unwrap().contains("/old-org/old-name/"))
        .count();
    assert!(
        moved >= 4,
        "API and resolve requests under the old name: {moved}"
    );
}

#[test]
fn revisions_and_a_local_folder_of_the_same_name() {
    let Some(hub) = StandIn::start(&[("org/tiny-k6-bin", files("tiny-k6-bin"))], &[]) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    let o = dnabert_with(&env, home.path(), &["download", "org/tiny-k6-bin@v9"], None);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no revision 'v9'"));
    let o = dnabert_with(&env, home.path(), &["download", "org/missing"], None);
    assert!(!o.status.success());

    // `./org/tiny-k6-bin` exists: it is the model, and the Hub is not asked.
    let cwd = tempfile::tempdir().unwrap();
    let local = cwd.path().join("org/tiny-k6-bin");
    std::fs::create_dir_all(&local).unwrap();
    for f in files("tiny-k3-base") {
        std::fs::copy(&f, local.join(f.file_name().unwrap())).unwrap();
    }
    let n = hub.requests().len();
    let out = cwd.path().join("out");
    let args = embed_args("org/tiny-k6-bin", &out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&dnabert_with(&env, home.path(), &args, Some(cwd.path())));
    assert_eq!(hub.requests().len(), n);
    let (rows, _, _) = read_npy(&out.with_extension("npy"));
    let (k3_rows, _, _) = {
        let d = tempfile::tempdir().unwrap();
        let o = d.path().join("k3");
        ok(&run_embed_cli(
            &[],
            d.path(),
            fixtures().join("tiny-k3-base").to_str().unwrap(),
            &o,
        ));
        read_npy(&o.with_extension("npy"))
    };
    assert_eq!(rows, k3_rows, "the local k = 3 folder was used");

    // `download --output` makes a plain folder (files, not links) that embeds the same.
    let plain = home.path().join("plain");
    ok(&dnabert_with(
        &env,
        home.path(),
        &[
            "download",
            "org/tiny-k6-bin",
            "--output",
            plain.to_str().unwrap(),
        ],
        None,
    ));
    assert!(std::fs::symlink_metadata(plain.join("pytorch_model.bin"))
        .unwrap()
        .file_type()
        .is_file());
    let out = home.path().join("plain-run");
    ok(&run_embed_cli(
        &[],
        home.path(),
        plain.to_str().unwrap(),
        &out,
    ));
    assert!(std::fs::read(out.with_extension("npy")).unwrap() == local_npy("tiny-k6-bin"));
}

/// Python's huggingface_hub, where tests/engines/install.sh put it.
fn hf_python() -> Option<PathBuf> {
    let p = std::env::var_os("DNABERT_HF_PYTHON")
        .map(PathBuf::from)
        .or_else(|| Some(repo_root().join(".engines/venv/bin/python")))
        .filter(|p| p.is_file())
        .filter(|p| {
            Command::new(p)
                .args(["-c", "import huggingface_hub"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if p.is_none() {
        skip("Python's huggingface_hub not found (DNABERT_HF_PYTHON, or .engines/venv from tests/engines/install.sh)");
    }
    p
}

#[test]
fn one_cache_serves_huggingface_hub_and_dnabert_both_ways() {
    let Some(py) = hf_python() else { return };
    let Some(hub) = StandIn::start(
        &[
            ("org/tiny-k6-bin", files("tiny-k6-bin")),
            ("org/tiny-k3", files("tiny-k3-base")),
        ],
        &[],
    ) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let endpoint = hub.endpoint();
    let python = |repo: &str, offline: bool| {
        let code =
            format!(
            "from huggingface_hub import snapshot_download; print(snapshot_download('{repo}'{}))",
            if offline { ", local_files_only=True" } else { "" }
        );
        let mut cmd = Command::new(&py);
        cmd.args(["-c", &code])
            .env("HF_HOME", home.path())
            .env("HF_ENDPOINT", &endpoint)
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env_remove("HF_TOKEN");
        if offline {
            cmd.env("HF_HUB_OFFLINE", "1");
        }
        let o = cmd.output().unwrap();
        PathBuf::from(ok(&o).trim().lines().last().unwrap())
    };
    // huggingface_hub fills the cache; dnabert runs from it offline.
    let py_dir = python("org/tiny-k6-bin", false);
    let out = home.path().join("from-python-cache");
    let offline = [("HF_HUB_OFFLINE", "1")];
    ok(&run_embed_cli(
        &offline,
        home.path(),
        "org/tiny-k6-bin",
        &out,
    ));
    assert!(std::fs::read(out.with_extension("npy")).unwrap() == local_npy("tiny-k6-bin"));
    // dnabert fills it; huggingface_hub finds everything offline.
    let env = [("HF_ENDPOINT", endpoint.as_str())];
    let ours = PathBuf::from(
        ok(&dnabert_with(
            &env,
            home.path(),
            &["download", "org/tiny-k3"],
            None,
        ))
        .trim(),
    );
    let theirs = python("org/tiny-k3", true);
    assert_eq!(ours.canonicalize().unwrap(), theirs.canonicalize().unwrap());
    for f in files("tiny-k3-base") {
        let name = f.file_name().unwrap();
        assert!(std::fs::read(theirs.join(name)).unwrap() == std::fs::read(&f).unwrap());
    }
    // And dnabert, online, finds huggingface_hub's files sound: nothing downloaded again.
    let n = hub.requests().len();
    ok(&dnabert_with(
        &env,
        home.path(),
        &["download", "org/tiny-k6-bin"],
        None,
    ));
    assert!(hub.requests()[n..]
        .iter()
        .all(|r| r["path"].as_str().unwrap().starts_with("/api/")));
    assert!(py_dir.join("config.json").exists());
}

#[test]
fn remote_inputs_download_once_resume_and_check_their_sha256() {
    // seqs.fa served gzip-compressed as an LFS file (through the CDN, with Range).
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("seqs.fa.gz");
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c '{}' > '{}'",
            fixtures().join("seqs.fa").display(),
            gz.display()
        ))
        .output()
        .unwrap();
    assert!(o.status.success());
    let Some(hub) = StandIn::start(
        &[("org/data", vec![gz.clone()])],
        &["--cut-once", "seqs.fa.gz:500"],
    ) else {
        return;
    };
    let url = format!("{}/org/data/resolve/main/seqs.fa.gz", hub.endpoint());
    let cache = tempfile::tempdir().unwrap();
    let run = |input: &str, out: &Path, extra: &[&str]| {
        let mut args = vec![
            "embed",
            "--quiet",
            "--model",
            "../tests/fixtures/tiny-k6",
            "--input",
            input,
            "--output",
        ];
        let out = out.to_str().unwrap().to_owned();
        args.push(&out);
        args.extend(extra);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dnabert"));
        cmd.args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("DNABERT_CACHE", cache.path());
        cmd.output().unwrap()
    };
    let out = cache.path().join("remote");
    let o = run(&url, &out, &[]);
    ok(&o);
    let local = cache.path().join("local");
    ok(&run(gz.to_str().unwrap(), &local, &[]));
    assert!(
        std::fs::read(out.with_extension("npy")).unwrap()
            == std::fs::read(local.with_extension("npy")).unwrap()
    );
    let cdn: Vec<_> = hub
        .requests()
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with("/cdn/") && r["method"] == "GET")
        .collect();
    assert_eq!(cdn.len(), 2, "cut once, then resumed: {cdn:?}");
    assert_eq!(cdn[1]["range"], "bytes=500-");
    // Again: the copy is reused (the server says it has not changed).
    let n = hub.requests().len();
    ok(&run(&url, &out, &[]));
    assert!(hub.requests()[n..].iter().all(|r| r["method"] == "HEAD"));
    // A sha256 is checked, in the URL or by flag.
    let sha = dnabert::net::hex(&sha2_digest(&std::fs::read(&gz).unwrap()));
    ok(&run(&format!("{url}#sha256={sha}"), &out, &[]));
    ok(&run(&url, &out, &["--sha256", &sha]));
    let missing = format!("{}/org/data/resolve/main/absent.fa.gz", hub.endpoint());
    let o = run(&missing, &out, &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found on the server"));
    let wrong = "0".repeat(64);
    let o = run(&url, &out, &["--sha256", &wrong]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("sha256"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
