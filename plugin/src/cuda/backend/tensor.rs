//! `kernels/tensor.cu`'s host side: y += a·x, y *= a, Σx², row gather and scatter-add, bias
//! rows and column sums, every reduction in a fixed order (`cuda/launch.rs`).

use cudarc::driver::CudaSlice;

use super::{config, grid, rows, DView, DViewMut, Gpu, In, Out};
use crate::cuda::launch;

pub(super) fn add_scaled(g: &Gpu, y: DViewMut<'_>, x: DView<'_>, a: f32) {
    assert_eq!(y.len, x.len);
    g.k().add_scaled(grid(y.len), y.out(), x.input(), a, y.len);
}

pub(super) fn scale(g: &Gpu, y: DViewMut<'_>, a: f32) {
    g.k().scale(grid(y.len), y.out(), a, y.len);
}

/// The fixed grid's block partials, added on the host in block order, in f64.
pub(super) fn sum_squares(g: &Gpu, x: DView<'_>) -> f64 {
    let l = launch::sum_squares();
    let partial: CudaSlice<f64> = g.scratch(l.grid.0);
    g.k()
        .sum_squares(config(l), g.out(&partial), x.input(), x.len);
    let partials = g.stream.clone_dtoh(&partial).expect("device → host copy");
    partials.iter().sum()
}

/// `dst[r] = src[rows[r]]`, the row indices copied to the device.
pub(super) fn gather_rows(g: &Gpu, dst: DViewMut<'_>, src: DView<'_>, rows_of: &[usize], c: usize) {
    if rows_of.is_empty() {
        return;
    }
    let idx: Vec<u32> = rows_of.iter().map(|&r| r as u32).collect();
    let idx = g.to_device(&idx);
    g.k().gather_rows(
        rows(rows_of.len(), c),
        dst.out(),
        src.input(),
        g.out(&idx).read(),
        c as i32,
    );
}

/// `dst[rows[i]] += src[i]` with the sources grouped by target (`launch::group_rows`), so
/// that repeated rows add in a fixed order.
pub(super) fn scatter_add_rows(
    g: &Gpu,
    dst: DViewMut<'_>,
    src: DView<'_>,
    rows_of: &[usize],
    c: usize,
) {
    if rows_of.is_empty() {
        return;
    }
    let grouped = launch::group_rows(rows_of);
    let (targets, offsets, order) = (
        g.to_device(&grouped.targets),
        g.to_device(&grouped.offsets),
        g.to_device(&grouped.order),
    );
    g.k().scatter_add_rows(
        rows(grouped.targets.len(), c),
        dst.out(),
        src.input(),
        g.out(&targets).read(),
        g.out(&offsets).read(),
        g.out(&order).read(),
        c as i32,
    );
}

/// `y[r, j] += b[j]` over `n` elements in rows of `c`.
pub(super) fn add_bias_rows(g: &Gpu, y: Out<f32>, b: In<f32>, n: usize, c: usize) {
    g.k().add_bias_rows(grid(n), y, b, n, c as i32);
}

/// `out[j] += Σ_r a[r, j]` over `t` rows of `c`, in the fixed order of two passes.
pub(super) fn column_sums_into(g: &Gpu, out: Out<f32>, a: In<f32>, t: usize, c: usize) {
    let partial: CudaSlice<f32> = g.scratch(launch::chunks(t) * c);
    g.k().column_sums_partial(
        config(launch::column_chunks(t, c)),
        g.out(&partial),
        a,
        t as i32,
        c as i32,
        launch::CHUNK_ROWS as i32,
    );
    column_sums_finish(g, out, &partial, t, c);
}

/// The second pass: the chunks' partial sums (`launch::chunks(t)` rows of `c`) into `out`.
pub(super) fn column_sums_finish(
    g: &Gpu,
    out: Out<f32>,
    partial: &CudaSlice<f32>,
    t: usize,
    c: usize,
) {
    g.k().column_sums_finish(
        grid(c),
        out,
        g.out(partial).read(),
        launch::chunks(t) as i32,
        c as i32,
    );
}

/// `out = a ⊙ b` over `n`.
pub(super) fn mul_into(g: &Gpu, out: Out<f32>, a: In<f32>, b: In<f32>, n: usize) {
    g.k().mul_into(grid(n), out, a, b, n);
}
