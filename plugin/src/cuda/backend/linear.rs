//! Linear layers on cuBLAS (`gemm.rs` says which call computes each product), the bias added
//! by `tensor.cu`'s kernels; inputs in the backend's precision (`cast.rs`).

use super::{tensor, DView, DViewMut, Gpu};
use crate::cuda::gemm;

/// y (t × o) = x (t × i) · Wᵀ + b.
pub(super) fn forward(
    g: &Gpu,
    y: DViewMut<'_>,
    x: DView<'_>,
    w: DView<'_>,
    b: DView<'_>,
    (t, i, o): (usize, usize, usize),
) {
    let (w, x) = (g.operand(w.ptr, w.len), g.operand(x.ptr, x.len));
    g.run([gemm::linear_forward(t, i, o, x.ptr, w.ptr, y.ptr)]);
    tensor::add_bias_rows(g, y.out(), b.input(), t * o, o);
}

/// dx += dy · W, dW += dyᵀ · x, db += Σ_t dy.
pub(super) fn backward(
    g: &Gpu,
    (dx, dw, db): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
    dy: DView<'_>,
    x: DView<'_>,
    w: DView<'_>,
    (t, i, o): (usize, usize, usize),
) {
    let dy_in = g.operand(dy.ptr, dy.len);
    let (w, x) = (g.operand(w.ptr, w.len), g.operand(x.ptr, x.len));
    g.run(gemm::linear_backward(
        t, i, o, dy_in.ptr, x.ptr, w.ptr, dx.ptr, dw.ptr,
    ));
    tensor::column_sums_into(g, db.out(), dy.input(), t, o);
}
