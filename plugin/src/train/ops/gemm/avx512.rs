//! The fp32 micro-kernel on AVX-512: a tile of up to `MR` rows × `NR` (32) columns of C,
//! accumulated over a block of k in 2 × `MR` zmm registers. A is read through its two strides
//! (one broadcast per row and k step: a packed tile, or A in place), B from a packed panel
//! (`NR` floats per k step).
//!
//! Why our own: at DNABERT's shapes, with both cores busy, `matrixmultiply` ran at ~90-110
//! GFLOP/s per core and the `gemm` crate at ~60-80 (a scratch harness, not kept), where MKL
//! (PyTorch, one thread per process) ran at ~130-160; weights packed once, at load, also save
//! the packing of B on every call, which inference repeats for every window. `cargo bench
//! --bench gemm_shapes` compares this kernel with `matrixmultiply` on the machine at hand.

use std::arch::x86_64::*;

use super::NR;

/// Rows of C per tile: 24 accumulators + 2 B vectors + a broadcast fit in 32 registers.
pub const MR: usize = 12;

/// How a tile's accumulators start.
#[derive(Clone, Copy)]
pub enum Init {
    Zero,
    /// C's own values (`C += A·B`).
    Load,
    /// A bias row, `NR` floats from this column (padded past the last column).
    Bias(*const f32),
}

/// Lane masks of the two vectors of a tile `cols` wide (1..=NR).
#[inline(always)]
pub(super) fn masks(cols: usize) -> (u16, u16) {
    let m = |n: usize| {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as u16
        }
    };
    (m(cols), m(cols.saturating_sub(16)))
}

/// `C[0..R, 0..cols] (init) + A[0..R, 0..k] · Bpanel[0..k, 0..cols]`. `PACKED`: A is a
/// packed tile (strides 1 and `MR`, known here, so that each broadcast has a fixed offset
/// instead of a chain of address additions).
///
/// # Safety
/// AVX-512F must be present; A must hold `R` rows of `k` elements at strides (`ars`, `acs`),
/// `b` `k × NR` floats, and C `R` rows of `cols` at stride `ldc`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn tile<const R: usize, const PACKED: bool>(
    k: usize,
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    init: Init,
) {
    let (ars, acs) = if PACKED { (1, MR) } else { (ars, acs) };
    let (m0, m1) = masks(cols);
    // The tile below this one is usually the next one run (`panels_avx512` sweeps a panel's
    // tiles top to bottom): fetch its rows of C now, under this tile's k loop, instead of
    // stalling on them at its start (C of a 512 × 3072 product is far out of L2). A hint: it
    // never faults, so past the last row it costs nothing but the instruction. Measured alone
    // (gemm_shapes, with and without, alternating on a Zen 5) its effect was within the
    // machine's drift; the 2026-12-04 benchmarks in the README ran with it.
    for r in 0..R {
        let row = c.wrapping_add((R + r) * ldc);
        _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(16) as *const i8);
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    match init {
        Init::Zero => {}
        Init::Load => {
            for (r, acc) in acc.iter_mut().enumerate() {
                let row = c.add(r * ldc);
                acc[0] = _mm512_maskz_loadu_ps(m0, row);
                acc[1] = _mm512_maskz_loadu_ps(m1, row.add(16));
            }
        }
        Init::Bias(bias) => {
            let (b0, b1) = (_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16)));
            for acc in acc.iter_mut() {
                *acc = [b0, b1];
            }
        }
    }
    let mut ap = a;
    let mut bp = b;
    for _ in 0..k {
        let b0 = _mm512_loadu_ps(bp);
        let b1 = _mm512_loadu_ps(bp.add(16));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_ps(*ap.add(r * ars));
            acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
        }
        ap = ap.add(acs);
        bp = bp.add(NR);
    }
    for (r, acc) in acc.iter().enumerate() {
        let row = c.add(r * ldc);
        _mm512_mask_storeu_ps(row, m0, acc[0]);
        _mm512_mask_storeu_ps(row.add(16), m1, acc[1]);
    }
}

/// The tile function for `rows` rows (1..=MR), A packed or read in place.
pub type TileFn =
    unsafe fn(usize, *const f32, usize, usize, *const f32, *mut f32, usize, usize, Init);

pub fn tile_for(rows: usize, packed: bool) -> TileFn {
    macro_rules! pick {
        ($($r:literal)*) => {
            match (rows, packed) {
                $(($r, true) => tile::<$r, true>, ($r, false) => tile::<$r, false>,)*
                _ => unreachable!("a tile has 1..={MR} rows"),
            }
        };
    }
    pick!(1 2 3 4 5 6 7 8 9 10 11 12)
}

