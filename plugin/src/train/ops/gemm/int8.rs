//! int8 products on AVX512-VNNI (`vpdpbusd`, 64 multiply-adds per instruction where fp32's FMA
//! does 16), for inference (`embed --precision int8`), on the shared integer machinery
//! (`integer.rs`): dynamic quantisation as ONNX Runtime's `quantize_dynamic` does it, but finer
//! grained (a scale per weight column and per activation row). Activations are asymmetric u8
//! (`x ≈ mn + sa · qa`, qa in 0..=255, what the instruction takes): GELU's outputs, which the
//! FFN's second product reads, lie in [-0.17, max], and a symmetric code would spend half its
//! steps on negatives that do not occur. Weights are symmetric i8 in ±127.
//!
//! qa ≤ 255, |qw| ≤ 127: at k = 3072 the sum stays below 2³¹.

use std::arch::x86_64::*;

use super::integer::{self, Codes, PackedQ, Rows};

/// Whether this CPU has AVX-512 with VNNI.
pub fn available() -> bool {
    integer::available()
}

/// A weight, quantised per column to ±127 and packed.
pub struct PackedInt8(PackedQ);

impl PackedInt8 {
    /// Quantises and packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> Self {
        assert!(available(), "int8 products need AVX512-VNNI");
        PackedInt8(PackedQ::new(Codes::Int8, 127, k, n, b, strides))
    }
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt8, c: &mut [f32], ldc: usize, bias: &[f32]) {
    // SAFETY: AVX512-VNNI was checked when B was packed; u8 rows suit its i8 codes.
    unsafe { integer::gemm_bias(m, a, &b.0, c, ldc, bias, quantise_rows) }
}

/// Each row of A (m × k) as u8 (`round((x - mn) / sa)`, sa = (max − mn) / 255), four per
/// word; each row's (sa, mn).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_rows(a: &[f32], m: usize, k: usize, groups: usize, _: i32, rows: &mut Rows) {
    let width = 4 * groups;
    let Rows { q, range } = rows;
    q.clear();
    q.resize(m * width, 0);
    range.clear();
    for (row, out) in a.chunks_exact(k).take(m).zip(q.chunks_exact_mut(width)) {
        let (mn, mx) = integer::min_max(row);
        let sa = (mx - mn) / 255.0;
        let inv = integer::inverse(sa);
        range.push([sa, mn]);
        let (vinv, vmn) = (_mm512_set1_ps(inv), _mm512_set1_ps(mn));
        let whole = k / 16;
        for i in 0..whole {
            let v = _mm512_mul_ps(
                _mm512_sub_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i)), vmn),
                vinv,
            );
            // Round to nearest (the default rounding mode), narrow with unsigned saturation.
            let bytes = _mm512_cvtusepi32_epi8(_mm512_cvtps_epi32(v));
            _mm_storeu_si128(out.as_mut_ptr().add(16 * i) as *mut __m128i, bytes);
        }
        for (o, &x) in out[16 * whole..k].iter_mut().zip(&row[16 * whole..]) {
            *o = ((x - mn) * inv).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sw = max|w| / 127 per column, sa = (max − min) / 255 per row.
    #[test]
    fn matches_a_reference_within_the_quantisation_bound() {
        if !available() {
            eprintln!("SKIPPED: no AVX512-VNNI on this CPU");
            return;
        }
        integer::check_within_bound(
            |m, a, w, bias, k, n| {
                let packed = PackedInt8::new(k, n, w, (1, k));
                let mut c = vec![0f32; m * n];
                gemm_bias(m, a, &packed, &mut c, n, bias);
                c
            },
            |_, lo, hi, wmax| ((hi - lo) / 255.0, wmax / 127.0),
        );
    }
}
