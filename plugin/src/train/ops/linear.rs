//! `y = x · Wᵀ + b`, with `W` stored (out, in) as `torch.nn.Linear` does.
//!
//! B is packed once per product (`ops::gemm`); `threads` > 1 splits the rows (of y and dx:
//! tokens; of dW: output features) into blocks, one task each on the worker pool (rayon): each
//! block is the same arithmetic as unsplit, so results do not depend on the thread count.

use super::gemm::{gemm_packed, PackedB, Start};
use super::{rm, tr};

/// Below this many multiply-adds a product stays on one thread.
const PAR_MIN: usize = 1 << 20;

/// Runs `f(first_row, rows, out_block)` over blocks of the rows of `out` (`cols` wide).
fn par_rows(
    out: &mut [f32],
    rows: usize,
    cols: usize,
    threads: usize,
    work: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    let threads = if work < PAR_MIN {
        1
    } else {
        threads.clamp(1, rows.max(1))
    };
    if threads == 1 {
        return f(0, rows, &mut out[..rows * cols]);
    }
    let per = rows.div_ceil(threads);
    rayon::scope(|s| {
        for (n, block) in out[..rows * cols].chunks_mut(per * cols).enumerate() {
            let f = &f;
            s.spawn(move |_| f(n * per, block.len() / cols, block));
        }
    });
}

/// `C (rows × n) start + A · B` with B packed once and the rows of A and C split over the
/// threads, each thread packing only its own rows of A.
#[allow(clippy::too_many_arguments)]
fn product(
    rows: usize,
    a: &[f32],
    a_strides: (usize, usize),
    b: &PackedB,
    c: &mut [f32],
    start: Start<'_>,
    threads: usize,
) {
    let (ars, _) = a_strides;
    let n = b.n;
    par_rows(c, rows, n, threads, rows * b.k * n, |r0, rows, c| {
        gemm_packed(rows, &a[r0 * ars..], a_strides, b, c, n, start, 1);
    });
}

/// x: T × I, w: O × I, b: O → y: T × O.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    y: &mut [f32],
    x: &[f32],
    w: &[f32],
    b: &[f32],
    t: usize,
    i: usize,
    o: usize,
    threads: usize,
) {
    let wt = PackedB::new_threaded(i, o, w, tr(i), threads);
    product(t, x, rm(i), &wt, y, Start::Bias(&b[..o]), threads);
}

/// Accumulates dx (T × I), dw (O × I) and db (O) from dy (T × O).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dx: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dy: &[f32],
    x: &[f32],
    w: &[f32],
    t: usize,
    i: usize,
    o: usize,
    threads: usize,
) {
    // dx += dy · W (W's packing dropped first: x's packs into its buffer)
    {
        let wp = PackedB::new_threaded(o, i, w, rm(i), threads);
        product(t, dy, rm(o), &wp, dx, Start::Accumulate, threads);
    }
    // dW += dyᵀ · x: rows are output features, dW[f] += Σ_t dy[t, f] · x[t]
    let xp = PackedB::new_threaded(t, i, x, rm(i), threads);
    let a_strides = tr(o);
    par_rows(dw, o, i, threads, t * i * o, |f0, rows, dw| {
        gemm_packed(rows, &dy[f0..], a_strides, &xp, dw, i, Start::Accumulate, 1);
    });
    for row in dy[..t * o].chunks_exact(o) {
        for (g, d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}
