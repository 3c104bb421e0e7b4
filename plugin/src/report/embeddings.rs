//! A summary of an `embed` output (PREFIX.npy + PREFIX.tsv): rows and columns, the rows' L2
//! norms, and a 2-D principal-component projection coloured by record. A genome's per-token
//! output has billions of rows, so at most `MAX_ROWS` evenly spaced rows are read (by seeking:
//! the file is never loaded whole).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::chart::Series;
use crate::embed::INDEX_HEADER;

pub const MAX_ROWS: u64 = 2000;
/// Records beyond this many are drawn together as "other".
const MAX_COLOURS: usize = 9;

pub struct Summary {
    pub rows: u64,
    pub cols: usize,
    pub records: usize,
    pub sampled: usize,
    pub norms: Vec<f64>,
    /// One series per record (the most sampled ones), then "other".
    pub projection: Vec<Series>,
    /// The share of the sampled rows' variance on each of the two axes.
    pub explained: [f64; 2],
}

/// Each index line's seq_id and first row.
fn read_index(tsv: &Path, rows: u64) -> Result<Vec<(String, u64)>> {
    let f = std::fs::File::open(tsv).with_context(|| format!("{}: cannot open", tsv.display()))?;
    let mut lines = BufReader::new(f).lines();
    match lines.next() {
        Some(Ok(h)) if h == INDEX_HEADER => {}
        _ => bail!(
            "{}:1: not a dnabert embed index (header {INDEX_HEADER:?})",
            tsv.display()
        ),
    }
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        let line = line.with_context(|| format!("{}: cannot read", tsv.display()))?;
        let f: Vec<&str> = line.split('\t').collect();
        let row = match f[..] {
            [id, _, _, row] => (id, row.parse::<u64>().ok().filter(|&r| r <= rows)),
            _ => bail!("{}:{}: expected 4 columns", tsv.display(), i + 2),
        };
        let Some(r) = row.1 else {
            bail!(
                "{}:{}: the row is not a number of at most {rows}",
                tsv.display(),
                i + 2
            );
        };
        out.push((row.0.to_owned(), r));
    }
    Ok(out)
}

