//! Classification metrics from a confusion matrix: accuracy, per-class precision, recall, F1,
//! and the Matthews correlation coefficient (Gorodkin's multi-class form; the usual one for two
//! classes).

use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClassMetrics {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metrics {
    pub accuracy: f64,
    pub mcc: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

pub fn compute(truth: &[usize], predicted: &[usize], n: usize) -> Metrics {
    let mut confusion = vec![vec![0u64; n]; n];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t][p] += 1;
    }
    let total: u64 = confusion.iter().flatten().sum();
    let correct: u64 = (0..n).map(|i| confusion[i][i]).sum();
    let per_class: Vec<ClassMetrics> = (0..n)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted_c: u64 = (0..n).map(|t| confusion[t][c]).sum();
            let support: u64 = confusion[c].iter().sum();
            let precision = ratio(tp, predicted_c as f64);
            let recall = ratio(tp, support as f64);
            ClassMetrics {
                precision,
                recall,
                f1: ratio(2.0 * precision * recall, precision + recall),
                support,
            }
        })
        .collect();
    // Gorodkin (2004): (c·s − Σ p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²)).
    let s = total as f64;
    let c = correct as f64;
    let t_k: Vec<f64> = (0..n)
        .map(|k| confusion[k].iter().sum::<u64>() as f64)
        .collect();
    let p_k: Vec<f64> = (0..n)
        .map(|k| (0..n).map(|t| confusion[t][k]).sum::<u64>() as f64)
        .collect();
    let pt: f64 = p_k.iter().zip(&t_k).map(|(p, t)| p * t).sum();
    let pp: f64 = p_k.iter().map(|p| p * p).sum();
    let tt: f64 = t_k.iter().map(|t| t * t).sum();
    let mcc = ratio(c * s - pt, ((s * s - pp) * (s * s - tt)).sqrt());
    Metrics {
        accuracy: ratio(c, s),
        mcc,
        macro_f1: per_class.iter().map(|m| m.f1).sum::<f64>() / n as f64,
        per_class,
        confusion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_metrics_by_hand() {
        // tp = 3, fn = 1, fp = 2, tn = 4
        let truth = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        let pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0];
        let m = compute(&truth, &pred, 2);
        assert_eq!(m.confusion, vec![vec![4, 2], vec![1, 3]]);
        assert!((m.accuracy - 0.7).abs() < 1e-12);
        assert!((m.per_class[1].precision - 0.6).abs() < 1e-12);
        assert!((m.per_class[1].recall - 0.75).abs() < 1e-12);
        let mcc = (3.0 * 4.0 - 2.0 * 1.0) / ((5.0f64) * 4.0 * 6.0 * 5.0).sqrt();
        assert!((m.mcc - mcc).abs() < 1e-12, "{} vs {mcc}", m.mcc);
    }

    #[test]
    fn perfect_and_constant_predictions() {
        let t = [0, 1, 2, 2];
        assert!((compute(&t, &t, 3).mcc - 1.0).abs() < 1e-12);
        assert_eq!(compute(&t, &[2, 2, 2, 2], 3).mcc, 0.0);
    }
}
