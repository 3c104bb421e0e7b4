//! `kernels/layernorm.cu`'s host side. The backward pass's weight and bias gradients go
//! through chunk partials and a second pass (`tensor::column_sums_finish`), so they add in a
//! fixed order.

use cudarc::driver::CudaSlice;

use super::{config, rows, tensor, DView, DViewMut, Gpu};
use crate::cuda::launch;

pub(super) fn forward(
    g: &Gpu,
    (y, mean, rstd): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
    x: DView<'_>,
    w: DView<'_>,
    b: DView<'_>,
    c: usize,
    eps: f32,
) {
    g.k().layernorm_forward(
        rows(x.len / c, c),
        y.out(),
        mean.out(),
        rstd.out(),
        x.input(),
        w.input(),
        b.input(),
        c as i32,
        eps,
    );
}

pub(super) fn backward(
    g: &Gpu,
    (dx, dw, db): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
    dy: DView<'_>,
    x: DView<'_>,
    w: DView<'_>,
    (mean, rstd): (DView<'_>, DView<'_>),
    c: usize,
) {
    let n = x.len / c;
    g.k().layernorm_backward(
        rows(n, c),
        dx.out(),
        dy.input(),
        x.input(),
        w.input(),
        mean.input(),
        rstd.input(),
        c as i32,
    );
    let (pw, pb): (CudaSlice<f32>, CudaSlice<f32>) = (
        g.scratch(launch::chunks(n) * c),
        g.scratch(launch::chunks(n) * c),
    );
    g.k().layernorm_params_backward(
        config(launch::column_chunks(n, c)),
        g.out(&pw),
        g.out(&pb),
        dy.input(),
        x.input(),
        mean.input(),
        rstd.input(),
        n as i32,
        c as i32,
        launch::CHUNK_ROWS as i32,
    );
    tensor::column_sums_finish(g, dw.out(), &pw, n, c);
    tensor::column_sums_finish(g, db.out(), &pb, n, c);
}
