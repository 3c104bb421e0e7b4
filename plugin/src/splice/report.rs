//! The seed's splice-site evaluation: from a 3-class model's predictions (donor 0, acceptor 1,
//! neither 2), one 2 × 2 confusion matrix for donors and one for acceptors, each with accuracy,
//! MCC and F1, and their averages.
//!
//! The donor table counts the examples whose true class is donor or neither (the acceptor table
//! likewise). A correct site call is a true positive, a correct "neither" a true negative, a
//! true site called "neither" a false negative, and every other call of a site is a false
//! positive: "neither" called a donor or an acceptor, and — as the seed counts it — a donor
//! called an acceptor (or the reverse).
//!
//! Several runs (fine-tuning seeds) are summarised as mean ± sd, with a bootstrap 95% interval
//! over the test rows, beside baselines on the same rows (`baselines.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sites::Class;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct SiteTable {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub r#fn: u64,
    pub accuracy: f64,
    pub mcc: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpliceReport {
    pub donor: SiteTable,
    pub acceptor: SiteTable,
    pub avg_accuracy: f64,
    pub avg_mcc: f64,
    pub avg_f1: f64,
    pub examples: usize,
}

fn table(site: Class, truth: &[usize], pred: &[usize]) -> SiteTable {
    let (s, neither) = (site as usize, Class::Neither as usize);
    let mut t = SiteTable::default();
    for (&y, &p) in truth.iter().zip(pred) {
        if y != s && y != neither {
            continue;
        }
        match (y == s, p == y, p == neither) {
            (true, true, _) => t.tp += 1,
            (false, true, _) => t.tn += 1,
            (true, false, true) => t.r#fn += 1,
            _ => t.fp += 1,
        }
    }
    let (tp, fp, tn, fnn) = (t.tp as f64, t.fp as f64, t.tn as f64, t.r#fn as f64);
    let n = tp + fp + tn + fnn;
    t.accuracy = if n > 0.0 { (tp + tn) / n } else { 0.0 };
    let denom = ((tp + fp) * (tp + fnn) * (tn + fp) * (tn + fnn)).sqrt();
    t.mcc = if denom > 0.0 {
        (tp * tn - fp * fnn) / denom
    } else {
        0.0
    };
    t.f1 = if tp > 0.0 {
        2.0 * tp / (2.0 * tp + fp + fnn)
    } else {
        0.0
    };
    t
}

pub fn compute(truth: &[usize], pred: &[usize]) -> SpliceReport {
    let donor = table(Class::Donor, truth, pred);
    let acceptor = table(Class::Acceptor, truth, pred);
    SpliceReport {
        donor,
        acceptor,
        avg_accuracy: (donor.accuracy + acceptor.accuracy) / 2.0,
        avg_mcc: (donor.mcc + acceptor.mcc) / 2.0,
        avg_f1: (donor.f1 + acceptor.f1) / 2.0,
        examples: truth.len(),
    }
}

/// The metrics of a report, in the order tables show them.
pub const METRICS: [&str; 9] = [
    "donor_accuracy",
    "acceptor_accuracy",
    "donor_mcc",
    "acceptor_mcc",
    "donor_f1",
    "acceptor_f1",
    "avg_accuracy",
    "avg_mcc",
    "avg_f1",
];

/// The BioNeMo DNABERT model card's figures: another dataset and setting, shown only when asked.
const REFERENCE: [f64; 9] = [
    0.9491, 0.9345, 0.8982, 0.8691, 0.9502, 0.9361, 0.9418, 0.8837, 0.9432,
];

impl SpliceReport {
    pub fn values(&self) -> [f64; 9] {
        [
            self.donor.accuracy,
            self.acceptor.accuracy,
            self.donor.mcc,
            self.acceptor.mcc,
            self.donor.f1,
            self.acceptor.f1,
            self.avg_accuracy,
            self.avg_mcc,
            self.avg_f1,
        ]
    }
}

pub type ByMetric<T> = BTreeMap<String, T>;

fn by_metric<T>(values: impl IntoIterator<Item = T>) -> ByMetric<T> {
    METRICS.iter().map(|m| m.to_string()).zip(values).collect()
}

/// Something the model is compared with on the same rows — a rule, a PWM, or another model's
/// fine-tuning runs — and the model's lift over it (model − it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    /// Its runs' tables (one for a rule).
    pub runs: Vec<SpliceReport>,
    pub mean: ByMetric<f64>,
    pub sd: ByMetric<f64>,
    pub ci95: ByMetric<[f64; 2]>,
    pub lift: ByMetric<Lift>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Lift {
    pub mean: f64,
    pub ci95: [f64; 2],
    /// The lift in standard deviations across seeds (the pooled sd of the model's runs and
    /// the compared model's runs), when both have at least two runs.
    pub in_sd: Option<f64>,
}

/// One or more fine-tuning runs (seeds) on one test set, with baselines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    pub title: String,
    pub examples: usize,
    /// Each run's tables, in the order given.
    pub runs: Vec<SpliceReport>,
    /// Over the runs: mean and sample standard deviation (0 for one run).
    pub mean: ByMetric<f64>,
    pub sd: ByMetric<f64>,
    /// The run-averaged metric's 95% interval, bootstrapping the test rows.
    pub ci95: ByMetric<[f64; 2]>,
    pub baselines: BTreeMap<String, Baseline>,
    pub bootstrap_samples: usize,
}

