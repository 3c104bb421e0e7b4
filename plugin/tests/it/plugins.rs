//! WebAssembly plugins: the example plugins (built here from plugins/, Rust and WAT) give the
//! hand-checked windows and regions on the bundled mini genome, and hostile plugins (WAT) are
//! refused or stopped with an error that names them, leaving nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub(crate) fn mini() -> PathBuf {
    repo().join("tests/fixtures/mini-genome")
}

/// plugins/ built for wasm32 once per test run; None (skipped, or failed in CI) without the
/// target.
pub(crate) fn built(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let manifest = repo().join("plugins/Cargo.toml");
        let o = Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(&manifest)
            .output()
            .unwrap();
        if !o.status.success() {
            let err = String::from_utf8_lossy(&o.stderr);
            crate::common::standin::skip(&format!(
                "the example plugins did not build (rustup target add wasm32-unknown-unknown?): {}",
                err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
            ));
            return None;
        }
        Some(repo().join("plugins/target/wasm32-unknown-unknown/release"))
    });
    dir.as_ref().map(|d| d.join(name))
}

pub(crate) fn dnabert(args: &[&str], paths: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnabert"));
    c.args(args);
    for (flag, p) in paths {
        c.arg(flag).arg(p);
    }
    // Each test compiles its own plugin: the cache is tested on its own below.
    c.env("DNABERT_PLUGIN_CACHE", "off");
    c.output().unwrap()
}

pub(crate) fn make_dataset(plugin: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["make-dataset"];
    args.extend(extra);
    dnabert(
        &args,
        &[
            ("--fasta", &mini().join("genome.fa")),
            ("--annotation", &mini().join("annotation.gff3")),
            ("--plugin", plugin),
            ("--output", out),
        ],
    )
}

/// The genome's records, uppercase.
pub(crate) fn genome() -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(mini().join("genome.fa")).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = vec![];
    for line in text.lines() {
        if let Some(h) = line.strip_prefix('>') {
            out.push((h.split_whitespace().next().unwrap().to_owned(), vec![]));
        } else if let Some(last) = out.last_mut() {
            last.1.extend(line.trim().to_ascii_uppercase().bytes());
        }
    }
    out
}

pub(crate) fn revcomp(s: &[u8]) -> Vec<u8> {
    s.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            b'T' => b'A',
            x => *x,
        })
        .collect()
}

