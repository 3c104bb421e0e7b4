//! Labelled windows into fine-tuning tables: what `splice-sites` and `make-dataset` share, so
//! that a task gives the same files whether it is built in or a plugin. From the windows a task
//! chose (already cut and oriented: the minus strand's reverse complement), the same window
//! twice is kept once and a window given two labels is dropped; each label is capped at its
//! limit, a seeded sample; the windows are split train/validation/test (by group, at random
//! per label, or by chromosome); and `{train,validation,test}.tsv` are written, each sorted by
//! position, with the columns of [`HEADER`].
//!
//! Every seeded choice here draws from its own `rng` stream, so one `--seed` gives one set of
//! files, whichever command made the windows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::rng::{shuffle, Stream};

pub const SPLITS: [&str; 3] = ["train", "validation", "test"];
/// The tables' columns: 0-based, end-exclusive coordinates; `class` the label's name, `label`
/// its index (what `finetune` reads), `group` what kept windows together in one split.
pub const HEADER: &str = "chrom\tstart\tend\tstrand\tclass\tlabel\tgroup\tsequence\n";

/// One labelled window: `seq` is `[start, end)` of `chrom`, uppercase, reverse-complemented
/// on the minus strand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub chrom: String,
    pub start: u64,
    pub end: u64,
    pub plus: bool,
    pub label: usize,
    pub group: String,
    pub seq: Vec<u8>,
}

impl Row {
    fn place(&self) -> (&str, u64, u64, bool) {
        (&self.chrom, self.start, self.end, self.plus)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// 80/10/10 per label, a seeded shuffle (windows of one gene may fall in every split).
    Random,
    /// Groups (a window's group; by default its transcript's gene) dealt to the splits in a
    /// seeded order until test and validation each hold 10% of the windows: every group's
    /// windows in one split.
    #[value(alias = "group")]
    Gene,
    /// --validation-chroms and --test-chroms hold those chromosomes out.
    Chroms,
}

impl SplitKind {
    /// The split the flags ask for: `chroms` when chromosomes are named, else `gene`.
    pub fn resolve(
        asked: Option<SplitKind>,
        validation_chroms: &[String],
        test_chroms: &[String],
    ) -> Result<SplitKind> {
        let none_named = validation_chroms.is_empty() && test_chroms.is_empty();
        Ok(match (asked, none_named) {
            (Some(SplitKind::Chroms), true) => {
                bail!("--split chroms needs --validation-chroms or --test-chroms")
            }
            (Some(k), false) if k != SplitKind::Chroms => {
                bail!("--validation-chroms/--test-chroms go with --split chroms, not {k:?}")
            }
            (Some(k), _) => k,
            (None, true) => SplitKind::Gene,
            (None, false) => SplitKind::Chroms,
        })
    }
}

/// How the windows become tables.
pub struct Plan<'a> {
    pub labels: &'a [String],
    /// A label's own cap (a task's choice, e.g. as many negatives as sites), else
    /// `max_per_class`.
    pub caps: &'a [Option<usize>],
    pub max_per_class: usize,
    pub seed: u64,
    pub split: SplitKind,
    pub validation_chroms: &'a [String],
    pub test_chroms: &'a [String],
}

/// What was dropped on the way, by label name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Dropped {
    pub with_non_acgt: BTreeMap<String, usize>,
    pub duplicates: usize,
    pub conflicting_labels: usize,
    pub over_class_cap: BTreeMap<String, usize>,
}

/// The three splits, each sorted by position.
pub struct Tables {
    pub splits: [Vec<Row>; 3],
}

impl Tables {
    /// Windows per split, per label name (every label listed, zeros too).
    pub fn counts(&self, labels: &[String]) -> BTreeMap<String, BTreeMap<String, usize>> {
        SPLITS
            .iter()
            .zip(&self.splits)
            .map(|(name, rows)| {
                let mut per: BTreeMap<String, usize> =
                    labels.iter().map(|l| (l.clone(), 0)).collect();
                for r in rows {
                    if let Some(c) = labels.get(r.label).and_then(|l| per.get_mut(l)) {
                        *c += 1;
                    }
                }
                ((*name).to_owned(), per)
            })
            .collect()
    }

