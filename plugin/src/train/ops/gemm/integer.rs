//! What the integer products share (`int8.rs`, `int16.rs`; `embed --precision int8|int16`):
//! dynamic quantisation of the linear layers with exact i32 sums on AVX512-VNNI. Each weight
//! column (output feature) has its own symmetric scale, each activation row (token) its own
//! scale and base, so one outlier token or feature does not coarsen the rest:
//!
//! `C[i, j] = sa[i] · sw[j] · Σ_k qa[i, k] · qw[k, j] + base[i] · sw[j] · Σ_k qw[k, j] + bias[j]`.
//!
//! Codes sit in 4-byte groups of k, as the instructions pair them: `vpdpbusd` sums four u8 × i8
//! products into each i32 lane (64 multiply-adds per instruction), `vpdpwssd` two i16 × i16
//! (32; fp32's FMA does 16). Weights are quantised and packed once, at load: per panel of `NR`
//! columns and per group, `NR` words (each column's group side by side). Each product
//! quantises its A to the same codes (`quantise_rows`) and packs it into tiles of `MR` rows, one word
//! per row and group. No k blocking: sums stay exact in i32 over all of k, and blocking (k
//! in blocks of 512 int8 or 256 int16 values, partial sums added up in fp32, A's tiles
//! block-major) measured ~10% slower at DNABERT-base's shapes on the development machine
//! (Xeon, AVX-512; why is not established: its VM exposes no hardware counters).

use std::arch::x86_64::*;
use std::cell::RefCell;

use super::avx512::{masks, MR};
use super::NR;

/// Whether this CPU has AVX-512 with VNNI (both schemes' instructions).
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

/// The two schemes: how many k values share a word, and the instruction that sums them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Codes {
    /// u8 activations × i8 weights, four per word (`vpdpbusd`).
    Int8,
    /// i16 × i16, two per word (`vpdpwssd`).
    Int16,
}

impl Codes {
    pub(super) fn per_word(self) -> usize {
        match self {
            Codes::Int8 => 4,
            Codes::Int16 => 2,
        }
    }

    /// The largest code of a product over k: int8's weights ±127 (its activations 0..=255);
    /// int16's both ±q with `k · q² ≤ 2³¹ − 1`, at most i16's 32767, so that no sum over all
    /// of k can leave i32 (`int16.rs`).
    pub(super) fn max_code(self, k: usize) -> i32 {
        match self {
            Codes::Int8 => 127,
            Codes::Int16 => {
                let q = ((i32::MAX as f64) / k.max(1) as f64).sqrt().floor() as i64;
                // The float square root may round up: step down until the product fits.
                let mut q = q.min(i16::MAX as i64);
                while q > 1 && (k as i64) * q * q > i32::MAX as i64 {
                    q -= 1;
                }
                q as i32
            }
        }
    }

    /// A row's (scale, base) from its minimum and maximum, codes up to `q`: int8's u8 count
    /// 0..=255 steps up from the minimum (`x ≈ mn + sa · qa`); int16's ±q steps about the
    /// midpoint (`x ≈ mid + sa · qa`).
    fn row_range(self, mn: f32, mx: f32, q: i32) -> (f32, f32) {
        match self {
            Codes::Int8 => ((mx - mn) / 255.0, mn),
            Codes::Int16 => ((mx - mn) / (2.0 * q as f32), 0.5 * (mn + mx)),
        }
    }
}

/// A weight, quantised per column to ±`codes.max_code(k)` and packed.
pub(super) struct PackedQ {
    pub k: usize,
    pub n: usize,
    pub codes: Codes,
    /// Words of k per column: k / per_word, rounded up (the padding is zero).
    pub groups: usize,
    data: Vec<u32>,
    /// Per column: the scale sw, and sw · Σ_k qw (what a row's base multiplies), padded to
    /// whole panels.
    scale: Vec<f32>,
    offset: Vec<f32>,
}

impl PackedQ {
    /// Quantises B given by its strides (a weight W, n × k, used as Wᵀ: `(1, k)`) and packs
    /// it.
    pub(super) fn new(
        codes: Codes,
        k: usize,
        n: usize,
        b: &[f32],
        (rs, cs): (usize, usize),
    ) -> Self {
        assert!(available(), "{codes:?} products need AVX512-VNNI");
        let per = codes.per_word();
        let bits = 32 / per;
        let mask = ((1u64 << bits) - 1) as u32;
        let groups = k.div_ceil(per);
        let panels = n.div_ceil(NR);
        let mut data = vec![0u32; panels * groups * NR];
        let (mut scale, mut offset) = (vec![0f32; panels * NR], vec![0f32; panels * NR]);
        let top = codes.max_code(k) as f32;
        for j in 0..n {
            let col = |p: usize| b[p * rs + j * cs];
            let max = (0..k).fold(0f32, |m, p| m.max(col(p).abs()));
            let (s, inv) = if max > 0.0 && max.is_finite() {
                (max / top, top / max)
            } else {
                (0.0, 0.0)
            };
            scale[j] = s;
            let (jp, jj) = (j / NR, j % NR);
            let mut sum = 0i64;
            for p in 0..k {
                let q = (col(p) * inv).round().clamp(-top, top) as i32;
                sum += q as i64;
                data[(jp * groups + p / per) * NR + jj] |= (q as u32 & mask) << (bits * (p % per));
            }
            offset[j] = s * sum as f32;
        }
        PackedQ {
            k,
            n,
            codes,
            groups,
            data,
            scale,
            offset,
        }
    }
}