/// Every row of the three tables, as (chrom, start, end, strand, class, sequence).
pub(crate) fn rows(out: &Path) -> Vec<[String; 6]> {
    let mut all = vec![];
    for split in ["train", "validation", "test"] {
        let text = std::fs::read_to_string(out.join(format!("{split}.tsv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("chrom\tstart\tend\tstrand\tclass\tlabel\tgroup\tsequence")
        );
        for l in lines {
            let f: Vec<&str> = l.split('\t').collect();
            all.push([f[0], f[1], f[2], f[3], f[4], f[7]].map(str::to_owned));
        }
    }
    all
}

#[test]
fn the_promoter_task_gives_the_hand_checked_windows() {
    let Some(plugin) = built("promoter.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let o = make_dataset(&plugin, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = rows(&out);
    let g = genome();
    let chr1 = &g.iter().find(|(id, _)| id == "chr1").unwrap().1;
    let find = |start: &str| got.iter().find(|r| r[0] == "chr1" && r[1] == start);
    // chr1_g1.t1, + strand, exons 910..3403 (GFF, 1-based): TSS at 0-based 909, window
    // 909 ± 150; its body's middle, 909 + 2494 / 2 = 2156, is 1247 bases away: a background.
    let p = find("759").expect("chr1_g1's promoter");
    assert_eq!(p[2..5], ["1059", "+", "promoter"]);
    assert_eq!(p[5].as_bytes(), &chr1[759..1059]);
    let b = find("2006").expect("chr1_g1's background");
    assert_eq!(b[2..5], ["2306", "+", "background"]);
    assert_eq!(b[5].as_bytes(), &chr1[2006..2306]);
    // chr1_g2.t1, - strand, 3827..5157: its TSS is the last base, 5156; the window is 5157 ± 150
    // read on the minus strand; its middle (4491) is only 666 bases away: no background.
    let m = find("5007").expect("chr1_g2's promoter");
    assert_eq!(m[2..5], ["5307", "-", "promoter"]);
    assert_eq!(m[5].as_bytes(), revcomp(&chr1[5007..5307]).as_slice());
    assert!(
        find("4341").is_none(),
        "no background 666 bases from the TSS"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["labels"],
        serde_json::json!(["promoter", "background"])
    );
    let total: u64 = summary["counts"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| c.as_object().unwrap().values().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total as usize, got.len());
    // The same seed, the same files; --config is read.
    let again = dir.path().join("again");
    assert!(make_dataset(&plugin, &again, &[]).status.success());
    for f in ["train.tsv", "validation.tsv", "test.tsv"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap()
        );
    }
    let wide = dir.path().join("wide");
    assert!(make_dataset(&plugin, &wide, &["--config", "flank=50"])
        .status
        .success());
    assert!(rows(&wide).iter().all(|r| r[5].len() == 100));
}

/// Spans sorted and overlapping ones merged: the tests' own reference for the selectors'
/// merging.
pub(crate) fn merged(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64)> = vec![];
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The index lines of an embed run, as (seq_id, start, end).
pub(crate) fn index(prefix: &Path) -> Vec<(String, u64, u64)> {
    read_tsv(&prefix.with_extension("tsv"))
        .into_iter()
        .map(|(id, start, end, _)| (id, start as u64, end as u64))
        .collect()
}

fn embed_select(plugin: &Path, out: &Path, annotation: bool) -> Output {
    let (model, fasta, gff) = (
        fixtures().join("tiny-k6"),
        mini().join("genome.fa"),
        mini().join("annotation.gff3"),
    );
    let mut paths: Vec<(&str, &Path)> = vec![
        ("--model", &model),
        ("--input", &fasta),
        ("--output", out),
        ("--select", plugin),
    ];
    if annotation {
        paths.push(("--annotation", &gff));
    }
    dnabert(&["embed", "--quiet"], &paths)
}

#[test]
fn the_promoter_selector_embeds_only_promoters_at_their_coordinates() {
    let Some(plugin) = built("select_promoters.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prom");
    let o = embed_select(&plugin, &out, true);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Independently: TSS ± 1000 of every transcript in the GFF, cut to the record, merged.
    let g = genome();
    let len = |c: &str| g.iter().find(|(id, _)| id == c).unwrap().1.len() as u64;
    let gff = std::fs::read_to_string(mini().join("annotation.gff3")).unwrap();
    let mut want: Vec<(String, u64, u64)> = vec![];
    let mut spans: std::collections::BTreeMap<String, Vec<(u64, u64)>> = Default::default();
    for l in gff.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split('\t').collect();
        if f[2] != "mRNA" {
            continue;
        }
        let (s, e): (u64, u64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        let tss = if f[6] == "+" { s - 1 } else { e };
        spans
            .entry(f[0].to_owned())
            .or_default()
            .push((tss.saturating_sub(1000), (tss + 1000).min(len(f[0]))));
    }
    for (chrom, v) in spans {
        want.extend(merged(v).into_iter().map(|(s, e)| (chrom.clone(), s, e)));
    }
    // FASTA order: chr1, chr2 (chrM has no transcript).
    assert!(!want.is_empty());
    assert_eq!(index(&out), want);
    let (rows, cols, _) = read_npy(&out.with_extension("npy"));
    assert_eq!(cols, 32);
    assert_eq!(
        rows as u64,
        want.iter().map(|(_, s, e)| e - s - 5).sum::<u64>()
    );
}

#[test]
fn the_wat_selector_takes_the_first_10_kb_of_each_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("head");
    let o = embed_select(&repo().join("plugins/wat/head.wat"), &out, false);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        index(&out),
        [
            ("chr1".to_owned(), 0, 10_000),
            ("chr2".to_owned(), 0, 10_000),
            ("chrM".to_owned(), 0, 6_000)
        ]
    );
}