pub fn summarise(prefix: &Path) -> Result<Summary> {
    let (npy, tsv) = crate::embed::output_paths(prefix);
    let (rows, cols, data_at) = crate::npy::read_header(&npy)?;
    let index = read_index(&tsv, rows)?;
    let take = rows.min(MAX_ROWS);
    let mut f =
        std::fs::File::open(&npy).with_context(|| format!("{}: cannot open", npy.display()))?;
    let mut sample = Vec::with_capacity(take as usize);
    let mut buf = vec![0u8; cols * 4];
    for i in 0..take {
        // Evenly spaced over the file, first row included.
        let r = (i as u128 * rows as u128 / take as u128) as u64;
        f.seek(SeekFrom::Start(data_at + r * cols as u64 * 4))
            .and_then(|_| f.read_exact(&mut buf))
            .with_context(|| format!("{}: cannot read row {r}", npy.display()))?;
        let v: Vec<f64> = buf
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64)
            .collect();
        // The row's record: the last index line that starts at or before it.
        let at = index.partition_point(|(_, first)| *first <= r);
        let record = at.checked_sub(1).map_or("?", |j| index[j].0.as_str());
        sample.push((record.to_owned(), v));
    }
    let norms = sample
        .iter()
        .map(|(_, v)| v.iter().map(|x| x * x).sum::<f64>().sqrt())
        .collect();
    let (coords, explained) =
        project(&sample.iter().map(|(_, v)| v.as_slice()).collect::<Vec<_>>());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (r, _) in &sample {
        *counts.entry(r.as_str()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let shown: Vec<&str> = by_count.iter().take(MAX_COLOURS).map(|(r, _)| *r).collect();
    let mut groups: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for ((r, _), p) in sample.iter().zip(&coords) {
        let g = shown.iter().position(|s| s == r).unwrap_or(shown.len());
        groups.entry(g).or_default().push(*p);
    }
    let projection = groups
        .into_iter()
        .map(|(g, pts)| Series::new(shown.get(g).copied().unwrap_or("other records"), pts))
        .collect();
    Ok(Summary {
        rows,
        cols,
        records: {
            let mut ids: Vec<&str> = index.iter().map(|(id, _)| id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        },
        sampled: sample.len(),
        norms,
        projection,
        explained,
    })
}

/// The rows' coordinates on their first two principal components (power iteration on the
/// centred rows, the second deflated against the first; deterministic), and each component's
/// share of the total variance.
pub fn project(rows: &[&[f64]]) -> (Vec<(f64, f64)>, [f64; 2]) {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    if n == 0 || d == 0 {
        return (vec![(0.0, 0.0); n], [0.0, 0.0]);
    }
    let mut mean = vec![0.0; d];
    for r in rows {
        for (m, x) in mean.iter_mut().zip(*r) {
            *m += x / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(x, m)| x - m).collect())
        .collect();
    let total: f64 = centred.iter().flatten().map(|x| x * x).sum();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut components: Vec<Vec<f64>> = Vec::new();
    let mut variance = [0.0; 2];
    for (c, var) in variance.iter_mut().enumerate() {
        // A fixed start that is not orthogonal to the leading directions in practice.
        let mut v: Vec<f64> = (0..d)
            .map(|j| 1.0 + ((j * 7 + c * 3) % 11) as f64 / 10.0)
            .collect();
        for _ in 0..100 {
            // v ← Xᵀ X v, then remove the earlier components and normalise.
            let xv: Vec<f64> = centred.iter().map(|r| dot(r, &v)).collect();
            let mut next = vec![0.0; d];
            for (r, s) in centred.iter().zip(&xv) {
                for (nj, rj) in next.iter_mut().zip(r) {
                    *nj += rj * s;
                }
            }
            for u in &components {
                let p = dot(&next, u);
                next.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
            }
            let norm = dot(&next, &next).sqrt();
            if norm == 0.0 {
                // No variance left: no further component.
                v = vec![0.0; d];
                break;
            }
            next.iter_mut().for_each(|a| *a /= norm);
            v = next;
        }
        *var = centred.iter().map(|r| dot(r, &v).powi(2)).sum::<f64>();
        components.push(v);
    }
    let coords = centred
        .iter()
        .map(|r| (dot(r, &components[0]), dot(r, &components[1])))
        .collect();
    let share = |v: f64| if total > 0.0 { v / total } else { 0.0 };
    (coords, [share(variance[0]), share(variance[1])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_projection_finds_the_axes_of_largest_spread() {
        // Points spread 10 along (1, 1, 0)/√2 and 1 along z: the first component takes ~99%.
        let pts: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                let t = (i as f64 - 19.5) / 2.0;
                // +, -, -, + in each four: uncorrelated with t.
                let z = if i % 4 == 0 || i % 4 == 3 { 0.1 } else { -0.1 };
                vec![t + 3.0, t + 3.0, z]
            })
            .collect();
        let refs: Vec<&[f64]> = pts.iter().map(|p| p.as_slice()).collect();
        let (coords, explained) = project(&refs);
        assert!(explained[0] > 0.99 && explained[1] > 0.0, "{explained:?}");
        assert!((explained[0] + explained[1] - 1.0).abs() < 1e-9);
        // The first coordinate is the position along the line (up to sign), centred.
        let expect = (pts[0][0] - 3.0) * 2f64.sqrt();
        assert!(
            (coords[0].0.abs() - expect.abs()).abs() < 1e-6,
            "{:?}",
            coords[0]
        );
        assert!((coords[0].1.abs() - 0.1).abs() < 1e-6);
    }

    #[test]
    fn empty_and_constant_inputs_project_to_the_origin() {
        assert_eq!(project(&[]).0.len(), 0);
        let same = [1.0, 2.0];
        let (c, e) = project(&[&same, &same]);
        assert_eq!(c, vec![(0.0, 0.0), (0.0, 0.0)]);
        assert_eq!(e, [0.0, 0.0]);
    }
}
