//! Train / validation / test splits of the windows, three ways: per class at random (80/10/10),
//! by gene (every gene's windows in one split, so no test window comes from a transcript the
//! model trained on), or by named chromosomes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::sites::{Class, Site};
use crate::rng::{shuffle, Stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// 80/10/10 per class, a seeded shuffle (windows of one gene may fall in every split).
    Random,
    /// Genes dealt to the splits in a seeded order until test and validation each hold 10% of
    /// the windows: every gene's windows in one split.
    Gene,
    /// --validation-chroms and --test-chroms hold those chromosomes out.
    Chroms,
}

pub type Windows = Vec<(Site, Vec<u8>)>;

/// The windows by split name ("train", "validation", "test").
pub fn split(
    windows: BTreeMap<Class, Windows>,
    kind: SplitKind,
    gene_of: &HashMap<&str, &str>,
    seed: u64,
    validation_chroms: &[String],
    test_chroms: &[String],
) -> BTreeMap<&'static str, Windows> {
    let mut out: BTreeMap<&'static str, Windows> = BTreeMap::new();
    match kind {
        SplitKind::Random => {
            for (class, mut list) in windows {
                shuffle(&mut list, seed, Stream::SpliceSplit(class as u64));
                let n = list.len();
                let (nv, nt) = (
                    (n as f64 * 0.1).round() as usize,
                    (n as f64 * 0.1).round() as usize,
                );
                let test = list.split_off(n - nt);
                let val = list.split_off(n - nt - nv);
                out.entry("train").or_default().extend(list);
                out.entry("validation").or_default().extend(val);
                out.entry("test").or_default().extend(test);
            }
        }
        SplitKind::Chroms => {
            for item in windows.into_values().flatten() {
                let to = if test_chroms.contains(&item.0.chrom) {
                    "test"
                } else if validation_chroms.contains(&item.0.chrom) {
                    "validation"
                } else {
                    "train"
                };
                out.entry(to).or_default().push(item);
            }
        }
        SplitKind::Gene => {
            let gene = |s: &Site| -> String {
                gene_of
                    .get(s.transcript.as_str())
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| s.transcript.clone())
            };
            let all: Windows = windows.into_values().flatten().collect();
            let mut per_gene: BTreeMap<String, usize> = BTreeMap::new();
            for (s, _) in &all {
                *per_gene.entry(gene(s)).or_default() += 1;
            }
            let mut genes: Vec<String> = per_gene
                .keys()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            shuffle(&mut genes, seed, Stream::SpliceGenes);
            let target = (all.len() as f64 * 0.1).round() as usize;
            let (mut in_test, mut in_val) = (0, 0);
            let mut to: HashMap<String, &'static str> = HashMap::new();
            for g in genes {
                let n = per_gene[&g];
                let dest = if in_test < target {
                    in_test += n;
                    "test"
                } else if in_val < target {
                    in_val += n;
                    "validation"
                } else {
                    "train"
                };
                to.insert(g, dest);
            }
            for item in all {
                let dest = to[&gene(&item.0)];
                out.entry(dest).or_default().push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gene_split_keeps_every_gene_in_one_split() {
        let mut windows: BTreeMap<Class, Windows> = BTreeMap::new();
        let mut gene_of = HashMap::new();
        let names: Vec<String> = (0..40).map(|g| format!("t{g}")).collect();
        let genes: Vec<String> = (0..40).map(|g| format!("g{}", g / 2)).collect();
        for (t, g) in names.iter().zip(&genes) {
            gene_of.insert(t.as_str(), g.as_str());
        }
        for i in 0..400u64 {
            let class = Class::ALL[(i % 3) as usize];
            let s = Site {
                chrom: "c".into(),
                pos: i,
                plus: true,
                class,
                transcript: names[(i % 40) as usize].clone(),
            };
            windows.entry(class).or_default().push((s, vec![]));
        }
        let out = split(windows, SplitKind::Gene, &gene_of, 7, &[], &[]);
        let mut home: HashMap<&str, &str> = HashMap::new();
        for (name, list) in &out {
            for (s, _) in list {
                let g = gene_of[s.transcript.as_str()];
                assert_eq!(
                    *home.entry(g).or_insert(name),
                    *name,
                    "gene {g} in two splits"
                );
            }
        }
        let n = |k: &str| out.get(k).map_or(0, Vec::len);
        assert_eq!(n("train") + n("validation") + n("test"), 400);
        assert!((40..=60).contains(&n("test")), "{}", n("test"));
        assert!((40..=60).contains(&n("validation")), "{}", n("validation"));
    }
}
