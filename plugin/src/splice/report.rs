//! The seed's splice-site evaluation: from a 3-class model's predictions (donor 0, acceptor 1,
//! neither 2), one 2 × 2 confusion matrix for donors and one for acceptors, each with accuracy,
//! MCC and F1, and their averages.
//!
//! The donor table counts the examples whose true class is donor or neither (the acceptor table
//! likewise). A correct site call is a true positive, a correct "neither" a true negative, a
//! true site called "neither" a false negative, and every other call of a site is a false
//! positive: "neither" called a donor or an acceptor, and — as the seed counts it — a donor
//! called an acceptor (or the reverse).

use serde::Serialize;

use super::sites::Class;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct SiteTable {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub r#fn: u64,
    pub accuracy: f64,
    pub mcc: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
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

/// The seed's two tables, as Markdown, with the seed's numbers beside ours.
pub fn markdown(r: &SpliceReport, title: &str) -> String {
    let seed = [
        ("donor_accuracy", 0.9491),
        ("acceptor_accuracy", 0.9345),
        ("donor_mcc", 0.8982),
        ("acceptor_mcc", 0.8691),
        ("donor_f1", 0.9502),
        ("acceptor_f1", 0.9361),
    ];
    let ours = [
        r.donor.accuracy,
        r.acceptor.accuracy,
        r.donor.mcc,
        r.acceptor.mcc,
        r.donor.f1,
        r.acceptor.f1,
    ];
    let mut s =
        format!("## {title}\n\n| Metric | Ours | Seed (BioNeMo DNABERT) |\n|---|---|---|\n");
    for ((name, theirs), ours) in seed.iter().zip(ours) {
        s += &format!("| {name} | {ours:.4} | {theirs:.4} |\n");
    }
    s += "\n**Average Scores**\n\n| Metric | Ours | Seed |\n|---|---|---|\n";
    for (name, ours, theirs) in [
        ("avg_accuracy", r.avg_accuracy, 0.9418),
        ("avg_mcc", r.avg_mcc, 0.8837),
        ("avg_f1", r.avg_f1, 0.9432),
    ] {
        s += &format!("| {name} | {ours:.4} | {theirs:.4} |\n");
    }
    s += &format!(
        "\nConfusion (TP/FP/TN/FN): donor {}/{}/{}/{}, acceptor {}/{}/{}/{}; {} test examples.\n",
        r.donor.tp,
        r.donor.fp,
        r.donor.tn,
        r.donor.r#fn,
        r.acceptor.tp,
        r.acceptor.fp,
        r.acceptor.tn,
        r.acceptor.r#fn,
        r.examples
    );
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
}
