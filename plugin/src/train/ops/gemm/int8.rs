//! int8 products on AVX512-VNNI (`vpdpbusd`, 64 multiply-adds per instruction where fp32's FMA
//! does 16), for inference (`embed --precision int8`): dynamic quantisation as ONNX Runtime's
//! `quantize_dynamic` does it, but finer-grained — each weight column (output feature) and
//! each activation row (token) has its own scale, symmetric, so one outlier token or feature
//! does not coarsen the rest. Weights are quantised and packed once, at load; each product
//! quantises its A (`quantise_rows`) and sums in exact i32:
//!
//! `C[i, j] = sa[i] · sw[j] · Σ_k qa[i, k] · qw[k, j] + bias[j]`,
//!
//! with qa stored as u8 (`qa + 128`, what the instruction takes) and `128 · Σ_k qw[k, j]`
//! subtracted after. |qa|, |qw| ≤ 127: at k = 3072 the sum stays below 2³¹.
//! B is packed as k-quads (each column's four consecutive k side by side), in panels of `NR`
//! columns; A in tiles of `MR` rows. No k blocking: a panel (k × 32 bytes, 96 KiB at
//! k = 3072) streams from L2 at a fraction of the rate the arithmetic could take it.

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::avx512::MR;
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
    /// Per column: the scale, and 128 · Σ_k q (the u8 offset's share), padded to panels.
    scale: Vec<f32>,
    offset: Vec<i32>,
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
        let (mut scale, mut offset) = (vec![0f32; panels * NR], vec![0i32; panels * NR]);
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
            offset[j] = 128 * sum;
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

thread_local! {
    /// A quantised (u8, row-major, k padded to quads), its row scales, and its tiles.
    static A_INT8: RefCell<(Vec<u8>, Vec<f32>, Vec<u32>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread.
pub fn gemm_bias(m: usize, a: &[f32], b: &PackedInt8, c: &mut [f32], ldc: usize, bias: &[f32]) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && c.len() >= (m - 1) * ldc + n && bias.len() >= n);
    let mut padded = bias[..n].to_vec();
    padded.resize(n.div_ceil(NR) * NR, 0.0);
    // SAFETY: AVX512-VNNI was checked when B was packed; the assert bounds A, C and the bias.
    unsafe { run(m, a, b, c.as_mut_ptr(), ldc, &padded) }
}

/// Each row of A (m × k) as u8 (`round(x / scale) + 128`), k padded with 128s (zero) to
/// `4 · quads`; the row scales into `scale`.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_rows(
    a: &[f32],
    m: usize,
    k: usize,
    quads: usize,
    q: &mut Vec<u8>,
    scale: &mut Vec<f32>,
) {
    let width = 4 * quads;
    q.clear();
    q.resize(m * width, 128);
    scale.clear();
    for (row, out) in a.chunks_exact(k).take(m).zip(q.chunks_exact_mut(width)) {
        let whole = k / 16;
        let mut vmax = _mm512_setzero_ps();
        for i in 0..whole {
            vmax = _mm512_max_ps(
                vmax,
                _mm512_abs_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i))),
            );
        }
        let mut max = _mm512_reduce_max_ps(vmax);
        for &x in &row[16 * whole..] {
            max = max.max(x.abs());
        }
        let (s, inv) = scales(max);
        scale.push(s);
        let vinv = _mm512_set1_ps(inv);
        let bias = _mm512_set1_epi32(128);
        for i in 0..whole {
            let v = _mm512_mul_ps(_mm512_loadu_ps(row.as_ptr().add(16 * i)), vinv);
            // Round to nearest (the default rounding mode), shift into u8's range, narrow.
            let iv = _mm512_add_epi32(_mm512_cvtps_epi32(v), bias);
            let bytes = _mm512_cvtusepi32_epi8(iv);
            _mm_storeu_si128(out.as_mut_ptr().add(16 * i) as *mut __m128i, bytes);
        }
        for (o, &x) in out[16 * whole..k].iter_mut().zip(&row[16 * whole..]) {
            *o = ((x * inv).round().clamp(-127.0, 127.0) as i32 + 128) as u8;
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(m: usize, a: &[f32], b: &PackedInt8, c: *mut f32, ldc: usize, bias: &[f32]) {
    let (k, n, quads) = (b.k, b.n, b.quads);
    let tiles = m.div_ceil(MR);
    A_INT8.with_borrow_mut(|(q, row_scale, packed)| {
        quantise_rows(a, m, k, quads, q, row_scale);
        row_scale.resize(tiles * MR, 0.0);
        packed.clear();
        packed.resize(tiles * quads * MR, 0x8080_8080);
        for (t, tile) in packed.chunks_exact_mut(quads * MR).enumerate() {
            let rows = (m - t * MR).min(MR);
            for (p, step) in tile.chunks_exact_mut(MR).enumerate() {
                for (r, x) in step.iter_mut().enumerate().take(rows) {
                    let at = (t * MR + r) * 4 * quads + 4 * p;
                    *x = u32::from_le_bytes(q[at..at + 4].try_into().unwrap());
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
                    row_scale.as_ptr().add(t * MR),
                    &epilogue,
                );
            }
        }
    });
}

/// A panel's per-column terms, `NR` each.
struct Epilogue {
    bias: *const f32,
    col_scale: *const f32,
    offset: *const i32,
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
    row_scale: *const f32,
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
    let m = |n: usize| {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as u16
        }
    };
    let masks = [m(cols), m(cols.saturating_sub(16))];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let sa = _mm512_set1_ps(*row_scale.add(r));
        for h in 0..2 {
            let exact =
                _mm512_sub_epi32(acc[h], _mm512_loadu_si512(e.offset.add(16 * h) as *const _));
            let scale = _mm512_mul_ps(sa, _mm512_loadu_ps(e.col_scale.add(16 * h)));
            let y = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(exact),
                scale,
                _mm512_loadu_ps(e.bias.add(16 * h)),
            );
            _mm512_mask_storeu_ps(c.add(r * ldc + 16 * h), masks[h], y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the quantisation's own bound: each product term is off by at most
    /// (|a|·sw/2 + |w|·sa/2 + sa·sw/4), summed over k.
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
                let sa = ra.iter().fold(0f32, |x, v| x.max(v.abs())) as f64 / 127.0;
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
