//! `splice-sites` on small hand-checked annotations: both strands, a single-exon transcript
//! (skipped), a site too close to the sequence's start (dropped and counted), GFF3 and GTF giving
//! the same sites, and errors that name the line.

use std::path::Path;

use dnabert::splice::{self, NegativeKind, Options, SplitKind};

/// chr1: 200 bases of A with the dinucleotides the annotation below expects; chr2: 60 bases.
fn genome(dir: &Path) -> std::path::PathBuf {
    let mut c1 = [b'A'; 200];
    let mut put = |pos1: usize, s: &[u8]| c1[pos1 - 1..pos1 - 1 + s.len()].copy_from_slice(s);
    put(41, b"GT"); // after the plus-strand donor at 40
    put(59, b"AG"); // before the plus-strand acceptor at 61
    put(81, b"GC"); // a non-canonical donor at 80
    put(99, b"AG"); // before the acceptor at 101
    put(169, b"AC"); // minus-strand donor at 171: reads GT on the transcript
    put(151, b"CT"); // minus-strand acceptor at 150: reads AG
    put(95, b"c"); // soft-masked base inside a window: uppercased
    let mut fa = b">chr1 test\n".to_vec();
    for line in c1.chunks(60) {
        fa.extend_from_slice(line);
        fa.push(b'\n');
    }
    fa.extend_from_slice(b">chr2\n");
    fa.extend(std::iter::repeat_n(b'C', 60));
    fa.push(b'\n');
    let p = dir.join("g.fa");
    std::fs::write(&p, fa).unwrap();
    p
}

const GFF3: &str = "##gff-version 3
chr1\tt\tgene\t21\t120\t.\t+\t.\tID=gene:A
chr1\tt\tmRNA\t21\t120\t.\t+\t.\tID=tx:A1;Parent=gene:A
chr1\tt\texon\t61\t80\t.\t+\t.\tParent=tx:A1
chr1\tt\texon\t21\t40\t.\t+\t.\tParent=tx:A1
chr1\tt\texon\t101\t120\t.\t+\t.\tParent=tx:A1
chr1\tt\tgene\t131\t190\t.\t-\t.\tID=gene:B
chr1\tt\tmRNA\t131\t190\t.\t-\t.\tID=tx:B1;Parent=gene:B
chr1\tt\texon\t171\t190\t.\t-\t.\tParent=tx:B1
chr1\tt\texon\t131\t150\t.\t-\t.\tParent=tx:B1
chr1\tt\tgene\t5\t15\t.\t+\t.\tID=gene:C
chr1\tt\tmRNA\t5\t15\t.\t+\t.\tID=tx:C1;Parent=gene:C
chr1\tt\texon\t5\t15\t.\t+\t.\tParent=tx:C1
chr2\tt\tgene\t1\t60\t.\t+\t.\tID=gene:D
chr2\tt\tmRNA\t1\t60\t.\t+\t.\tID=tx:D1;Parent=gene:D
chr2\tt\texon\t1\t5\t.\t+\t.\tParent=tx:D1
chr2\tt\texon\t40\t60\t.\t+\t.\tParent=tx:D1
";

fn gtf() -> String {
    let mut out = String::new();
    for line in GFF3.lines().filter(|l| l.contains("\texon\t")) {
        let f: Vec<&str> = line.split('\t').collect();
        let tx = f[8].trim_start_matches("Parent=tx:");
        out += &format!(
            "{}\tt\texon\t{}\t{}\t.\t{}\t.\tgene_id \"{}\"; transcript_id \"{tx}\";\n",
            f[0],
            f[3],
            f[4],
            f[6],
            &tx[..1]
        );
    }
    out
}

fn options(dir: &Path, annotation: &str, name: &str) -> Options {
    let ann = dir.join(name);
    std::fs::write(&ann, annotation).unwrap();
    Options {
        fasta: genome(dir),
        annotation: ann,
        output: dir.join(format!("{name}.out")),
        window: 20,
        max_per_class: 100,
        negatives: Some(3),
        negative_kind: NegativeKind::Random,
        margin: 3,
        seed: 1,
        split: None,
        validation_chroms: vec![],
        test_chroms: vec!["chr2".into()],
    }
}