pub const BOOTSTRAP: usize = 1000;

fn percentiles(mut v: Vec<f64>) -> [f64; 2] {
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.025), at(0.975)]
}

/// Runs' tables with their per-metric mean and sample sd (0 for one run).
fn summarise(truth: &[usize], runs: &[Vec<usize>]) -> (Vec<SpliceReport>, Vec<f64>, Vec<f64>) {
    let reports: Vec<SpliceReport> = runs.iter().map(|p| compute(truth, p)).collect();
    let n = reports.len() as f64;
    let mean: Vec<f64> = (0..9)
        .map(|i| reports.iter().map(|r| r.values()[i]).sum::<f64>() / n)
        .collect();
    let sd = (0..9)
        .map(|i| {
            if reports.len() < 2 {
                return 0.0;
            }
            let ss: f64 = reports
                .iter()
                .map(|r| (r.values()[i] - mean[i]).powi(2))
                .sum();
            (ss / (n - 1.0)).sqrt()
        })
        .collect();
    (reports, mean, sd)
}

/// The runs' metrics averaged over runs, on the rows `idx` of the test set (`t`: the labels of
/// those rows, resampled once for the model and every baseline).
fn resampled(t: &[usize], runs: &[Vec<usize>], idx: &[usize]) -> [f64; 9] {
    let mut m = [0.0; 9];
    for run in runs {
        let p: Vec<usize> = idx.iter().map(|&i| run[i]).collect();
        let v = compute(t, &p).values();
        (0..9).for_each(|k| m[k] += v[k] / runs.len() as f64);
    }
    m
}

/// The runs' tables, their mean ± sd, bootstrap intervals (the same resamples of the rows for
/// the model and each baseline, so lifts are paired), seeded. A baseline is one or more runs
/// of predictions (a rule is one; another model's seeds are several).
pub fn evaluate(
    title: &str,
    truth: &[usize],
    runs: &[Vec<usize>],
    baselines: &[(&str, Vec<Vec<usize>>)],
) -> Evaluation {
    use rand_chacha::rand_core::RngCore;
    let (reports, mean, sd) = summarise(truth, runs);
    let n = truth.len();
    let mut rng = crate::rng::rng(0, crate::rng::Stream::Bootstrap, 0);
    let mut model_samples = vec![vec![]; 9];
    let mut base_samples = vec![vec![vec![]; 9]; baselines.len()];
    let mut lift_samples = vec![vec![vec![]; 9]; baselines.len()];
    for _ in 0..BOOTSTRAP {
        let idx: Vec<usize> = (0..n)
            .map(|_| (rng.next_u64() % n as u64) as usize)
            .collect();
        let t: Vec<usize> = idx.iter().map(|&i| truth[i]).collect();
        let m = resampled(&t, runs, &idx);
        (0..9).for_each(|k| model_samples[k].push(m[k]));
        for (b, (_, base_runs)) in baselines.iter().enumerate() {
            let v = resampled(&t, base_runs, &idx);
            for k in 0..9 {
                base_samples[b][k].push(v[k]);
                lift_samples[b][k].push(m[k] - v[k]);
            }
        }
    }
    let baselines = baselines
        .iter()
        .enumerate()
        .map(|(b, (name, base_runs))| {
            let (b_reports, b_mean, b_sd) = summarise(truth, base_runs);
            let lift = by_metric((0..9).map(|k| Lift {
                mean: mean[k] - b_mean[k],
                ci95: percentiles(lift_samples[b][k].clone()),
                in_sd: (runs.len() > 1 && base_runs.len() > 1).then(|| {
                    let pooled = ((sd[k].powi(2) + b_sd[k].powi(2)) / 2.0).sqrt();
                    (mean[k] - b_mean[k]) / pooled
                }),
            }));
            let ci95 = by_metric(base_samples[b].iter().map(|s| percentiles(s.clone())));
            let baseline = Baseline {
                runs: b_reports,
                mean: by_metric(b_mean),
                sd: by_metric(b_sd),
                ci95,
                lift,
            };
            (name.to_string(), baseline)
        })
        .collect();
    Evaluation {
        title: title.to_owned(),
        examples: n,
        runs: reports,
        mean: by_metric(mean),
        sd: by_metric(sd),
        ci95: by_metric(model_samples.into_iter().map(percentiles)),
        baselines,
        bootstrap_samples: BOOTSTRAP,
    }
}

