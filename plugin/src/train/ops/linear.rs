//! `y = x · Wᵀ + b`, with `W` stored (out, in) as `torch.nn.Linear` does.

use super::{gemm, rm, tr};

/// x: T × I, w: O × I, b: O → y: T × O.
pub fn forward(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32], t: usize, i: usize, o: usize) {
    for row in y[..t * o].chunks_exact_mut(o) {
        row.copy_from_slice(&b[..o]);
    }
    gemm(t, i, o, x, rm(i), w, tr(i), y, 1.0);
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
) {
    gemm(t, o, i, dy, rm(o), w, rm(i), dx, 1.0);
    gemm(o, t, i, dy, tr(o), x, rm(i), dw, 1.0);
    for row in dy[..t * o].chunks_exact(o) {
        for (g, d) in db.iter_mut().zip(row) {
            *g += d;
        }
    }
}
