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

use std::arch::x86_64::*;

use super::integer::{self, Codes, PackedQ, Rows};

/// Whether this CPU has AVX-512 with VNNI.
pub fn available() -> bool {
    integer::available()
}

/// The largest code for sums over k: `k · q² ≤ 2³¹ − 1`, at most i16's 32767.
pub fn max_code(k: usize) -> i32 {
    let q = ((i32::MAX as f64) / k.max(1) as f64).sqrt().floor() as i64;
    // The float square root may round up: step down until the product fits.
    let mut q = q.min(i16::MAX as i64);
    while q > 1 && (k as i64) * q * q > i32::MAX as i64 {
        q -= 1;
    }
    q as i32
}

/// A weight, quantised per column to ±[`max_code`] of its k and packed.
pub struct PackedInt16(PackedQ);

impl PackedInt16 {
    /// Quantises and packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> Self {
        assert!(available(), "int16 products need AVX512-VNNI");
        PackedInt16(PackedQ::new(Codes::Int16, max_code(k), k, n, b, strides))
    }
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt16, c: &mut [f32], ldc: usize, bias: &[f32]) {
    // SAFETY: AVX512-VNNI was checked when B was packed; i16 rows suit its i16 codes.
    unsafe { integer::gemm_bias(m, a, &b.0, c, ldc, bias, quantise_rows) }
}

/// Each row of A (m × k) as i16 in ±q (`round((x − mid) / sa)`), two per word; each row's
/// (sa, mid).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_rows(a: &[f32], m: usize, k: usize, groups: usize, q: i32, rows: &mut Rows) {
    let width = 4 * groups;
    let Rows { q: codes, range } = rows;
    codes.clear();
    codes.resize(m * width, 0);
    range.clear();
    let top = q as f32;
    let (lo, hi) = (_mm512_set1_epi32(-q), _mm512_set1_epi32(q));
    for (row, out) in a.chunks_exact(k).take(m).zip(codes.chunks_exact_mut(width)) {
        let (mn, mx) = integer::min_max(row);
        let mid = 0.5 * (mn + mx);
        let sa = (mx - mn) / (2.0 * top);
        let inv = integer::inverse(sa);
        range.push([sa, mid]);
        let (vinv, vmid) = (_mm512_set1_ps(inv), _mm512_set1_ps(mid));
        let whole = k / 16;
        for i in 0..whole {
            let v = _mm512_mul_ps(
                _mm512_sub_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i)), vmid),
                vinv,
            );
            // Round to nearest (the default rounding mode); clamped, so that rounding at the
            // row's ends cannot step past ±q and the sums' bound holds.
            let v = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(v), lo), hi);
            let halves = _mm512_cvtsepi32_epi16(v);
            _mm256_storeu_si256(out.as_mut_ptr().add(32 * i) as *mut __m256i, halves);
        }
        for (p, &x) in row.iter().enumerate().skip(16 * whole) {
            let c = ((x - mid) * inv).round().clamp(-top, top) as i16;
            out[2 * p..2 * p + 2].copy_from_slice(&c.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        integer::check_within_bound(
            |m, a, w, bias, k, n| {
                let packed = PackedInt16::new(k, n, w, (1, k));
                let mut c = vec![0f32; m * n];
                gemm_bias(m, a, &packed, &mut c, n, bias);
                c
            },
            |k, lo, hi, wmax| {
                let q = max_code(k) as f64;
                ((hi - lo) / (2.0 * q), wmax / q)
            },
        );
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