fn label(n: &str) -> String {
    match n {
        "gt_ag" => "GT/AG rule".to_string(),
        "pwm" => "PWM".to_string(),
        other => other.to_string(),
    }
}

/// The evaluation's table: a header and one row per metric; the model's mean (± sd over runs)
/// and 95% interval, each baseline and the model's lift over it; the model card's figures only
/// with `reference`, labelled as what they are. Markdown here, HTML in `dnabert report`.
pub fn metric_table(e: &Evaluation, reference: bool) -> (Vec<String>, Vec<Vec<String>>) {
    let names: Vec<&String> = e.baselines.keys().collect();
    let runs = e.runs.len();
    let mut header = vec!["Metric".to_string(), "Model".into(), "95% CI".into()];
    for n in &names {
        header.push(label(n));
    }
    for n in &names {
        header.push(format!("Lift over {}", label(n)));
    }
    if reference {
        header.push("Reference: BioNeMo DNABERT card (other data)".into());
    }
    let get = |m: &ByMetric<f64>, metric: &str| m.get(metric).copied().unwrap_or(f64::NAN);
    let mut rows = Vec::new();
    for (k, metric) in METRICS.iter().enumerate() {
        let m = get(&e.mean, metric);
        let ci = e.ci95.get(*metric).copied().unwrap_or([f64::NAN; 2]);
        let mut row = vec![
            metric.to_string(),
            if runs > 1 {
                format!("{m:.4} ± {:.4}", get(&e.sd, metric))
            } else {
                format!("{m:.4}")
            },
            format!("{:.4}–{:.4}", ci[0], ci[1]),
        ];
        for n in &names {
            let b = &e.baselines[*n];
            row.push(if b.runs.len() > 1 {
                format!("{:.4} ± {:.4}", get(&b.mean, metric), get(&b.sd, metric))
            } else {
                format!("{:.4}", get(&b.mean, metric))
            });
        }
        for n in &names {
            row.push(match e.baselines[*n].lift.get(*metric) {
                Some(l) => {
                    let in_sd = l.in_sd.map_or(String::new(), |z| format!(", {z:+.1} sd"));
                    format!(
                        "{:+.4} ({:+.4}…{:+.4}{in_sd})",
                        l.mean, l.ci95[0], l.ci95[1]
                    )
                }
                None => "–".into(),
            });
        }
        if reference {
            row.push(format!("{:.4}", REFERENCE[k]));
        }
        rows.push(row);
    }
    (header, rows)
}

/// One line per run (the model's, then each baseline's): its TP/FP/TN/FN for donors and
/// acceptors.
pub fn confusion_lines(e: &Evaluation) -> Vec<String> {
    let confusion = |r: &SpliceReport| {
        format!(
            "donor {}/{}/{}/{}, acceptor {}/{}/{}/{}",
            r.donor.tp,
            r.donor.fp,
            r.donor.tn,
            r.donor.r#fn,
            r.acceptor.tp,
            r.acceptor.fp,
            r.acceptor.tn,
            r.acceptor.r#fn
        )
    };
    let mut lines: Vec<String> = e
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| format!("run {}: {}", i + 1, confusion(r)))
        .collect();
    for (n, b) in &e.baselines {
        for (i, r) in b.runs.iter().enumerate() {
            let run = if b.runs.len() > 1 {
                format!(" run {}", i + 1)
            } else {
                String::new()
            };
            lines.push(format!("{}{run}: {}", label(n), confusion(r)));
        }
    }
    lines
}

/// The caption above the table: test examples, runs, the intervals' bootstrap.
pub fn caption(e: &Evaluation) -> String {
    let runs = e.runs.len();
    format!(
        "{} test examples. Model: {}; 95% intervals bootstrap the test rows ({} resamples){}.",
        e.examples,
        if runs == 1 {
            "one fine-tuning run".to_string()
        } else {
            format!("mean ± sd of {runs} fine-tuning runs (seeds)")
        },
        e.bootstrap_samples,
        if e.baselines.is_empty() {
            ""
        } else {
            "; lifts are the model minus the baseline, with paired intervals"
        }
    )
}