/// A, quantised: each row's codes as `4 · groups` bytes (the padding zero), and each row's
/// (scale, base).
pub(super) struct Rows {
    pub q: Vec<u8>,
    pub range: Vec<[f32; 2]>,
}

thread_local! {
    /// Each thread's quantised A and its tiles, reused from product to product.
    static SCRATCH: RefCell<(Rows, Vec<u32>)> = const {
        RefCell::new((Rows { q: Vec::new(), range: Vec::new() }, Vec::new()))
    };
}

/// `C (m × n, rows `ldc` apart) = bias + A (m × k, row-major) · B`, one thread, A quantised
/// to B's codes.
pub(super) fn gemm_bias(m: usize, a: &[f32], b: &PackedQ, c: &mut [f32], ldc: usize, bias: &[f32]) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= m * k && c.len() >= (m - 1) * ldc + n && bias.len() >= n);
    let padded = super::padded_bias(bias, n);
    // SAFETY: AVX512-VNNI was checked when B was packed; the assert bounds A, C and the bias.
    unsafe { run(m, a, b, c.as_mut_ptr(), ldc, &padded) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn run(m: usize, a: &[f32], b: &PackedQ, c: *mut f32, ldc: usize, bias: &[f32]) {
    let (k, n, groups) = (b.k, b.n, b.groups);
    let tiles = m.div_ceil(MR);
    SCRATCH.with_borrow_mut(|(rows, packed)| {
        quantise_rows(b.codes, a, m, k, groups, rows);
        rows.range.resize(tiles * MR, [0.0; 2]);
        packed.clear();
        packed.resize(tiles * groups * MR, 0);
        for (t, tile) in packed.chunks_exact_mut(groups * MR).enumerate() {
            let count = (m - t * MR).min(MR);
            for (p, step) in tile.chunks_exact_mut(MR).enumerate() {
                for (r, x) in step.iter_mut().enumerate().take(count) {
                    let at = (t * MR + r) * 4 * groups + 4 * p;
                    *x = rows.q[at..]
                        .first_chunk()
                        .map_or(0, |w| u32::from_le_bytes(*w));
                }
            }
        }
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        for j in 0..n.div_ceil(NR) {
            let panel = b.data.as_ptr().add(j * groups * NR);
            let cols = (n - j * NR).min(NR);
            let epilogue = Epilogue {
                bias: bias.as_ptr().add(j * NR),
                col_scale: b.scale.as_ptr().add(j * NR),
                offset: b.offset.as_ptr().add(j * NR),
            };
            for t in 0..tiles {
                let at = packed.as_ptr().add(t * groups * MR);
                match b.codes {
                    Codes::Int8 => tile::<false>(groups, at, panel, &mut acc),
                    Codes::Int16 => tile::<true>(groups, at, panel, &mut acc),
                }
                let count = (m - t * MR).min(MR);
                let out = c.add(t * MR * ldc + j * NR);
                store(
                    &acc,
                    out,
                    ldc,
                    count,
                    cols,
                    rows.range.as_ptr().add(t * MR),
                    &epilogue,
                );
            }
        }
    });
}

/// One tile's sums over all k: `MR` rows × `NR` columns, exact in i32. `WIDE`: i16 pairs
/// (`vpdpwssd`), else u8 × i8 quads (`vpdpbusd`).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const WIDE: bool>(
    groups: usize,
    a: *const u32,
    b: *const u32,
    out: &mut [[__m512i; 2]; MR],
) {
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let (mut ap, mut bp) = (a, b);
    for _ in 0..groups {
        let b0 = _mm512_loadu_si512(bp as *const _);
        let b1 = _mm512_loadu_si512(bp.add(16) as *const _);
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(*ap.add(r) as i32);
            if WIDE {
                acc[0] = _mm512_dpwssd_epi32(acc[0], av, b0);
                acc[1] = _mm512_dpwssd_epi32(acc[1], av, b1);
            } else {
                acc[0] = _mm512_dpbusd_epi32(acc[0], av, b0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], av, b1);
            }
        }
        ap = ap.add(MR);
        bp = bp.add(NR);
    }
    *out = acc;
}

/// A panel's per-column terms, `NR` each.
struct Epilogue {
    bias: *const f32,
    col_scale: *const f32,
    offset: *const f32,
}

