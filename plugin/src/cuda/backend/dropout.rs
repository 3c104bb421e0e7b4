//! `kernels/dropout.cu`'s host side: the same counter-based masks as the CPU (`mix64`), so
//! both backends drop the same elements for a seed.

use super::{grid, DView, DViewMut, Gpu};

pub(super) fn forward(g: &Gpu, x: DViewMut<'_>, mask: DViewMut<'_>, p: f32, seed: u64) {
    g.k()
        .dropout_forward(grid(x.len), x.out(), mask.out(), x.len, p, seed);
}

pub(super) fn backward(g: &Gpu, d: DViewMut<'_>, mask: DView<'_>) {
    g.k()
        .dropout_backward(grid(d.len), d.out(), mask.input(), d.len);
}