    /// Distinct groups per split.
    pub fn groups(&self) -> BTreeMap<String, usize> {
        SPLITS
            .iter()
            .zip(&self.splits)
            .map(|(name, rows)| {
                let g: BTreeSet<&str> = rows.iter().map(|r| r.group.as_str()).collect();
                ((*name).to_owned(), g.len())
            })
            .collect()
    }

    /// Every kept row, all splits.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.splits.iter().flatten()
    }

    /// `{train,validation,test}.tsv` in `dir`, each written atomically.
    pub fn write(&self, labels: &[String], dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        for (name, rows) in SPLITS.iter().zip(&self.splits) {
            let mut text = String::from(HEADER);
            for r in rows {
                let class = labels.get(r.label).map_or("", String::as_str);
                // Writing into a String cannot fail.
                let _ = writeln!(
                    text,
                    "{}\t{}\t{}\t{}\t{class}\t{}\t{}\t{}",
                    r.chrom,
                    r.start,
                    r.end,
                    if r.plus { '+' } else { '-' },
                    r.label,
                    r.group,
                    String::from_utf8_lossy(&r.seq)
                );
            }
            crate::io_util::write_atomic(&dir.join(format!("{name}.tsv")), text.as_bytes())?;
        }
        Ok(())
    }
}

/// The windows, de-duplicated, capped and split (see the module's comment).
pub fn build(mut rows: Vec<Row>, plan: &Plan, dropped: &mut Dropped) -> Tables {
    let name = |label: usize| plan.labels.get(label).cloned().unwrap_or_default();
    // One window per place: the same window twice is kept once, with two labels dropped.
    rows.sort_by(|a, b| (a.place(), a.label).cmp(&(b.place(), b.label)));
    let mut by_label: Vec<Vec<Row>> = (0..plan.labels.len()).map(|_| vec![]).collect();
    let mut it = rows.into_iter().peekable();
    while let Some(first) = it.next() {
        let mut labels_here = BTreeSet::from([first.label]);
        while let Some(next) = it.next_if(|r| r.place() == first.place()) {
            dropped.duplicates += usize::from(next.label == first.label);
            labels_here.insert(next.label);
        }
        if labels_here.len() > 1 {
            dropped.conflicting_labels += 1;
        } else if let Some(list) = by_label.get_mut(first.label) {
            list.push(first);
        }
    }
    // Each label's list is in position order here: the cap's shuffle starts from it.
    for (label, list) in by_label.iter_mut().enumerate() {
        let cap = plan
            .caps
            .get(label)
            .copied()
            .flatten()
            .unwrap_or(plan.max_per_class);
        if list.len() > cap {
            *dropped.over_class_cap.entry(name(label)).or_default() += list.len() - cap;
            shuffle(list, plan.seed, Stream::DatasetCap(label as u64));
            list.truncate(cap);
            list.sort_by(|a, b| a.place().cmp(&b.place()));
        }
    }
    let mut splits = split(by_label, plan);
    for rows in &mut splits {
        rows.sort_by(|a, b| (a.place(), a.label).cmp(&(b.place(), b.label)));
    }
    Tables { splits }
}

/// `round(n / 10)`: the windows validation and test each get.
fn tenth(n: usize) -> usize {
    (n + 5) / 10
}

