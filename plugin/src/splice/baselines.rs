//! What a model must beat on a splice-site test set, computed on the same rows:
//! - the **GT/AG rule**: GT at the donor offset → donor, else AG at the acceptor offset →
//!   acceptor, else neither;
//! - a **position weight matrix** per class, as splice-site finders scored sites before deep
//!   learning: base frequencies at each position of the window's centre (±`PWM_HALF` bases around
//!   the site), learnt on the training split with a pseudocount; a window goes to the class with
//!   the highest log-likelihood plus log prior (a position-independent, naive-Bayes model).
//!
//! Windows have the site at index W/2: a donor's GT at W/2+1..W/2+2, an acceptor's AG at
//! W/2−2..W/2−1 (`splice-sites`).

use super::sites::Class;

/// Bases on each side of the site that the PWM reads.
pub const PWM_HALF: usize = 20;

fn code(b: u8) -> Option<usize> {
    match b.to_ascii_uppercase() {
        b'A' => Some(0),
        b'C' => Some(1),
        b'G' => Some(2),
        b'T' => Some(3),
        _ => None,
    }
}

/// The GT/AG rule's class for a window.
pub fn gt_ag(window: &[u8]) -> usize {
    let c = window.len() / 2;
    let at = |r: std::ops::Range<usize>| window.get(r).map(|s| s.to_ascii_uppercase());
    if at(c + 1..c + 3).as_deref() == Some(b"GT") {
        Class::Donor as usize
    } else if c >= 2 && at(c - 2..c).as_deref() == Some(b"AG") {
        Class::Acceptor as usize
    } else {
        Class::Neither as usize
    }
}

/// Log-odds weight matrices of the three classes over the positions around the site.
pub struct Pwm {
    /// `log_p[class][position][base]`.
    log_p: Vec<Vec<[f64; 4]>>,
    log_prior: [f64; 3],
    /// The first window index read, and how many.
    from: usize,
    len: usize,
}

impl Pwm {
    /// Learns the matrices from labelled training windows (all of one length `w`).
    pub fn train(rows: &[(&[u8], usize)], w: usize) -> Self {
        let c = w / 2;
        let from = c.saturating_sub(PWM_HALF);
        let len = (c + PWM_HALF + 1).min(w) - from;
        let mut counts = vec![vec![[1.0f64; 4]; len]; 3]; // pseudocount 1
        let mut per_class = [0usize; 3];
        for (seq, label) in rows {
            if *label >= 3 || seq.len() != w {
                continue;
            }
            per_class[*label] += 1;
            for (i, &b) in seq[from..from + len].iter().enumerate() {
                if let Some(k) = code(b) {
                    counts[*label][i][k] += 1.0;
                }
            }
        }
        let total: usize = per_class.iter().sum();
        let log_p = counts
            .into_iter()
            .map(|class| {
                class
                    .into_iter()
                    .map(|pos| {
                        let n: f64 = pos.iter().sum();
                        pos.map(|c| (c / n).ln())
                    })
                    .collect()
            })
            .collect();
        let log_prior = per_class.map(|n| ((n as f64 + 1.0) / (total as f64 + 3.0)).ln());
        Self {
            log_p,
            log_prior,
            from,
            len,
        }
    }

    /// The class with the highest log-likelihood plus log prior.
    pub fn predict(&self, window: &[u8]) -> usize {
        let mut best = (f64::NEG_INFINITY, Class::Neither as usize);
        for class in 0..3 {
            let mut score = self.log_prior[class];
            for i in 0..self.len {
                if let Some(k) = window.get(self.from + i).and_then(|&b| code(b)) {
                    score += self.log_p[class][i][k];
                }
            }
            if score > best.0 {
                best = (score, class);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_reads_the_dinucleotides_at_the_site_offsets() {
        let mut w = vec![b'C'; 20]; // site at 10
        assert_eq!(gt_ag(&w), 2);
        w[11..13].copy_from_slice(b"GT");
        assert_eq!(gt_ag(&w), 0);
        let mut w = vec![b'C'; 20];
        w[8..10].copy_from_slice(b"ag");
        assert_eq!(gt_ag(&w), 1);
    }

    #[test]
    fn a_pwm_learns_what_tells_the_classes_apart() {
        // Donors: GT after the site and a G before; acceptors: AG before; neither: random-ish.
        let make = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut w = b"ACGTTGCAACGTTGCAACGTTGCAACGTTGCAACGTTGCAACGTTGCA".to_vec();
            w.truncate(40);
            f(&mut w);
            w
        };
        let donor = make(&|w| {
            w[21..23].copy_from_slice(b"GT");
            w[20] = b'G';
        });
        let acceptor = make(&|w| w[18..20].copy_from_slice(b"AG"));
        let neither = make(&|w| {
            w[21..23].copy_from_slice(b"CC");
            w[18..20].copy_from_slice(b"TT");
        });
        let rows: Vec<(&[u8], usize)> = (0..30)
            .flat_map(|_| {
                [
                    (donor.as_slice(), 0),
                    (acceptor.as_slice(), 1),
                    (neither.as_slice(), 2),
                ]
            })
            .collect();
        let pwm = Pwm::train(&rows, 40);
        assert_eq!(pwm.predict(&donor), 0);
        assert_eq!(pwm.predict(&acceptor), 1);
        assert_eq!(pwm.predict(&neither), 2);
    }
}
