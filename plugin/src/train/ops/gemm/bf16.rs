//! bf16 products on AVX512-BF16 (`vdpbf16ps`): A and B rounded to bf16, products summed in
//! fp32. Each instruction does 32 multiply-adds where fp32's FMA does 16. For inference
//! (`embed --precision bf16`): weights rounded and packed once, at load; activations rounded
//! as each tile of A is packed. Same blocking as the fp32 kernel (`mod.rs`): B in panels of
//! `NR` columns, here as k-pairs (each column's two consecutive k side by side, as the
//! instruction pairs them), A in tiles of `MR` rows.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::avx512::{masks, MR};
use super::NR;

/// k per block, in k-pairs (the fp32 kernel's 256 values of k).
const KC_PAIRS: usize = 128;

/// fp32 → bf16, rounding to nearest even (NaN stays NaN).
fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// Whether this CPU has AVX512-BF16.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
}

/// B (k × n) in bf16 panels: per panel and k-pair, `NR` columns × 2 values.
pub struct PackedBf16 {
    pub k: usize,
    pub n: usize,
    data: Vec<u16>,
}

impl PackedBf16 {
    /// Packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], (rs, cs): (usize, usize)) -> Self {
        assert!(available(), "bf16 products need AVX512-BF16");
        let pairs = k.div_ceil(2);
        let mut data = vec![0u16; n.div_ceil(NR) * pairs * NR * 2];
        for (jp, panel) in data.chunks_exact_mut(pairs * NR * 2).enumerate() {
            for (p, step) in panel.chunks_exact_mut(NR * 2).enumerate() {
                for j in 0..(n - jp * NR).min(NR) {
                    for h in 0..2 {
                        let kk = 2 * p + h;
                        if kk < k {
                            step[2 * j + h] = to_bf16(b[kk * rs + (jp * NR + j) * cs]);
                        }
                    }
                }
            }
        }
        PackedBf16 { k, n, data }
    }
}

thread_local! {
    /// A as bf16 pairs, row-major; and its tiles.
    static A_PAIRS: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedBf16, c: &mut [f32], ldc: usize, bias: &[f32]) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && c.len() >= (m - 1) * ldc + n && bias.len() >= n);
    let padded = super::padded_bias(bias, n);
    // SAFETY: AVX512-BF16 was checked when B was packed; the assert bounds A, C and the bias.
    unsafe { run(m, a, b, c.as_mut_ptr(), ldc, &padded) }
}

#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn run(m: usize, a: &[f32], b: &PackedBf16, c: *mut f32, ldc: usize, bias: &[f32]) {
    let (k, n) = (b.k, b.n);
    let pairs = k.div_ceil(2);
    let tiles = m.div_ceil(MR);
    A_PAIRS.with_borrow_mut(|buffers| {
        let (rows_bf16, packed) = buffers;
        // A in bf16 first, a row's k-pairs as u32s (32 values per vector conversion), then
        // each block's tiles gathered from it.
        rows_bf16.clear();
        rows_bf16.resize(m * pairs, 0);
        for (row, out) in a
            .chunks_exact(k)
            .take(m)
            .zip(rows_bf16.chunks_exact_mut(pairs))
        {
            let whole = k / 32;
            for q in 0..whole {
                let lo = _mm512_loadu_ps(row.as_ptr().add(32 * q));
                let hi = _mm512_loadu_ps(row.as_ptr().add(32 * q + 16));
                // cvtne2ps: the second operand fills the low half.
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(out.as_mut_ptr().add(16 * q) as *mut _, v);
            }
            for p in 16 * whole..pairs {
                let lo = to_bf16(row[2 * p]) as u32;
                let hi = if 2 * p + 1 < k {
                    to_bf16(row[2 * p + 1]) as u32
                } else {
                    0
                };
                out[p] = lo | hi << 16;
            }
        }
        packed.resize(tiles * KC_PAIRS.min(pairs) * MR, 0);
        let mut p0 = 0;
        while p0 < pairs {
            let pb = (pairs - p0).min(KC_PAIRS);
            for (t, tile) in packed.chunks_exact_mut(pb * MR).take(tiles).enumerate() {
                let rows = (m - t * MR).min(MR);
                for (p, step) in tile.chunks_exact_mut(MR).enumerate() {
                    for (r, x) in step.iter_mut().enumerate() {
                        *x = if r < rows {
                            *rows_bf16.get_unchecked((t * MR + r) * pairs + p0 + p)
                        } else {
                            0
                        };
                    }
                }
            }
            for j in 0..n.div_ceil(NR) {
                let panel = b.data.as_ptr().add((j * pairs + p0) * NR * 2);
                let cols = (n - j * NR).min(NR);
                for t in 0..tiles {
                    let rows = (m - t * MR).min(MR);
                    let at = packed.as_ptr().add(t * pb * MR);
                    let init = if p0 == 0 {
                        Some(bias.as_ptr().add(j * NR))
                    } else {
                        None
                    };
                    tile(
                        pb,
                        at,
                        panel,
                        c.add(t * MR * ldc + j * NR),
                        ldc,
                        rows,
                        cols,
                        init,
                    );
                }
            }
            p0 += pb;
        }
    });
}

/// One tile: `rows` (≤ MR) × `cols` (≤ NR) of C, over `pairs` k-pairs; starts from the bias
/// (`init`) or from C.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    pairs: usize,
    a: *const u32,
    b: *const u16,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    init: Option<*const f32>,
) {
    let (m0, m1) = masks(cols);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for (r, acc) in acc.iter_mut().enumerate().take(rows) {
        match init {
            Some(bias) => *acc = [_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16))],
            None => {
                let row = c.add(r * ldc);
                *acc = [
                    _mm512_maskz_loadu_ps(m0, row),
                    _mm512_maskz_loadu_ps(m1, row.add(16)),
                ];
            }
        }
    }
    let mut ap = a;
    let mut bp = b;
    for _ in 0..pairs {
        let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp as *const _));
        let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(32) as *const _));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*ap.add(r) as i32));
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
        ap = ap.add(MR);
        bp = bp.add(NR * 2);
    }
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let row = c.add(r * ldc);
        _mm512_mask_storeu_ps(row, m0, acc[0]);
        _mm512_mask_storeu_ps(row.add(16), m1, acc[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a product of the bf16-rounded inputs summed in f64: the only difference left is
    /// fp32 accumulation.
    #[test]
    fn matches_a_reference_on_rounded_inputs() {
        if !available() {
            eprintln!("SKIPPED: no AVX512-BF16 on this CPU");
            return;
        }
        let back = |x: f32| f32::from_bits((to_bf16(x) as u32) << 16) as f64;
        for &(m, k, n) in &[(1, 1, 1), (13, 301, 45), (25, 600, 70)] {
            let (a, w, bias) = super::super::test_operands(m, k, n);
            let packed = PackedBf16::new(k, n, &w, (1, k));
            let mut c = vec![0f32; m * n];
            gemm_bias(m, &a, &packed, &mut c, n, &bias);
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = bias[j] as f64
                        + (0..k)
                            .map(|p| back(a[i * k + p]) * back(w[j * k + p]))
                            .sum::<f64>();
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (k as f64).sqrt(),
                        "{m}x{k}x{n} [{i},{j}]"
                    );
                }
            }
        }
    }
}
