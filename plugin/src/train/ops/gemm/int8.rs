//! int8 products on AVX512-VNNI (`vpdpbusd`, 64 multiply-adds per instruction where fp32's FMA
//! does 16), for inference (`embed --precision int8`), on the shared integer machinery
//! (`integer.rs`): dynamic quantisation as ONNX Runtime's `quantize_dynamic` does it, but finer
//! grained (a scale per weight column and per activation row). Activations are asymmetric u8
//! (`x ≈ mn + sa · qa`, qa in 0..=255, what the instruction takes): GELU's outputs, which the
//! FFN's second product reads, lie in [-0.17, max], and a symmetric code would spend half its
//! steps on negatives that do not occur. Weights are symmetric i8 in ±127.
//!
//! qa ≤ 255, |qw| ≤ 127: at k = 3072 the sum stays below 2³¹.

use super::integer::{self, Codes, PackedQ};

/// Whether this CPU has AVX-512 with VNNI.
pub fn available() -> bool {
    integer::available()
}

/// A weight, quantised per column to ±127 and packed.
pub struct PackedInt8(PackedQ);

impl PackedInt8 {
    /// Quantises and packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], strides: (usize, usize)) -> Self {
        PackedInt8(PackedQ::new(Codes::Int8, k, n, b, strides))
    }
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major, quantised to u8 per row) · B`,
/// one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt8, c: &mut [f32], ldc: usize, bias: &[f32]) {
    integer::gemm_bias(m, a, &b.0, c, ldc, bias)
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
        integer::check_within_bound(Codes::Int8, |_, lo, hi, wmax| {
            ((hi - lo) / 255.0, wmax / 127.0)
        });
    }
}
