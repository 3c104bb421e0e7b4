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