/// `rows` × `cols` of a tile's sums into C as floats: base · sw · Σqw + bias + sa · sw · acc.
#[target_feature(enable = "avx512f")]
unsafe fn store(
    acc: &[[__m512i; 2]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    range: *const [f32; 2],
    e: &Epilogue,
) {
    let (m0, m1) = masks(cols);
    let lane_masks = [m0, m1];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        let [sa, base] = *range.add(r);
        let (sa, base) = (_mm512_set1_ps(sa), _mm512_set1_ps(base));
        for h in 0..2 {
            let sw = _mm512_loadu_ps(e.col_scale.add(16 * h));
            let start = _mm512_fmadd_ps(
                base,
                _mm512_loadu_ps(e.offset.add(16 * h)),
                _mm512_loadu_ps(e.bias.add(16 * h)),
            );
            let y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[h]), _mm512_mul_ps(sa, sw), start);
            _mm512_mask_storeu_ps(c.add(r * ldc + 16 * h), lane_masks[h], y);
        }
    }
}

/// Each row of A (m × k) as codes, `4 · groups` bytes per row (the padding zero), and each
/// row's (scale, base) (`Codes::row_range`): int8 as u8, four per word, int16 as i16 in
/// ±`max_code(k)`, two per word. A constant row has scale 0 and every code 0.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_rows(
    codes: Codes,
    a: &[f32],
    m: usize,
    k: usize,
    groups: usize,
    rows: &mut Rows,
) {
    let width = 4 * groups;
    let Rows { q: out, range } = rows;
    out.clear();
    out.resize(m * width, 0);
    range.clear();
    let q = codes.max_code(k);
    let (lo, hi) = (_mm512_set1_epi32(-q), _mm512_set1_epi32(q));
    for (row, out) in a.chunks_exact(k).take(m).zip(out.chunks_exact_mut(width)) {
        let (mn, mx) = min_max(row);
        let (sa, base) = codes.row_range(mn, mx, q);
        let inv = if sa > 0.0 && sa.is_finite() {
            1.0 / sa
        } else {
            0.0
        };
        range.push([sa, base]);
        let (vinv, vbase) = (_mm512_set1_ps(inv), _mm512_set1_ps(base));
        let whole = k / 16;
        for i in 0..whole {
            let x = _mm512_loadu_ps(row.as_ptr().add(16 * i));
            // Round to nearest (the default rounding mode).
            let v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_sub_ps(x, vbase), vinv));
            match codes {
                // Narrowed with unsigned saturation (x − mn ≥ 0).
                Codes::Int8 => {
                    let bytes = _mm512_cvtusepi32_epi8(v);
                    _mm_storeu_si128(out.as_mut_ptr().add(16 * i) as *mut __m128i, bytes);
                }
                // Clamped, so that rounding at the row's ends cannot step past ±q and the
                // sums' bound holds.
                Codes::Int16 => {
                    let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
                    let halves = _mm512_cvtsepi32_epi16(v);
                    _mm256_storeu_si256(out.as_mut_ptr().add(32 * i) as *mut __m256i, halves);
                }
            }
        }
        for (p, &x) in row.iter().enumerate().skip(16 * whole) {
            let y = ((x - base) * inv).round();
            match codes {
                Codes::Int8 => out[p] = y.clamp(0.0, 255.0) as u8,
                Codes::Int16 => {
                    let c = y.clamp(-q as f32, q as f32) as i16;
                    out[2 * p..2 * p + 2].copy_from_slice(&c.to_le_bytes());
                }
            }
        }
    }
}

/// A row's minimum and maximum.
#[target_feature(enable = "avx512f")]
unsafe fn min_max(row: &[f32]) -> (f32, f32) {
    let whole = row.len() / 16;
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
    (mn, mx)
}

/// The test both schemes' products are held to: within the quantisation's own bound, each
/// product term off by at most (|a|·sw/2 + |w|·sa/2 + sa·sw/4), summed over k.
/// `scales(k, min and max of A's row, max |w| of W's column)` gives the scheme's (sa, sw).
#[cfg(test)]
pub(super) fn check_within_bound(
    codes: Codes,
    scales: impl Fn(usize, f64, f64, f64) -> (f64, f64),
) {
    for &(m, k, n) in &[(1, 1, 1), (13, 301, 45), (25, 3072, 70)] {
        let (a, w, bias) = super::test_operands(m, k, n);
        let packed = PackedQ::new(codes, k, n, &w, (1, k));
        let mut c = vec![0f32; m * n];
        gemm_bias(m, &a, &packed, &mut c, n, &bias);
        for i in 0..m {
            let ra = &a[i * k..][..k];
            let (lo, hi) = ra
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            for j in 0..n {
                let rw = &w[j * k..][..k];
                let wmax = rw.iter().fold(0f32, |x, v| x.max(v.abs()));
                let (sa, sw) = scales(k, lo as f64, hi as f64, wmax as f64);
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