/// The evaluation as Markdown: the caption, [`metric_table`] and the runs' confusion counts.
pub fn markdown(e: &Evaluation, reference: bool) -> String {
    let (header, rows) = metric_table(e, reference);
    let mut s = format!("## {}\n\n{}\n\n", e.title, caption(e));
    s += &format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        s += &format!("| {} |\n", row.join(" | "));
    }
    s += "\nConfusion (TP/FP/TN/FN):\n";
    for line in confusion_lines(e) {
        s += &format!("- {line}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_seeds_rules() {
        // (truth, predicted): donor=0, acceptor=1, neither=2
        let pairs = [
            (0, 0), // donor TP
            (0, 1), // donor called acceptor: donor FP
            (0, 2), // donor FN
            (2, 2), // TN in both tables
            (2, 0), // donor FP
            (2, 1), // acceptor FP
            (1, 1), // acceptor TP
            (1, 0), // acceptor FP
        ];
        let (t, p): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
        let r = compute(&t, &p);
        assert_eq!(
            (r.donor.tp, r.donor.fp, r.donor.tn, r.donor.r#fn),
            (1, 3, 1, 1)
        );
        assert_eq!(
            (r.acceptor.tp, r.acceptor.fp, r.acceptor.tn, r.acceptor.r#fn),
            (1, 3, 1, 0)
        );
        assert!((r.donor.accuracy - 2.0 / 6.0).abs() < 1e-12);
        assert!((r.donor.f1 - 2.0 / 6.0).abs() < 1e-12);
        // MCC by hand: (1·1 − 3·1) / sqrt(4·2·4·2) = −2/8
        assert!((r.donor.mcc + 0.25).abs() < 1e-12);
        // A perfect model scores 1 everywhere.
        let perfect = compute(&[0, 1, 2, 2], &[0, 1, 2, 2]);
        assert_eq!(
            (perfect.avg_accuracy, perfect.avg_mcc, perfect.avg_f1),
            (1.0, 1.0, 1.0)
        );
    }

    #[test]
    fn several_runs_give_mean_sd_intervals_and_paired_lifts() {
        let truth: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let perfect = truth.clone();
        let mut noisy = truth.clone();
        noisy.iter_mut().step_by(7).for_each(|p| *p = (*p + 1) % 3);
        let all_neither = vec![2; 300];
        let mut noisier = truth.clone();
        noisier
            .iter_mut()
            .step_by(3)
            .for_each(|p| *p = (*p + 1) % 3);
        let others = vec![
            noisier.clone(),
            noisier
                .iter()
                .map(|&p| if p == 0 { 2 } else { p })
                .collect(),
        ];
        let e = evaluate(
            "t",
            &truth,
            &[perfect, noisy],
            &[("rule", vec![all_neither]), ("other", others)],
        );
        let acc = e.mean["avg_accuracy"];
        assert!(acc < 1.0 && acc > 0.9, "{acc}");
        assert!(e.sd["avg_accuracy"] > 0.0);
        let [lo, hi] = e.ci95["avg_accuracy"];
        assert!(lo <= acc && acc <= hi && hi - lo < 0.1, "{lo} {acc} {hi}");
        let lift = e.baselines["rule"].lift["avg_accuracy"];
        assert!(lift.mean > 0.3 && lift.ci95[0] > 0.0, "{lift:?}");
        assert!(
            lift.in_sd.is_none(),
            "a rule has one run: no sd to compare in"
        );
        // Another model's seeds: its mean ± sd, and the lift in pooled sd.
        let other = &e.baselines["other"];
        assert_eq!(other.runs.len(), 2);
        let l = other.lift["avg_accuracy"];
        let pooled =
            ((e.sd["avg_accuracy"].powi(2) + other.sd["avg_accuracy"].powi(2)) / 2.0).sqrt();
        assert!(
            (l.in_sd.unwrap() - l.mean / pooled).abs() < 1e-12 && l.mean > 0.0,
            "{l:?}"
        );
        let md = markdown(&e, false);
        assert!(
            md.contains("Lift over rule") && !md.contains("BioNeMo"),
            "{md}"
        );
        assert!(markdown(&e, true).contains("Reference: BioNeMo DNABERT card"));
        // The same input, the same intervals (seeded).
        let again = evaluate("t", &truth, std::slice::from_ref(&truth), &[]);
        assert_eq!(
            again.ci95,
            evaluate("t", &truth, std::slice::from_ref(&truth), &[]).ci95
        );
        assert_eq!(again.sd["avg_mcc"], 0.0);
    }
}