fn split(by_label: Vec<Vec<Row>>, plan: &Plan) -> [Vec<Row>; 3] {
    let mut out: [Vec<Row>; 3] = [vec![], vec![], vec![]];
    match plan.split {
        SplitKind::Random => {
            for (label, mut list) in by_label.into_iter().enumerate() {
                shuffle(&mut list, plan.seed, Stream::DatasetSplit(label as u64));
                let n = list.len();
                let test = list.split_off(n - tenth(n));
                let validation = list.split_off(n - 2 * tenth(n));
                out[0].extend(list);
                out[1].extend(validation);
                out[2].extend(test);
            }
        }
        SplitKind::Chroms => {
            for r in by_label.into_iter().flatten() {
                let to = if plan.test_chroms.contains(&r.chrom) {
                    2
                } else if plan.validation_chroms.contains(&r.chrom) {
                    1
                } else {
                    0
                };
                out[to].push(r);
            }
        }
        SplitKind::Gene => {
            let all: Vec<Row> = by_label.into_iter().flatten().collect();
            let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &all {
                *per_group.entry(r.group.as_str()).or_default() += 1;
            }
            let mut groups: Vec<&str> = per_group.keys().copied().collect();
            shuffle(&mut groups, plan.seed, Stream::DatasetGroups);
            let target = tenth(all.len());
            let (mut in_test, mut in_validation) = (0, 0);
            let mut to: HashMap<String, usize> = HashMap::new();
            for g in groups {
                let n = per_group.get(g).copied().unwrap_or(0);
                let dest = if in_test < target {
                    in_test += n;
                    2
                } else if in_validation < target {
                    in_validation += n;
                    1
                } else {
                    0
                };
                to.insert(g.to_owned(), dest);
            }
            for r in all {
                let dest = to.get(&r.group).copied().unwrap_or(0);
                out[dest].push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pos: u64, label: usize, group: String) -> Row {
        Row {
            chrom: "c".into(),
            start: pos,
            end: pos + 4,
            plus: true,
            label,
            group,
            seq: b"ACGT".to_vec(),
        }
    }

    fn plan<'a>(labels: &'a [String], split: SplitKind) -> Plan<'a> {
        Plan {
            labels,
            caps: &[],
            max_per_class: 1000,
            seed: 7,
            split,
            validation_chroms: &[],
            test_chroms: &[],
        }
    }

    #[test]
    fn a_group_split_keeps_every_group_in_one_split_with_a_tenth_in_test() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let rows: Vec<Row> = (0..400u64)
            .map(|i| row(i, (i % 3) as usize, format!("g{}", i % 20)))
            .collect();
        let t = build(
            rows,
            &plan(&labels, SplitKind::Gene),
            &mut Dropped::default(),
        );
        let mut home: HashMap<&str, usize> = HashMap::new();
        for (s, rows) in t.splits.iter().enumerate() {
            for r in rows {
                assert_eq!(*home.entry(&r.group).or_insert(s), s, "{} split", r.group);
            }
        }
        let n: Vec<usize> = t.splits.iter().map(Vec::len).collect();
        assert_eq!(n.iter().sum::<usize>(), 400);
        assert!(
            (40..=60).contains(&n[2]) && (40..=60).contains(&n[1]),
            "{n:?}"
        );
    }

    #[test]
    fn duplicates_merge_two_labels_drop_and_caps_are_per_label() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let mut rows: Vec<Row> = (0..10).map(|i| row(i * 10, 0, "g".into())).collect();
        rows.push(row(0, 0, "g".into())); // a duplicate
        rows.push(row(10, 1, "g".into())); // 10 given two labels
        rows.extend((0..5).map(|i| row(1000 + i, 1, "g".into())));
        let caps = [None, Some(2)];
        let p = Plan {
            caps: &caps,
            max_per_class: 6,
            ..plan(&labels, SplitKind::Random)
        };
        let mut d = Dropped::default();
        let t = build(rows, &p, &mut d);
        assert_eq!((d.duplicates, d.conflicting_labels), (1, 1));
        let c = t.counts(&labels);
        let total = |l: &str| c.values().map(|m| m[l]).sum::<usize>();
        assert_eq!((total("a"), total("b")), (6, 2));
        assert_eq!(d.over_class_cap["a"], 3);
        assert_eq!(d.over_class_cap["b"], 3);
        assert!(t.rows().all(|r| r.start != 10));
    }
}
