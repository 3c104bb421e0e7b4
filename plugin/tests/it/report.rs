//! `dnabert report` on real runs: a tiny pretraining run, a fine-tuning run on the promoter
//! sample, a splice-report JSON and an embed output. The page has a section per input with its
//! charts and tables (counted against the runs' own files), every chart exists as a file, the
//! MultiQC files parse as custom content, and MultiQC itself (from PyPI, tests/engines) finds
//! every section.

use std::path::Path;
use std::process::Command;

use crate::pipelines::{engine, run, run_failing};

fn dnabert() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnabert"))
}

/// A splice-report over a small hand-made prediction table, into `dir/splice.json`.
fn splice_json(dir: &Path) -> std::path::PathBuf {
    let mut tsv = String::from("id\tlabel\tpredicted\n");
    for (i, (l, p)) in [
        (0, 0),
        (0, 2),
        (1, 1),
        (1, 1),
        (2, 2),
        (2, 0),
        (2, 2),
        (1, 0),
    ]
    .iter()
    .enumerate()
    {
        tsv += &format!("row{i}\t{l}\t{p}\n");
    }
    let pred = dir.join("pred.tsv");
    std::fs::write(&pred, tsv).unwrap();
    run(dnabert()
        .arg("splice-report")
        .arg("--predictions")
        .arg(&pred)
        .arg("--output")
        .arg(dir.join("splice")));
    dir.join("splice.json")
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The cells of the first table after `marker` in `html`, row by row (header row excluded).
fn table_after(html: &str, marker: &str) -> Vec<Vec<String>> {
    let from = &html[html.find(marker).unwrap_or_else(|| panic!("no {marker}"))..];
    let table = &from[..from.find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|c| c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()].to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn a_report_shows_every_run_and_multiqc_picks_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pt = d.join("pt");
    let steps = 6;
    dnabert::train::pretrain::run(
        &crate::pretrain_resume::config(&pt, steps),
        false,
        dnabert::train::pretrain::RunLimit { stop_after: None },
    )
    .unwrap();
    let ft_config = crate::finetune_predict::tiny_finetune_config(d, 2);
    dnabert::train::finetune::run(&ft_config).unwrap();
    let ft = d.join("ft");
    let splice = splice_json(d);
    let mut opts = crate::common::options(
        &pt.join("model"),
        &crate::common::fixtures().join("seqs.fa"),
        &d.join("emb"),
    );
    opts.pooling = dnabert::embed::Pooling::Mean;
    opts.overlap_tokens = Some(8);
    dnabert::embed::run(&opts).unwrap();

    let out = d.join("report");
    let printed = run(dnabert()
        .arg("report")
        .args([&pt, &ft, &splice])
        .arg(d.join("emb.npy"))
        .arg("--output")
        .arg(&out)
        .arg("--title")
        .arg("Tiny <runs>"));
    let html_path = out.join("report.html");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout).trim(),
        html_path.display().to_string()
    );
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>Tiny &lt;runs&gt;</title>"));
    // Self-contained: no script, nothing fetched.
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    for id in ["pretrain-pt", "finetune-ft", "splice-splice", "embed-emb"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "{id}");
        assert!(
            html.contains(&format!("href=\"#{id}\"")),
            "{id} in the contents"
        );
    }
    // Charts: pretraining 4 (loss, masked accuracy, lr, tokens/s), fine-tuning 2, embed 2;
    // each inline and as its own file.
    assert_eq!(html.matches("<svg").count(), 8);
    let files: Vec<String> = html
        .split("<a href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .filter(|f| !f.starts_with('#'))
        .collect();
    assert_eq!(files.len(), 8, "{files:?}");
    for f in &files {
        let svg = std::fs::read_to_string(out.join(f)).unwrap();
        assert!(svg.starts_with("<svg"), "{f}");
    }
    // The pretraining table's last step is the run's.
    let last = table_after(&html, "<caption>Last values</caption>");
    assert_eq!(last[0][1], steps.to_string());
    // The test confusion matrix holds the 100 test examples, as metrics.json says.
    let confusion = table_after(&html, "<caption>Test confusion matrix");
    let total: u64 = confusion
        .iter()
        .flatten()
        .map(|c| c.parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 100);
    let metrics = json(&ft.join("metrics.json"));
    assert_eq!(
        metrics["test"]["confusion"][0][0].as_u64().unwrap(),
        confusion[0][0].parse::<u64>().unwrap()
    );
    // The splice table has the seed's nine metrics; no reference column unless asked.
    let splice_rows = table_after(&html, "<caption>Splice sites");
    assert_eq!(splice_rows.len(), 9);
    assert!(!html.contains("BioNeMo"));
    // The embed summary counts the rows of emb.npy: one per window of seqs.fa.
    let emb_rows = std::fs::read_to_string(d.join("emb.tsv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    assert!(
        html.contains(&format!("{emb_rows} rows × 16 columns")),
        "{emb_rows}"
    );

    // MultiQC custom content: each file's section, with the runs' data.
    let loss = json(&out.join("dnabert_pretrain_loss_mqc.json"));
    assert_eq!(loss["plot_type"], "linegraph");
    assert_eq!(
        loss["data"]["pt training"].as_object().unwrap().len(),
        steps as usize
    );
    let ftab = json(&out.join("dnabert_finetune_mqc.json"));
    assert_eq!(
        ftab["data"]["ft"]["test_accuracy"],
        metrics["test"]["accuracy"]
    );
    let heat = json(&out.join("dnabert_finetune_ft_confusion_mqc.json"));
    assert_eq!(heat["data"], metrics["test"]["confusion"]);
    let ids = [
        "dnabert_pretrain_loss",
        "dnabert_finetune_val_loss",
        "dnabert_finetune",
        "dnabert_finetune_ft_confusion",
        "dnabert_splice",
        "dnabert_embeddings",
    ];
    for id in ids {
        assert_eq!(json(&out.join(format!("{id}_mqc.json")))["id"], id);
    }

    // A wrong input is named, and nothing is written.
    let bad = d.join("report2");
    let err = run_failing(
        dnabert()
            .arg("report")
            .arg(d.join("nothing"))
            .arg("--output")
            .arg(&bad),
    );
    assert!(
        err.contains("nothing") && err.contains("embed output"),
        "{err}"
    );
    assert!(!bad.exists());

    // MultiQC finds every section.
    let Some(multiqc) = engine("multiqc") else {
        return;
    };
    let mq = d.join("multiqc");
    run(Command::new(multiqc)
        .arg(&out)
        .arg("-o")
        .arg(&mq)
        .arg("--no-ansi")
        .arg("--quiet")
        // No network here: MultiQC would look for a newer release.
        .arg("--cl-config")
        .arg("no_version_check: true"));
    let page = std::fs::read_to_string(mq.join("multiqc_report.html")).unwrap();
    for id in ids {
        assert!(page.contains(id), "MultiQC's report has no section {id}");
    }
}