/// A minimal task in WAT around `body` (the body of dnabert_task_transcript), with `extra`
/// module fields.
pub(crate) fn wat_task(imports: &str, body: &str, extra: &str) -> String {
    format!(
        r#"(module
  (import "dnabert" "label" (func $label (param i32 i32) (result i32)))
  (import "dnabert" "emit" (func $emit (param i64 i64 i32 i32 i32 i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 16) "site")
  (func (export "dnabert_abi_version") (result i32) (i32.const 1))
  (func (export "dnabert_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "dnabert_task_start") (param i32 i32)
    (drop (call $label (i32.const 16) (i32.const 4))))
  (func (export "dnabert_task_transcript") (param i32 i32) {body})
  {extra})"#
    )
}

/// Runs make-dataset with a hostile plugin: it must fail within `within`, naming `expect`,
/// with no panic and no output.
pub(crate) fn refused(wat: &str, extra: &[&str], expect: &[&str], within: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("hostile.wat");
    std::fs::write(&plugin, wat).unwrap();
    let out = dir.path().join("out");
    let t = Instant::now();
    let o = make_dataset(&plugin, &out, extra);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(t.elapsed() < within, "took {:?}: {stderr}", t.elapsed());
    assert!(stderr.contains("hostile.wat"), "names the plugin: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "should say {e:?}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.join("train.tsv").exists() && !out.join("summary.json").exists());
}

#[test]
fn a_plugin_that_loops_forever_is_stopped_by_its_fuel() {
    refused(
        &wat_task("", "(loop $l (br $l))", ""),
        &["--plugin-fuel", "200000000"],
        &[
            "ran out of fuel",
            "dnabert_task_transcript",
            "annotation.gff3:4: transcript chr1_g1.t1",
        ],
        Duration::from_secs(60),
    );
}

#[test]
fn a_plugin_that_asks_for_4_gib_is_stopped_at_its_memory_cap() {
    refused(
        &wat_task("", "(drop (memory.grow (i32.const 65535)))", ""),
        &[],
        &["--plugin-memory", "dnabert_task_transcript"],
        Duration::from_secs(30),
    );
}

#[test]
fn a_trap_and_a_plugins_own_failure_name_the_export_and_line() {
    refused(
        &wat_task("", "unreachable", ""),
        &[],
        &["trapped", "annotation.gff3:4"],
        Duration::from_secs(30),
    );
    refused(
        &wat_task(
            r#"(import "dnabert" "fail" (func $fail (param i32 i32)))"#,
            "(call $fail (i32.const 16) (i32.const 4))",
            "",
        ),
        &[],
        &["it said: site", "annotation.gff3:4"],
        Duration::from_secs(30),
    );
}

#[test]
fn a_plugin_that_imports_wasi_is_refused_before_it_runs() {
    refused(
        &wat_task(
            r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#,
            "",
            "",
        ),
        &[],
        &[
            "imports 'wasi_snapshot_preview1'.'path_open'",
            "no filesystem",
        ],
        Duration::from_secs(30),
    );
}

#[test]
fn bad_emits_are_refused_naming_what_was_wrong() {
    // Past the end of chr1 (40,000 bases).
    refused(
        &wat_task(
            "",
            "(call $emit (i64.const 39990) (i64.const 40010) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))",
            "",
        ),
        &[],
        &[
            "emitted window [39990, 40010) is not inside record 'chr1' (40000 bases)",
            "annotation.gff3:4",
        ],
        Duration::from_secs(30),
    );
    // A label that was never declared.
    refused(
        &wat_task(
            "",
            "(call $emit (i64.const 0) (i64.const 10) (i32.const 1) (i32.const 7) (i32.const 0) (i32.const 0))",
            "",
        ),
        &[],
        &["emitted label 7, but declared 1 labels"],
        Duration::from_secs(30),
    );
}

#[test]
fn bad_passes_and_caps_are_refused() {
    let passes = r#"(import "dnabert" "passes" (func $passes (param i32)))"#;
    refused(
        &wat_task(passes, "", "").replace(
            "(drop (call $label (i32.const 16) (i32.const 4))))",
            "(drop (call $label (i32.const 16) (i32.const 4))) (call $passes (i32.const 4)))",
        ),
        &[],
        &[
            "asked for 4 passes over the genome (1 to 3)",
            "dnabert_task_start",
        ],
        Duration::from_secs(30),
    );
    refused(
        &wat_task(passes, "(call $passes (i32.const 2))", ""),
        &[],
        &["asked for passes outside dnabert_task_start"],
        Duration::from_secs(30),
    );
    refused(
        &wat_task(
            r#"(import "dnabert" "cap" (func $cap (param i32 i64)))"#,
            "(call $cap (i32.const 3) (i64.const 10))",
            "",
        ),
        &[],
        &["capped label 3, but declared 1 labels", "annotation.gff3:4"],
        Duration::from_secs(30),
    );
}

/// (name, fasta, annotation, flags of both commands, the plugin's --config)
type Case<'a> = (&'a str, &'a Path, &'a Path, &'a [&'a str], &'a [&'a str]);

