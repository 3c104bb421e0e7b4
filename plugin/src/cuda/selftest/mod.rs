//! `dnabert cuda-check --run` and `--bench`: the GPU checks and benchmark as part of the
//! product, so that a cluster user can tell that a GPU node works before queueing a week of
//! pretraining, and so that a lent GPU runs exactly what the tests run
//! (`plugin/tests/it/gpu_parity.rs` and `train_parity.rs` call these same functions).
//!
//! - `ops`: every op forward and backward against the CPU backend on fresh random inputs, the
//!   outputs that an op overwrites poisoned with NaN first so that an element left unwritten
//!   fails; fused attention at DNABERT size.
//! - `step`: one whole masked-LM step (loss, every gradient, the AdamW update) against the
//!   committed PyTorch fixture (`tests/fixtures/train_k3.safetensors`, compiled in).
//! - `embed`: the encoder forward that `embed --device cuda` runs, on a model folder (the
//!   bundled one by default), against the CPU.
//! - `bench`: DNABERT-base training step and embed, timed with CUDA events.
//!
//! The checks are generic over the backend, so CI runs them on the CPU backend (2 threads
//! against the 1-thread reference): that is how the harness itself is tested without a GPU.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "checks over the compiled-in fixture and the backend's infallible ops"
)]

pub mod bench;
pub mod embed;
pub mod ops;
pub mod step;

use std::fmt;

/// Every check of `cuda-check --run` on `gpu`: the ops with fp32 and with bf16 products, fused
/// attention at DNABERT size, the masked-LM step against PyTorch (fp32, bf16, fused
/// attention), and the embed encoder on `model`.
pub fn run_all(gpu: &crate::cuda::backend::Gpu, model: &std::path::Path) -> Report {
    use crate::cuda::backend::Attention;
    use crate::device::Precision;
    let mut r = Report::new(false);
    let variants = [
        ("fp32", Precision::F32, Attention::Products, FP32),
        ("bf16", Precision::Bf16, Attention::Products, BF16),
        (
            "fp32, fused attention",
            Precision::F32,
            Attention::Fused,
            FP32,
        ),
    ];
    for (tag, precision, attention, bound) in variants {
        let g = gpu.with_precision(precision).with_attention(attention);
        if attention == Attention::Products {
            ops::run(&mut r, &g, tag, bound);
        } else {
            ops::attention_at_size(&mut r, &g, (tag, bound));
        }
        step::run(&mut r, &g, tag, bound);
        embed::run(&mut r, &g, tag, bound, model);
    }
    r
}

/// The bounds, relative to each reference tensor's largest magnitude: fp32 products, and bf16
/// ones (8 bits of mantissa in each product's inputs).
pub const FP32: f32 = 1e-4;
pub const BF16: f32 = 1e-2;

/// The exit status of `cuda-check --run/--bench` where this machine has no usable GPU:
/// automake's "skipped", distinct from a failed check (1).
pub const NO_GPU_EXIT: u8 = 77;

/// How one check came out.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Max error relative to the reference's largest magnitude, and its bound.
    Pass {
        err: f32,
        bound: f32,
    },
    Fail(String),
    /// Not run, and why (a missing model folder, an unsupported shape).
    Skip(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub outcome: Outcome,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass { err, bound } => write!(
                f,
                "PASS\t{}\tmax error {err:.1e} of scale (bound {bound:.0e})",
                self.name
            ),
            Outcome::Fail(why) => write!(f, "FAIL\t{}\t{why}", self.name),
            Outcome::Skip(why) => write!(f, "SKIP\t{}\t{why}", self.name),
        }
    }
}

/// The checks run so far; each is also printed as it completes when `echo` is set.
#[derive(Default)]
pub struct Report {
    pub lines: Vec<Line>,
    pub echo: bool,
}

impl Report {
    pub fn new(echo: bool) -> Self {
        Report {
            lines: vec![],
            echo,
        }
    }

    pub(crate) fn push(&mut self, name: String, outcome: Outcome) {
        let line = Line { name, outcome };
        if self.echo {
            eprintln!("{line}");
        }
        self.lines.push(line);
    }