/// `panel[p · NR + j] = src[j · cs + p]` for p < k and j < NR: a full panel packed from NR
/// rows of a row-major matrix (a weight used as Wᵀ), 16 × 16 blocks through registers. Read
/// element by element, the panel's stores run at a third of the speed.
///
/// # Safety
/// AVX-512F must be present.
#[target_feature(enable = "avx512f")]
pub unsafe fn transpose_panel(panel: &mut [f32], src: &[f32], k: usize, cs: usize) {
    assert!(panel.len() >= k * NR);
    assert!(k == 0 || src.len() >= (NR - 1) * cs + k);
    let blocks = k / 16 * 16;
    for p0 in (0..blocks).step_by(16) {
        for half in 0..NR / 16 {
            let mut rows = [_mm512_setzero_ps(); 16];
            for (j, r) in rows.iter_mut().enumerate() {
                *r = _mm512_loadu_ps(src.as_ptr().add((half * 16 + j) * cs + p0));
            }
            for (p, v) in transpose16(rows).iter().enumerate() {
                _mm512_storeu_ps(panel.as_mut_ptr().add((p0 + p) * NR + half * 16), *v);
            }
        }
    }
    for p in blocks..k {
        for j in 0..NR {
            panel[p * NR + j] = src[j * cs + p];
        }
    }
}

/// `tile[p · MR + r] = a[r · ars + p · acs]` for r < `rows` (≤ MR), p < `kb`: one tile of A
/// packed, each k step's `rows` values side by side. A row-major (`acs` = 1) goes 16 k steps
/// at a time through the 16 × 16 transpose, one cache line per row read whole (element by
/// element this packing was ~4% of `embed`); A column-major (`ars` = 1) is a copy of `rows`
/// floats per step. Lanes past `rows` are left as they are or zeroed: the tile function for
/// `rows` rows never reads them.
///
/// # Safety
/// AVX-512F must be present; `a` must hold every element named above, `tile` `kb · MR` floats.
#[target_feature(enable = "avx512f")]
pub unsafe fn pack_a_tile(
    tile: &mut [f32],
    a: *const f32,
    ars: usize,
    acs: usize,
    rows: usize,
    kb: usize,
) {
    assert!(rows <= MR && tile.len() >= kb * MR);
    let out = tile.as_mut_ptr();
    if acs == 1 {
        let lanes = (1u16 << MR) - 1;
        let blocks = kb / 16 * 16;
        for p0 in (0..blocks).step_by(16) {
            let mut v = [_mm512_setzero_ps(); 16];
            for (r, x) in v.iter_mut().take(rows).enumerate() {
                *x = _mm512_loadu_ps(a.add(r * ars + p0));
            }
            for (p, step) in transpose16(v).iter().enumerate() {
                _mm512_mask_storeu_ps(out.add((p0 + p) * MR), lanes, *step);
            }
        }
        for p in blocks..kb {
            for r in 0..rows {
                *out.add(p * MR + r) = *a.add(r * ars + p);
            }
        }
    } else if ars == 1 {
        let lanes = ((1u32 << rows) - 1) as u16;
        for p in 0..kb {
            let v = _mm512_maskz_loadu_ps(lanes, a.add(p * acs));
            _mm512_mask_storeu_ps(out.add(p * MR), lanes, v);
        }
    } else {
        for p in 0..kb {
            for r in 0..rows {
                *out.add(p * MR + r) = *a.add(r * ars + p * acs);
            }
        }
    }
}

/// The transpose of 16 vectors of 16: `out[c][r] = r[r][c]`. 32-bit, then 64-bit interleaves
/// within 128-bit lanes, then two rounds of lane shuffles.
#[target_feature(enable = "avx512f")]
unsafe fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
    // t[2i], t[2i+1]: rows 2i and 2i+1 interleaved (elements 0,1 and 2,3 of each lane).
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4i + e], lane L: rows 4i..4i+4 of column 4L + e.
    let mut u = [_mm512_setzero_ps(); 16];
    let pd = _mm512_castps_pd;
    for i in 0..4 {
        let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(a), pd(c)));
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(a), pd(c)));
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(b), pd(d)));
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(b), pd(d)));
    }
    // Column 4L + e gathers lane L of u[e], u[4 + e], u[8 + e], u[12 + e].
    let mut out = [_mm512_setzero_ps(); 16];
    for e in 0..4 {
        let v0 = _mm512_shuffle_f32x4::<0x44>(u[e], u[4 + e]);
        let v1 = _mm512_shuffle_f32x4::<0xEE>(u[e], u[4 + e]);
        let w0 = _mm512_shuffle_f32x4::<0x44>(u[8 + e], u[12 + e]);
        let w1 = _mm512_shuffle_f32x4::<0xEE>(u[8 + e], u[12 + e]);
        out[e] = _mm512_shuffle_f32x4::<0x88>(v0, w0);
        out[4 + e] = _mm512_shuffle_f32x4::<0xDD>(v0, w0);
        out[8 + e] = _mm512_shuffle_f32x4::<0x88>(v1, w1);
        out[12 + e] = _mm512_shuffle_f32x4::<0xDD>(v1, w1);
    }
    out
}