/// (split, chrom, pos, strand, class, sequence) of every row in the three splits, with the site's
/// 1-based position worked out from the window (the site is at index w/2 of the oriented
/// window).
fn rows(out: &Path) -> Vec<Vec<String>> {
    let mut all = vec![];
    for split in ["train", "validation", "test"] {
        let text = std::fs::read_to_string(out.join(format!("{split}.tsv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("chrom\tstart\tend\tstrand\tclass\tlabel\tgroup\tsequence")
        );
        for line in lines {
            let f: Vec<String> = line.split('\t').map(str::to_owned).collect();
            let (start, end): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            let w = end - start;
            let pos = start + 1 + if f[3] == "+" { w / 2 } else { w - 1 - w / 2 };
            all.push(vec![
                split.into(),
                f[0].clone(),
                pos.to_string(),
                f[3].clone(),
                f[4].clone(),
                f[7].clone(),
            ]);
        }
    }
    all.sort();
    all
}

#[test]
fn gff3_sites_are_the_hand_checked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path(), GFF3, "a.gff3");
    let s = splice::run(&o).unwrap();
    assert_eq!(s.skipped.single_exon_transcripts, 1);
    // chr2's donor at 5 needs bases from position −4: dropped, counted. Its acceptor at 40 stays.
    assert_eq!(s.skipped.window_off_sequence.get("donor"), Some(&1));
    let sites: Vec<(String, String, String, String)> = rows(&o.output)
        .into_iter()
        .filter(|r| r[4] != "neither")
        .map(|r| (r[1].clone(), r[2].clone(), r[3].clone(), r[4].clone()))
        .collect();
    let want = [
        ("chr1", "101", "+", "acceptor"),
        ("chr1", "150", "-", "acceptor"),
        ("chr1", "171", "-", "donor"),
        ("chr1", "40", "+", "donor"),
        ("chr1", "61", "+", "acceptor"),
        ("chr1", "80", "+", "donor"),
        ("chr2", "40", "+", "acceptor"),
    ];
    let mut got: Vec<_> = sites
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    got.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(got, want);
    // Windows: the site at index 10, the intron's dinucleotide beside it, 5'→3' on the
    // transcript (reverse-complemented on the minus strand), uppercase.
    for r in rows(&o.output) {
        let w = r[5].as_bytes();
        assert_eq!(w.len(), 20);
        match (r[2].as_str(), r[3].as_str()) {
            _ if r[1] == "chr2" => assert!(w.iter().all(|&b| b == b'C'), "{r:?}"),
            ("40", "+") | ("171", "-") => assert_eq!(&w[11..13], b"GT", "{r:?}"),
            ("80", "+") => assert_eq!(&w[11..13], b"GC", "{r:?}"),
            ("61", "+") | ("101", "+") | ("150", "-") => {
                assert_eq!(&w[8..10], b"AG", "{r:?}")
            }
            _ => {}
        }
        assert!(w.iter().all(|b| b"ACGT".contains(b)), "{r:?}");
    }
    // chr2 is held out for testing: its acceptor is in test.tsv.
    assert!(rows(&o.output)
        .iter()
        .any(|r| r[0] == "test" && r[1] == "chr2"));
    // Negatives lie inside introns (41..60, 81..100 on +; 151..170 on −), ≥ 3 from every site.
    let negs: Vec<_> = rows(&o.output)
        .into_iter()
        .filter(|r| r[4] == "neither")
        .collect();
    assert_eq!(negs.len(), 3);
    for r in negs {
        let pos: u64 = r[2].parse().unwrap();
        let in_intron = match (r[1].as_str(), r[3].as_str()) {
            ("chr1", "+") => (41..=60).contains(&pos) || (81..=100).contains(&pos),
            ("chr1", "-") => (151..=170).contains(&pos),
            ("chr2", "+") => (6..=39).contains(&pos),
            _ => false,
        };
        assert!(in_intron, "{r:?}");
        for site in [40u64, 61, 80, 101, 150, 171] {
            assert!(r[1] != "chr1" || pos.abs_diff(site) >= 3, "{r:?}");
        }
    }
}

#[test]
fn gtf_gives_the_same_sites_as_gff3() {
    let dir = tempfile::tempdir().unwrap();
    let a = options(dir.path(), GFF3, "a.gff3");
    let b = options(dir.path(), &gtf(), "a.gtf");
    splice::run(&a).unwrap();
    splice::run(&b).unwrap();
    assert_eq!(rows(&a.output), rows(&b.output));
}