/// `plugins/splice-sites` is `splice-sites` written against the plugin interface alone: through
/// `make-dataset` it writes the same three tables, byte for byte, with decoy and random
/// negatives, a gene and a random split, caps that bite, and on the real chrX slice.
#[test]
fn the_splice_plugin_writes_splice_sites_tables_byte_for_byte() {
    let Some(plugin) = built("splice_sites.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = shared_data();
    let mini_fa = mini().join("genome.fa");
    let mini_gff = mini().join("annotation.gff3");
    let chrx_fa = data.join("grch37_chrX_1-70Mb.fa.gz");
    let chrx_gff = data.join("grch37_chrX_1-70Mb.gencode24.gff3");
    let cases: [Case; 4] = [
        (
            "mini-decoy",
            &mini_fa,
            &mini_gff,
            &["--seed", "3"],
            &["window=100", "seed=3"],
        ),
        (
            "mini-random",
            &mini_fa,
            &mini_gff,
            &["--split", "random", "--max-per-class", "6"],
            &["window=100", "negative_kind=random", "max_per_class=6"],
        ),
        (
            "mini-gene-body",
            &mini_fa,
            &mini_gff,
            &["--validation-chroms", "chr2"],
            &[
                "window=40",
                "negative_kind=gene-body",
                "negatives=5",
                "margin=10",
            ],
        ),
        ("chrx-decoy", &chrx_fa, &chrx_gff, &[], &[]),
    ];
    for (name, fasta, annotation, both, config) in cases {
        let builtin = dir.path().join(format!("{name}-builtin"));
        let mut args = vec!["splice-sites"];
        args.extend(both);
        // splice-sites takes the plugin's settings as flags.
        let flags: Vec<String> = config
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| !matches!(*k, "seed" | "max_per_class"))
            .flat_map(|(k, v)| [format!("--{}", k.replace('_', "-")), v.to_owned()])
            .collect();
        args.extend(flags.iter().map(String::as_str));
        let o = dnabert(
            &args,
            &[
                ("--fasta", fasta),
                ("--annotation", annotation),
                ("--output", &builtin),
            ],
        );
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );

        let via_plugin = dir.path().join(format!("{name}-plugin"));
        let mut args = vec!["make-dataset"];
        args.extend(both);
        for kv in config {
            args.extend(["--config", kv]);
        }
        let o = dnabert(
            &args,
            &[
                ("--fasta", fasta),
                ("--annotation", annotation),
                ("--plugin", &plugin),
                ("--output", &via_plugin),
            ],
        );
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut classes = std::collections::BTreeSet::new();
        for split in ["train", "validation", "test"] {
            let f = format!("{split}.tsv");
            let a = std::fs::read_to_string(builtin.join(&f)).unwrap();
            let b = std::fs::read_to_string(via_plugin.join(&f)).unwrap();
            assert!(a == b, "{name}: {f} differs:\n{}", first_difference(&a, &b));
            classes.extend(
                a.lines()
                    .skip(1)
                    .map(|l| l.split('\t').nth(4).unwrap().to_owned()),
            );
        }
        assert_eq!(
            classes.into_iter().collect::<Vec<_>>(),
            ["acceptor", "donor", "neither"],
            "{name}: every class present"
        );
    }
}

