//! Plugins that read an annotation's lines (`features`): a peak task on a BED/narrowPeak file
//! and a feature selector on GFF3, GTF and BED give the hand-checked windows and regions, take
//! their parameters, and bad feature files or calls are refused naming the line.

use std::path::Path;
use std::time::Duration;

use super::plugins::{
    built, dnabert, genome, index, merged, mini, refused, revcomp, rows, wat_task,
};

/// Peaks on the mini genome (chr1 40 kb, chr2 24 kb): a narrowPeak line with a summit, a BED3
/// line and a minus-strand BED6 line.
const PEAKS: &str = "track name=peaks\n\
chr1\t5000\t5400\tp1\t0\t.\t3.2\t-1\t-1\t150\n\
chr2\t20000\t20100\n\
chr1\t30000\t30200\tp3\t0\t-\n";

fn peaks_dataset(bed: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["make-dataset", "--split", "random"];
    args.extend(extra);
    dnabert(
        &args,
        &[
            ("--fasta", &mini().join("genome.fa")),
            ("--annotation", bed),
            ("--plugin", &built("peaks.wasm").unwrap()),
            ("--output", out),
        ],
    )
}

#[test]
fn the_peak_task_reads_a_bed_file_and_gives_the_hand_checked_windows() {
    if built("peaks.wasm").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bed = dir.path().join("peaks.narrowPeak");
    std::fs::write(&bed, PEAKS).unwrap();
    let out = dir.path().join("ds");
    let o = peaks_dataset(&bed, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g = genome();
    let seq = |c: &str| &g.iter().find(|(id, _)| id == c).unwrap().1;
    // By hand: p1's summit 5000 + 150, window ± 100, flanks 1000 away; the BED3 line's middle
    // 20050; p3 (minus strand) its middle 30100, read as the reverse complement.
    let want = [
        ("chr1", 5050, "+", "peak"),
        ("chr1", 4050, "+", "flank"),
        ("chr1", 6050, "+", "flank"),
        ("chr2", 19950, "+", "peak"),
        ("chr2", 18950, "+", "flank"),
        ("chr2", 20950, "+", "flank"),
        ("chr1", 30000, "-", "peak"),
        ("chr1", 29000, "-", "flank"),
        ("chr1", 31000, "-", "flank"),
    ];
    let got = rows(&out);
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (chrom, start, strand, class) in want {
        let r = got
            .iter()
            .find(|r| r[0] == chrom && r[1] == start.to_string())
            .unwrap_or_else(|| panic!("no window at {chrom}:{start}: {got:?}"));
        assert_eq!(
            r[2..5],
            [(start + 200).to_string(), strand.into(), class.into()]
        );
        let bases = &seq(chrom)[start..start + 200];
        let bases = if strand == "-" {
            revcomp(bases)
        } else {
            bases.to_vec()
        };
        assert_eq!(r[5].as_bytes(), bases.as_slice(), "{chrom}:{start}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["features"], 3);
    assert_eq!(summary["transcripts"], 0);

    // --config reaches the task: narrower windows, farther flanks.
    let narrow = dir.path().join("narrow");
    let o = peaks_dataset(
        &bed,
        &narrow,
        &["--config", "window=50", "--config", "offset=5000"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = rows(&narrow);
    assert!(got.iter().all(|r| r[5].len() == 50));
    assert!(
        got.iter().any(|r| r[0] == "chr1" && r[1] == "125"),
        "{got:?}"
    );

    // A BED line off the genome, or past a record's end, names its line.
    for (text, expect) in [
        (
            "chr1\t10\t20\nchr9\t1\t5\n",
            "peaks.narrowPeak:2: chromosome 'chr9' (bed) is not in",
        ),
        (
            "chr2\t23990\t24010\n",
            "peaks.narrowPeak:1: bed ends at 24010, past the end of 'chr2'",
        ),
        ("chr2\tx\t5\n", "peaks.narrowPeak:1: start \"x\""),
    ] {
        std::fs::write(&bed, text).unwrap();
        let bad = dir.path().join("bad");
        let o = peaks_dataset(&bed, &bad, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(expect), "should say {expect:?}: {err}");
        assert!(!bad.join("train.tsv").exists());
    }
}

/// Exons of the mini annotation, 0-based, merged per record, in FASTA order.
fn exons(flank: u64) -> Vec<(String, u64, u64)> {
    let g = genome();
    let gff = std::fs::read_to_string(mini().join("annotation.gff3")).unwrap();
    let mut want = vec![];
    for (chrom, seq) in &g {
        let v: Vec<(u64, u64)> = gff
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .filter(|f| f.len() == 9 && f[0] == chrom && f[2] == "exon")
            .map(|f| {
                let (s, e): (u64, u64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
                (
                    (s - 1).saturating_sub(flank),
                    (e + flank).min(seq.len() as u64),
                )
            })
            .collect();
        want.extend(merged(v).into_iter().map(|(s, e)| (chrom.clone(), s, e)));
    }
    want
}

fn embed(annotation: &Path, out: &Path, config: &[&str], plugin: &Path) -> std::process::Output {
    let model = crate::common::fixtures().join("tiny-k6");
    let mut args = vec!["embed", "--quiet"];
    for c in config {
        args.extend(["--select-config", c]);
    }
    dnabert(
        &args,
        &[
            ("--model", &model),
            ("--input", &mini().join("genome.fa")),
            ("--output", out),
            ("--select", plugin),
            ("--annotation", annotation),
        ],
    )
}

#[test]
fn the_feature_selector_embeds_exons_of_gff_and_gtf_and_peaks_of_bed() {
    let Some(plugin) = built("select_features.wasm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Exons by default, the same from the GFF3 and the GTF.
    for (name, flank) in [("annotation.gff3", 0), ("annotation.gtf", 25)] {
        let out = dir.path().join(name.replace('.', "_"));
        let flag = format!("flank={flank}");
        let o = embed(&mini().join(name), &out, &[&flag], &plugin);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let want = exons(flank);
        assert!(want.len() > 20);
        assert_eq!(index(&out), want, "{name}");
    }
    // A BED file's lines with types=bed, widened by 10 and cut to the record.
    let bed = dir.path().join("peaks.bed");
    std::fs::write(&bed, format!("{PEAKS}chr2\t23950\t24000\n")).unwrap();
    let out = dir.path().join("peaks");
    let o = embed(&bed, &out, &["types=bed", "flank=10"], &plugin);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        index(&out),
        [
            ("chr1".to_owned(), 4990, 5410),
            ("chr1".to_owned(), 29990, 30210),
            ("chr2".to_owned(), 19990, 20110),
            ("chr2".to_owned(), 23940, 24000),
        ]
    );
    // A selector without dnabert_select_start takes no --select-config.
    let head = super::plugins::repo().join("plugins/wat/head.wat");
    let o = embed(&bed, &dir.path().join("head"), &["n=1"], &head);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("exports no dnabert_select_start"), "{err}");
}

#[test]
fn features_asked_for_outside_start_or_without_an_export_are_refused() {
    let features = r#"(import "dnabert" "features" (func $features (param i32 i32)))"#;
    refused(
        &wat_task(
            features,
            "(call $features (i32.const 16) (i32.const 4))",
            "",
        ),
        &[],
        &[
            "asked for features outside dnabert_task_start",
            "annotation.gff3:4",
        ],
        Duration::from_secs(30),
    );
    refused(
        &wat_task(features, "", "").replace(
            "(drop (call $label (i32.const 16) (i32.const 4))))",
            "(drop (call $label (i32.const 16) (i32.const 4))) (call $features (i32.const 16) (i32.const 4)))",
        ),
        &[],
        &["asked for features but exports no dnabert_task_feature"],
        Duration::from_secs(30),
    );
}
