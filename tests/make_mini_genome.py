#!/usr/bin/env python3
"""Writes tests/fixtures/mini-genome/: a small synthetic genome with a matching annotation, the
bundled data of the workflows' `test` profiles (Nextflow and Snakemake).

    python3 tests/make_mini_genome.py

Three chromosomes of random sequence (a soft-masked stretch and an N run included, as real
assemblies have), and multi-exon genes on both strands whose introns open with GT and close
with AG, written as GFF3 (gene -> mRNA -> exon by Parent) and as GTF (by transcript_id). The
numbers mean nothing biologically: the files exist so that split -> embed -> gather and
splice-sites -> finetune -> report run end to end in seconds. Seeded, so rerunning it rewrites the
same bytes.
"""
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "fixtures" / "mini-genome"
CHROMS = [("chr1", 40_000, 7), ("chr2", 24_000, 4), ("chrM", 6_000, 0)]


def revcomp(s):
    return s[::-1].translate(str.maketrans("ACGTacgt", "TGCAtgca"))


def main():
    rng = random.Random(20261121)
    fasta, gff, gtf = [], ["##gff-version 3"], []
    for chrom, length, n_genes in CHROMS:
        seq = [rng.choice("ACGT") for _ in range(length)]
        genes, pos = [], 500
        for g in range(n_genes):
            exons = []
            start = pos + rng.randrange(200, 800)
            at = start
            for e in range(rng.randrange(2, 6)):
                exon_len = rng.randrange(80, 260)
                exons.append((at, at + exon_len))  # 0-based, end-exclusive
                at += exon_len + rng.randrange(300, 1200)
            if exons[-1][1] + 500 > length:
                break
            strand = "+" if g % 2 == 0 else "-"
            # Canonical splice signals in transcript orientation: intron = GT...AG.
            for (_, a_end), (b_start, _) in zip(exons, exons[1:]):
                intron = "GT" + "".join(seq[a_end + 2 : b_start - 2]) + "AG"
                if strand == "-":
                    intron = revcomp(intron)
                seq[a_end:b_start] = list(intron)
            genes.append((f"{chrom}_g{g + 1}", strand, exons))
            pos = exons[-1][1]
        if chrom == "chr2":  # soft-masked repeat and an assembly gap, away from the genes
            seq[22_000:22_400] = [c.lower() for c in seq[22_000:22_400]]
            seq[23_000:23_300] = ["N"] * 300
        seq = "".join(seq)
        fasta.append(f">{chrom} synthetic\n")
        fasta += [seq[i : i + 60] + "\n" for i in range(0, len(seq), 60)]
        for gene, strand, exons in genes:
            lo, hi = exons[0][0] + 1, exons[-1][1]
            tx = f"{gene}.t1"
            gff.append(f"{chrom}\tmini\tgene\t{lo}\t{hi}\t.\t{strand}\t.\tID={gene}")
            gff.append(f"{chrom}\tmini\tmRNA\t{lo}\t{hi}\t.\t{strand}\t.\tID={tx};Parent={gene}")
            gtf.append(f'{chrom}\tmini\tgene\t{lo}\t{hi}\t.\t{strand}\t.\tgene_id "{gene}";')
            gtf.append(
                f'{chrom}\tmini\ttranscript\t{lo}\t{hi}\t.\t{strand}\t.\tgene_id "{gene}"; transcript_id "{tx}";'
            )
            order = exons if strand == "+" else exons[::-1]
            for n, (s, e) in enumerate(order, 1):
                gff.append(f"{chrom}\tmini\texon\t{s + 1}\t{e}\t.\t{strand}\t.\tID={tx}.e{n};Parent={tx}")
                gtf.append(
                    f'{chrom}\tmini\texon\t{s + 1}\t{e}\t.\t{strand}\t.\tgene_id "{gene}"; '
                    f'transcript_id "{tx}"; exon_number "{n}";'
                )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "genome.fa").write_text("".join(fasta))
    (OUT / "annotation.gff3").write_text("\n".join(gff) + "\n")
    (OUT / "annotation.gtf").write_text("\n".join(gtf) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
