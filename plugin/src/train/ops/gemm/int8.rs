//! int8 products on AVX512-VNNI (`vpdpbusd`, 64 multiply-adds per instruction where fp32's FMA
//! does 16), for inference (`embed --precision int8`): dynamic quantisation as ONNX Runtime's
//! `quantize_dynamic` does it, but finer-grained — each weight column (output feature) has its
//! own symmetric scale, each activation row (token) its own range, so one outlier token or
//! feature does not coarsen the rest. Activations are asymmetric u8 (`x ≈ mn + sa · qa`, qa in
//! 0..=255, what the instruction takes): GELU's outputs, which the FFN's second product reads,
//! lie in [-0.17, max], and a symmetric code would spend half its steps on negatives that do
//! not occur. Weights are quantised and packed once, at load; each product quantises its A
//! (`quantise_rows`) and sums in exact i32:
//!
//! `C[i, j] = sa[i] · sw[j] · Σ_k qa[i, k] · qw[k, j] + mn[i] · sw[j] · Σ_k qw[k, j] + bias[j]`.
//!
//! qa ≤ 255, |qw| ≤ 127: at k = 3072 the sum stays below 2³¹.
//! B is packed as k-quads (each column's four consecutive k side by side), in panels of `NR`
//! columns; A in tiles of `MR` rows. No k blocking: a panel (k × 32 bytes, 96 KiB at
//! k = 3072) streams from L2 at a fraction of the rate the arithmetic could take it.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::avx512::{masks, MR};
use super::NR;

/// Whether this CPU has AVX-512 with VNNI.
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// A weight, quantised per column and packed.
pub struct PackedInt8 {
    pub k: usize,
    pub n: usize,
    quads: usize,
    data: Vec<i8>,
    /// Per column: the scale, and scale · Σ_k q (what a row's minimum multiplies), padded
    /// to panels.
    scale: Vec<f32>,
    offset: Vec<f32>,
}

/// Symmetric quantisation of values whose largest magnitude is `max`: (scale, 1 / scale).
fn scales(max: f32) -> (f32, f32) {
    if max > 0.0 && max.is_finite() {
        (max / 127.0, 127.0 / max)
    } else {
        (0.0, 0.0)
    }
}

impl PackedInt8 {
    /// Quantises and packs B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`).
    pub fn new(k: usize, n: usize, b: &[f32], (rs, cs): (usize, usize)) -> Self {
        assert!(available(), "int8 products need AVX512-VNNI");
        let quads = k.div_ceil(4);
        let panels = n.div_ceil(NR);
        let mut data = vec![0i8; panels * quads * NR * 4];
        let (mut scale, mut offset) = (vec![0f32; panels * NR], vec![0f32; panels * NR]);
        for j in 0..n {
            let col = |p: usize| b[p * rs + j * cs];
            let max = (0..k).fold(0f32, |m, p| m.max(col(p).abs()));
            let (s, inv) = scales(max);
            scale[j] = s;
            let (jp, jj) = (j / NR, j % NR);
            let mut sum = 0i32;
            for p in 0..k {
                let q = (col(p) * inv).round().clamp(-127.0, 127.0) as i8;
                sum += q as i32;
                data[((jp * quads + p / 4) * NR + jj) * 4 + p % 4] = q;
            }
            offset[j] = s * sum as f32;
        }
        PackedInt8 {
            k,
            n,
            quads,
            data,
            scale,
            offset,
        }
    }
}

/// A quantised (u8, row-major, k padded to quads), its rows' (scale, minimum), and its tiles.
struct Scratch {
    q: Vec<u8>,
    range: Vec<[f32; 2]>,
    tiles: Vec<u32>,
}

thread_local! {
    /// A quantised (u8, row-major, k padded to quads), its rows' (scale, minimum), and its
    /// tiles.
    static A_INT8: RefCell<Scratch> = const {
        RefCell::new(Scratch { q: Vec::new(), range: Vec::new(), tiles: Vec::new() })
    };
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt8, c: &mut [f32], ldc: usize, bias: &[f32]) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && c.len() >= (m - 1) * ldc + n && bias.len() >= n);
    let padded = super::padded_bias(bias, n);
    // SAFETY: AVX512-VNNI was checked when B was packed; the assert bounds A, C and the bias.
    unsafe { run(m, a, b, c.as_mut_ptr(), ldc, &padded) }
}

