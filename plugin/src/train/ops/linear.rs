//! `y = x · Wᵀ + b`, with `W` stored (out, in) as `torch.nn.Linear` does.
//!
//! `threads` > 1 splits the matrix products into blocks of rows (of y and dx: tokens; of dW:
//! output features), one per scoped thread: each block is the same arithmetic as unsplit, so
//! results do not depend on the thread count.

use super::{gemm_strided, rm, tr};

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
    std::thread::scope(|s| {
        for (n, block) in out[..rows * cols].chunks_mut(per * cols).enumerate() {
            let f = &f;
            s.spawn(move || f(n * per, block.len() / cols, block));
        }
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
    par_rows(y, t, o, threads, t * i * o, |r0, rows, y| {
        for row in y.chunks_exact_mut(o) {
            row.copy_from_slice(&b[..o]);
        }
        gemm_strided(rows, i, o, &x[r0 * i..], rm(i), w, tr(i), y, rm(o), 1.0);
    });
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
    par_rows(dx, t, i, threads, t * i * o, |r0, rows, dx| {
        gemm_strided(rows, o, i, &dy[r0 * o..], rm(o), w, rm(i), dx, rm(i), 1.0);
    });
    // dW rows are output features: dW[f] += Σ_t dy[t, f] · x[t]
    par_rows(dw, o, i, threads, t * i * o, |f0, rows, dw| {
        gemm_strided(rows, t, i, &dy[f0..], tr(o), x, rm(i), dw, rm(i), 1.0);
    });
    for row in dy[..t * o].chunks_exact(o) {
        for (g, d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}