/// The first line where two tables differ, for a failing comparison.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    match la.iter().zip(&lb).position(|(x, y)| x != y) {
        Some(i) => format!(
            "line {}:\n  splice-sites: {}\n  plugin:       {}",
            i + 1,
            la[i],
            lb[i]
        ),
        None => format!("{} lines against {}", la.len(), lb.len()),
    }
}

#[test]
fn a_plugin_for_another_interface_version_is_refused_saying_so() {
    let wat = wat_task("", "", "").replace(
        r#"(func (export "dnabert_abi_version") (result i32) (i32.const 1))"#,
        r#"(func (export "dnabert_abi_version") (result i32) (i32.const 2))"#,
    );
    refused(
        &wat,
        &[],
        &["built for plugin interface version 2; this dnabert speaks version 1"],
        Duration::from_secs(30),
    );
    // A selector where a task is wanted.
    refused(
        &std::fs::read_to_string(repo().join("plugins/wat/head.wat")).unwrap(),
        &[],
        &["not a dataset task"],
        Duration::from_secs(30),
    );
}

#[test]
fn compiled_plugins_are_cached_and_a_broken_cache_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = || {
        let out = dir.path().join("head");
        Command::new(env!("CARGO_BIN_EXE_dnabert"))
            .args(["embed", "--quiet", "--model"])
            .arg(fixtures().join("tiny-k6"))
            .arg("--input")
            .arg(mini().join("genome.fa"))
            .arg("--output")
            .arg(&out)
            .arg("--select")
            .arg(repo().join("plugins/wat/head.wat"))
            .env("DNABERT_CACHE", &cache)
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let files: Vec<PathBuf> = std::fs::read_dir(cache.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".cwasm"));
    std::fs::write(&files[0], b"not a compiled module").unwrap();
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(&files[0]).unwrap().len() > 100, "replaced");
}

#[test]
fn the_guides_example_runs_as_written() {
    let Some(plugin) = built("acceptors.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("acc");
    let o = make_dataset(&plugin, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // chr1_g1.t1's second exon starts at 2151 (GFF): 0-based 2150, window 2150 ± 100.
    let rows = rows(&out);
    let r = rows
        .iter()
        .find(|r| r[0] == "chr1" && r[1] == "2050")
        .expect("the acceptor of chr1_g1's second exon");
    assert_eq!(r[2..5], ["2250", "+", "acceptor"]);
    let chr1 = genome().into_iter().find(|(id, _)| id == "chr1").unwrap().1;
    assert_eq!(
        &chr1[2148..2150],
        b"AG",
        "the mini genome's introns close with AG"
    );
}

#[test]
fn the_wat_task_gives_the_rust_tasks_windows() {
    // plugins/wat/tss.wat (TSS ± 50, WebAssembly text) against promoter.wasm --config
    // flank=50 (Rust): two languages, one interface, the same windows and bases.
    let Some(rust) = built("promoter.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (wat_out, rust_out) = (dir.path().join("wat"), dir.path().join("rust"));
    let o = make_dataset(&repo().join("plugins/wat/tss.wat"), &wat_out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = make_dataset(&rust, &rust_out, &["--config", "flank=50"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let windows = |rows: Vec<[String; 6]>, class: &str| {
        let mut v: Vec<[String; 5]> = rows
            .into_iter()
            .filter(|r| r[4] == class)
            .map(|r| {
                [
                    r[0].clone(),
                    r[1].clone(),
                    r[2].clone(),
                    r[3].clone(),
                    r[5].clone(),
                ]
            })
            .collect();
        v.sort();
        v
    };
    let wat = windows(rows(&wat_out), "tss");
    assert_eq!(wat.len(), 11, "one per transcript of the mini genome");
    assert_eq!(wat, windows(rows(&rust_out), "promoter"));
}