    /// `got` against `want`: max |got − want| ≤ `bound` × max |want| (+ `bound` × 1e-6, so
    /// an all-zero reference has a floor). A non-finite value where the reference is finite
    /// fails, naming how many: with poisoned outputs, those are elements nothing wrote.
    pub fn close(&mut self, name: impl Into<String>, got: &[f32], want: &[f32], bound: f32) {
        let name = name.into();
        let outcome = compare(got, want, bound);
        self.push(name, outcome);
    }

    /// A check that is a yes or no.
    pub fn check(&mut self, name: impl Into<String>, ok: bool, why: impl Into<String>) {
        let outcome = if ok {
            Outcome::Pass {
                err: 0.0,
                bound: 0.0,
            }
        } else {
            Outcome::Fail(why.into())
        };
        self.push(name.into(), outcome);
    }

    pub fn skip(&mut self, name: impl Into<String>, why: impl Into<String>) {
        self.push(name.into(), Outcome::Skip(why.into()));
    }

    pub fn failures(&self) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| matches!(l.outcome, Outcome::Fail(_)))
            .collect()
    }

    /// "N passed, M failed, K skipped".
    pub fn summary(&self) -> String {
        let count = |f: fn(&Outcome) -> bool| self.lines.iter().filter(|l| f(&l.outcome)).count();
        format!(
            "{} passed, {} failed, {} skipped",
            count(|o| matches!(o, Outcome::Pass { .. })),
            count(|o| matches!(o, Outcome::Fail(_))),
            count(|o| matches!(o, Outcome::Skip(_)))
        )
    }
}

/// See [`Report::close`].
pub fn compare(got: &[f32], want: &[f32], bound: f32) -> Outcome {
    if got.len() != want.len() {
        return Outcome::Fail(format!("{} values for {}", got.len(), want.len()));
    }
    let unwritten = got
        .iter()
        .zip(want)
        .filter(|(g, w)| !g.is_finite() && w.is_finite())
        .count();
    if unwritten > 0 {
        return Outcome::Fail(format!(
            "{unwritten} of {} values not finite (unwritten, or overflowed)",
            got.len()
        ));
    }
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (g, w)| m.max((g - w).abs()));
    if err <= bound * scale {
        Outcome::Pass {
            err: err / scale,
            bound,
        }
    } else {
        Outcome::Fail(format!(
            "max error {:.2e} of scale {scale:.2e} (bound {bound:.0e})",
            err / scale
        ))
    }
}

/// `n` values in [-1, 1) from `seed` (xorshift64): fresh inputs for each check, the same on
/// every run.
pub fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_fails_on_unwritten_values_and_on_errors_past_the_bound() {
        let want = [1.0, -2.0, 0.5];
        assert!(matches!(
            compare(&[1.0, -2.0, 0.5001], &want, 1e-4),
            Outcome::Pass { .. }
        ));
        assert!(matches!(
            compare(&[1.0, -2.0, 0.501], &want, 1e-4),
            Outcome::Fail(_)
        ));
        let Outcome::Fail(why) = compare(&[1.0, f32::NAN, 0.5], &want, 1e-4) else {
            panic!("a NaN passed")
        };
        assert!(why.contains("1 of 3"), "{why}");
        assert!(matches!(compare(&[1.0], &want, 1e-4), Outcome::Fail(_)));
        // An all-zero reference has a floor.
        assert!(matches!(
            compare(&[1e-11], &[0.0], 1e-4),
            Outcome::Pass { .. }
        ));
    }

    #[test]
    fn the_report_counts_each_outcome() {
        let mut r = Report::new(false);
        r.close("a", &[1.0], &[1.0], 1e-4);
        r.check("b", false, "no");
        r.skip("c", "not here");
        assert_eq!(r.summary(), "1 passed, 1 failed, 1 skipped");
        assert_eq!(r.failures().len(), 1);
        assert!(r.lines[1].to_string().starts_with("FAIL\tb\tno"));
    }
}
