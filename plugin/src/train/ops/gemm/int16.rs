//! int16 products on AVX512-VNNI (`vpdpwssd`: 32 multiply-adds per instruction, twice fp32's
//! FMA), for inference (`embed --precision int16`), on the shared integer machinery
//! (`integer.rs`). int8 is twice as fast again but 8-bit codes cost DNABERT-base about 2% per
//! embedding row (`benches/int8_error_budget.py`); these codes are ~6-13 times finer.
//!
//! Both operands are symmetric i16 codes in ±q, q chosen from k so that no sum can leave i32:
//! `k · q² < 2³¹`, q = ⌊√((2³¹ − 1) / k)⌋ (1672 at k = 768, 836 at k = 3072: about 11 and 10
//! bits and a sign), so the sums are exact over all of k without blocking. Weights are scaled
//! per column (`max|w| / q`); activations per row about the row's midpoint
//! (`x ≈ mid + sa · qa`, sa = (max − min) / 2q), so GELU's one-sided outputs use every code.
//! Wider codes would need k blocked (256 k per block allows q = 2896, 0.09% per row instead of
//! 0.22% at DNABERT-base, `benches/int8_error_budget.py`), which measured ~10% slower.

use super::integer::{self, Codes, PackedQ};

/// Whether this CPU has AVX-512 with VNNI.
pub fn available() -> bool {
    integer::available()
}

/// A weight, quantised per column to ±q of its k and packed.
pub struct PackedInt16(PackedQ);

impl PackedInt16 {
    /// Quantises and packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> Self {
        PackedInt16(PackedQ::new(Codes::Int16, k, n, b, strides))
    }
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major, quantised to ±q per row) · B`,
/// one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt16, c: &mut [f32], ldc: usize, bias: &[f32]) {
    integer::gemm_bias(m, a, &b.0, c, ldc, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_code(k: usize) -> i32 {
        Codes::Int16.max_code(k)
    }

    #[test]
    fn codes_keep_every_sum_in_i32() {
        for k in [1, 2, 3, 768, 3072, 4097, 1 << 20] {
            let q = max_code(k) as i64;
            assert!(k as i64 * q * q <= i32::MAX as i64, "k = {k}, q = {q}");
            assert!(k as i64 * (q + 1) * (q + 1) > i32::MAX as i64 || q == 32767);
        }
        assert_eq!(
            (max_code(256), max_code(768), max_code(3072)),
            (2896, 1672, 836)
        );
    }

    /// sw = max|w| / q per column, sa = (max − min) / 2q per row.
    #[test]
    fn matches_a_reference_within_the_quantisation_bound() {
        if !available() {
            eprintln!("SKIPPED: no AVX512-VNNI on this CPU");
            return;
        }
        integer::check_within_bound(Codes::Int16, |k, lo, hi, wmax| {
            let q = max_code(k) as f64;
            ((hi - lo) / (2.0 * q), wmax / q)
        });
    }

    /// Extreme rows (every code at ±q) at the largest k of the model: the sums do not wrap.
    #[test]
    fn extreme_codes_do_not_overflow() {
        if !available() {
            eprintln!("SKIPPED: no AVX512-VNNI on this CPU");
            return;
        }
        let (m, k, n) = (3, 3072, 33);
        let a: Vec<f32> = (0..m * k)
            .map(|i| if i % k == 0 { -1.0 } else { 1.0 })
            .collect();
        let w = vec![1f32; n * k];
        let packed = PackedInt16::new(k, n, &w, (1, k));
        let mut c = vec![0f32; m * n];
        gemm_bias(m, &a, &packed, &mut c, n, &vec![0.0; n]);
        for (i, &x) in c.iter().enumerate() {
            let want = (k - 2) as f32;
            assert!((x - want).abs() <= 1e-3 * want, "[{i}] {x} vs {want}");
        }
    }
}