#[test]
fn annotation_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = |text: &str, name: &str| {
        let o = options(dir.path(), text, name);
        format!("{:#}", splice::run(&o).unwrap_err())
    };
    // An exon whose Parent is not defined (line 3 of the file).
    let e = err(
        "##gff-version 3\nchr1\tt\tgene\t1\t90\t.\t+\t.\tID=g\nchr1\tt\texon\t1\t9\t.\t+\t.\tParent=nope\n",
        "p.gff3",
    );
    assert!(e.contains("p.gff3:3") && e.contains("nope"), "{e}");
    // An exon without any parent.
    let e = err("chr1\tt\texon\t1\t9\t.\t+\t.\tID=x\n", "q.gff3");
    assert!(e.contains("q.gff3:1") && e.contains("no Parent"), "{e}");
    // A chromosome the FASTA lacks (held out for testing, as chr2 was).
    let mut o = options(dir.path(), &GFF3.replace("chr2", "chr9"), "r.gff3");
    o.test_chroms = vec!["chr9".into()];
    let e = format!("{:#}", splice::run(&o).unwrap_err());
    assert!(e.contains("chr9") && e.contains("g.fa"), "{e}");
    // A chromosome named for a split that the annotation does not have.
    let e = err(&GFF3.replace("chr2", "chr9"), "r2.gff3");
    assert!(
        e.contains("--test-chroms chr2: no transcript of") && e.contains("chr1, chr9"),
        "{e}"
    );
    // An 8-column line, named by its own line number.
    let e = err(
        "##gff-version 3\nchr1\tt\tgene\t1\t90\t.\t+\t.\tID=g\nchr1\tt\texon\t1\t9\t.\t+\tParent=g\n",
        "cols.gff3",
    );
    assert!(e.contains("cols.gff3:3: 8 tab-separated columns"), "{e}");
    // Nothing to make a dataset of: a single-exon transcript only, --max-per-class 0, a
    // window longer than any chromosome.
    let mut o = options(
        dir.path(),
        "chr1\tt\tmRNA\t1\t90\t.\t+\t.\tID=t\nchr1\tt\texon\t1\t9\t.\t+\t.\tParent=t\n",
        "one.gff3",
    );
    o.test_chroms = vec!["chr1".into()];
    let e = format!("{:#}", splice::run(&o).unwrap_err());
    assert!(
        e.contains("no splice site") && e.contains("1 of them with a single exon"),
        "{e}"
    );
    let mut o = options(dir.path(), GFF3, "cap.gff3");
    o.max_per_class = 0;
    let e = format!("{:#}", splice::run(&o).unwrap_err());
    assert!(e.contains("--max-per-class 0"), "{e}");
    let mut o = options(dir.path(), GFF3, "long.gff3");
    o.window = 100_000_000;
    let e = format!("{:#}", splice::run(&o).unwrap_err());
    assert!(
        e.contains("ran off their sequence (--window 100000000 too long?)"),
        "{e}"
    );
    // An exon past the end of its chromosome (line 17: chr2's second exon).
    let text = GFF3.replace("chr2\tt\texon\t40\t60", "chr2\tt\texon\t40\t61");
    let e = err(&text, "s.gff3");
    assert!(e.contains("s.gff3:17") && e.contains("past the end"), "{e}");
    // A GTF exon without transcript_id.
    let e = err("chr1\tt\texon\t1\t9\t.\t+\t.\tgene_id \"g\";\n", "t.gtf");
    assert!(e.contains("t.gtf:1") && e.contains("transcript_id"), "{e}");
}