/// Each row of A (m × k) as u8 (`round((x - mn) / sa)`), k padded to `4 · quads` (the
/// padding meets zero weights); each row's (sa, mn) into `range`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_rows(
    a: &[f32],
    m: usize,
    k: usize,
    quads: usize,
    q: &mut Vec<u8>,
    range: &mut Vec<[f32; 2]>,
) {
    let width = 4 * quads;
    q.clear();
    q.resize(m * width, 0);
    range.clear();
    for (row, out) in a.chunks_exact(k).take(m).zip(q.chunks_exact_mut(width)) {
        let whole = k / 16;
        let (mut vmin, mut vmax) = (_mm512_set1_ps(f32::MAX), _mm512_set1_ps(f32::MIN));
        for i in 0..whole {
            let v = _mm512_loadu_ps(row.as_ptr().add(16 * i));
            vmin = _mm512_min_ps(vmin, v);
            vmax = _mm512_max_ps(vmax, v);
        }
        let (mut mn, mut mx) = (_mm512_reduce_min_ps(vmin), _mm512_reduce_max_ps(vmax));
        for &x in &row[16 * whole..] {
            mn = mn.min(x);
            mx = mx.max(x);
        }
        let sa = (mx - mn) / 255.0;
        let inv = if sa > 0.0 && sa.is_finite() {
            1.0 / sa
        } else {
            0.0
        };
        range.push([sa, mn]);
        let (vinv, vmn) = (_mm512_set1_ps(inv), _mm512_set1_ps(mn));
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

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(m: usize, a: &[f32], b: &PackedInt8, c: *mut f32, ldc: usize, bias: &[f32]) {
    let (k, n, quads) = (b.k, b.n, b.quads);
    let tiles = m.div_ceil(MR);
    A_INT8.with_borrow_mut(
        |Scratch {
             q,
             range,
             tiles: packed,
         }| {
            quantise_rows(a, m, k, quads, q, range);
            range.resize(tiles * MR, [0.0; 2]);
            packed.clear();
            packed.resize(tiles * quads * MR, 0);
            for (t, tile) in packed.chunks_exact_mut(quads * MR).enumerate() {
                let rows = (m - t * MR).min(MR);
                for (p, step) in tile.chunks_exact_mut(MR).enumerate() {
                    for (r, x) in step.iter_mut().enumerate().take(rows) {
                        let at = (t * MR + r) * 4 * quads + 4 * p;
                        *x = q[at..].first_chunk().map_or(0, |b| u32::from_le_bytes(*b));
                    }
                }
            }
            for j in 0..n.div_ceil(NR) {
                let panel = b.data.as_ptr().add(j * quads * NR * 4);
                let cols = (n - j * NR).min(NR);
                let epilogue = Epilogue {
                    bias: bias.as_ptr().add(j * NR),
                    col_scale: b.scale.as_ptr().add(j * NR),
                    offset: b.offset.as_ptr().add(j * NR),
                };
                for t in 0..tiles {
                    let rows = (m - t * MR).min(MR);
                    let at = packed.as_ptr().add(t * quads * MR);
                    let out = c.add(t * MR * ldc + j * NR);
                    tile(
                        quads,
                        at,
                        panel,
                        out,
                        ldc,
                        rows,
                        cols,
                        range.as_ptr().add(t * MR),
                        &epilogue,
                    );
                }
            }
        },
    );
}

/// A panel's per-column terms, `NR` each.
struct Epilogue {
    bias: *const f32,
    col_scale: *const f32,
    offset: *const f32,
}

/// One tile: `rows` × `cols` of C over all k, written as floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    quads: usize,
    a: *const u32,
    b: *const i8,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    range: *const [f32; 2],
    e: &Epilogue,
) {
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let mut ap = a;
    let mut bp = b;
    for _ in 0..quads {
        let b0 = _mm512_loadu_si512(bp as *const _);
        let b1 = _mm512_loadu_si512(bp.add(64) as *const _);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(*ap.add(r) as i32);
            acc[0] = _mm512_dpbusd_epi32(acc[0], av, b0);
            acc[1] = _mm512_dpbusd_epi32(acc[1], av, b1);
        }
        ap = ap.add(MR);
        bp = bp.add(NR * 4);
    }
    let (m0, m1) = masks(cols);
    let lane_masks = [m0, m1];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let [sa, mn] = *range.add(r);
        let (sa, mn) = (_mm512_set1_ps(sa), _mm512_set1_ps(mn));
        for h in 0..2 {
            let sw = _mm512_loadu_ps(e.col_scale.add(16 * h));
            // mn · sw · Σqw + bias, then + sa · sw · acc
            let base = _mm512_fmadd_ps(
                mn,
                _mm512_loadu_ps(e.offset.add(16 * h)),
                _mm512_loadu_ps(e.bias.add(16 * h)),
            );
            let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[h]), _mm512_mul_ps(sa, sw), base);
            _mm512_mask_storeu_ps(c.add(r * ldc + 16 * h), lane_masks[h], y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the quantisation's own bound: each product term is off by at most
    /// (|a|·sw/2 + |w|·sa/2 + sa·sw/4), summed over k (sw = max|w| / 127 per column,
    /// sa = (max − min) / 255 per row).
    #[test]
    fn matches_a_reference_within_the_quantisation_bound() {
        if !available() {
            eprintln!("SKIPPED: no AVX512-VNNI on this CPU");
            return;
        }
        for &(m, k, n) in &[(1, 1, 1), (13, 301, 45), (25, 3072, 70)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 37.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 41.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 10.0).collect();
            let packed = PackedInt8::new(k, n, &w, (1, k));
            let mut c = vec![0f32; m * n];
            gemm_bias(m, &a, &packed, &mut c, n, &bias);
            for i in 0..m {
                let ra = &a[i * k..][..k];
                let (lo, hi) = ra
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let sa = (hi - lo) as f64 / 255.0;
                for j in 0..n {
                    let rw = &w[j * k..][..k];
                    let sw = rw.iter().fold(0f32, |x, v| x.max(v.abs())) as f64 / 127.0;
                    let (mut want, mut bound) = (bias[j] as f64, 1e-3);
                    for p in 0..k {
                        let (x, y) = (ra[p] as f64, rw[p] as f64);
                        want += x * y;
                        bound += x.abs() * sw / 2.0 + y.abs() * sa / 2.0 + sa * sw / 4.0;
                    }
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= bound,
                        "{m}x{k}x{n} [{i},{j}]: {got} vs {want} (bound {bound})"
                    );
                }
            }
        }
    }
}