/// The real chrX slice: GENCODE's GFF3 and GTF give the same 2,947 donors and 2,949 acceptors
/// (the counts its README states), nearly all GT/AG, and the same windows.
#[test]
fn chrx_gff3_and_gtf_agree() {
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::shared_data();
    let run = |ann: &str| {
        let o = Options {
            fasta: data.join("grch37_chrX_1-70Mb.fa.gz"),
            annotation: data.join(ann),
            output: dir.path().join(ann),
            window: 400,
            max_per_class: 10_000,
            negatives: None,
            negative_kind: NegativeKind::Random,
            margin: 50,
            seed: 0,
            split: Some(SplitKind::Random),
            validation_chroms: vec![],
            test_chroms: vec![],
        };
        let s = splice::run(&o).unwrap();
        (s, rows(&o.output))
    };
    let (a, ra) = run("grch37_chrX_1-70Mb.gencode24.gff3");
    let (b, rb) = run("grch37_chrX_1-70Mb.gencode24.gtf");
    let total =
        |s: &splice::Summary, class: &str| -> usize { s.counts.values().map(|c| c[class]).sum() };
    // One acceptor window runs into an N run and is dropped (counted).
    assert_eq!(total(&a, "donor"), 2947);
    assert_eq!(
        total(&a, "acceptor") + a.skipped.window_with_n["acceptor"],
        2949
    );
    assert!(a.donors_with_gt > 0.98 && a.acceptors_with_ag > 0.99);
    assert_eq!(ra, rb);
    assert_eq!(total(&b, "neither"), total(&a, "neither"));
}

/// The harder datasets on chrX: decoy negatives carry GT or AG where a site's would be (so the
/// two-letter rule cannot tell them apart), gene-body negatives lie in the genes, and a gene
/// split never puts one gene's windows in two splits.
#[test]
fn chrx_decoys_gene_bodies_and_a_gene_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = crate::common::shared_data();
    let run = |kind: NegativeKind, split: Option<SplitKind>, name: &str| {
        let o = Options {
            fasta: data.join("grch37_chrX_1-70Mb.fa.gz"),
            annotation: data.join("grch37_chrX_1-70Mb.gencode24.gff3"),
            output: dir.path().join(name),
            window: 100,
            max_per_class: 10_000,
            negatives: None,
            negative_kind: kind,
            margin: 50,
            seed: 0,
            split,
            validation_chroms: vec![],
            test_chroms: vec![],
        };
        let s = splice::run(&o).unwrap();
        (s, o.output)
    };
    let (decoy, out) = run(NegativeKind::Decoy, None, "decoy");
    assert_eq!(decoy.split, SplitKind::Gene, "gene is the default split");
    let neither = &decoy.dinucleotides["neither"];
    let share = neither.gt_at_donor_offset + neither.ag_at_acceptor_offset;
    assert!(
        share >= 0.999,
        "every decoy carries GT or AG at its offset: {neither:?}"
    );
    assert!(
        (neither.gt_at_donor_offset - 0.5).abs() < 0.05,
        "half donor-like: {neither:?}"
    );
    let negatives: usize = decoy.counts.values().map(|c| c["neither"]).sum();
    let donors: usize = decoy.counts.values().map(|c| c["donor"]).sum();
    assert_eq!(
        negatives,
        donors.max(decoy.counts.values().map(|c| c["acceptor"]).sum())
    );
    assert!(decoy.decoy_candidates[0] > 100_000 && decoy.decoy_candidates[1] > 100_000);
    // Every gene in one split.
    let mut home = std::collections::HashMap::new();
    for split in ["train", "validation", "test"] {
        let text = std::fs::read_to_string(out.join(format!("{split}.tsv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("chrom\tstart\tend\tstrand\tclass\tlabel\tgroup\tsequence")
        );
        for l in lines {
            let gene = l.split('\t').nth(6).unwrap().to_owned();
            assert!(!gene.is_empty());
            let first = home.entry(gene.clone()).or_insert(split);
            assert_eq!(*first, split, "gene {gene} in {first} and {split}");
        }
    }
    let test: usize = decoy.counts["test"].values().sum();
    let all: usize = decoy.counts.values().flat_map(|c| c.values()).sum();
    assert!(
        (0.09..0.13).contains(&(test as f64 / all as f64)),
        "{test} of {all}"
    );

    let (body, _) = run(NegativeKind::GeneBody, Some(SplitKind::Random), "body");
    let (random, _) = run(NegativeKind::Random, Some(SplitKind::Random), "random");
    // Random intron positions rarely look like sites; gene-body ones no more.
    for s in [&body, &random] {
        let n = &s.dinucleotides["neither"];
        assert!(
            n.gt_at_donor_offset + n.ag_at_acceptor_offset < 0.3,
            "{n:?}"
        );
    }
    // The same seed, the same files.
    let (again, out2) = run(NegativeKind::Decoy, None, "decoy-again");
    assert_eq!(again.counts, decoy.counts);
    assert_eq!(
        std::fs::read(out.join("test.tsv")).unwrap(),
        std::fs::read(out2.join("test.tsv")).unwrap()
    );
}
