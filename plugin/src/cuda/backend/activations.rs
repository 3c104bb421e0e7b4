//! `kernels/activations.cu`'s host side: GELU (erf form), tanh (the pooler), ReLU (the
//! centre-token head).

use super::{grid, DView, DViewMut, Gpu};

pub(super) fn gelu_forward(g: &Gpu, y: DViewMut<'_>, x: DView<'_>) {
    g.k().gelu_forward(grid(x.len), y.out(), x.input(), x.len);
}

pub(super) fn gelu_backward(g: &Gpu, dx: DViewMut<'_>, dy: DView<'_>, x: DView<'_>) {
    g.k()
        .gelu_backward(grid(x.len), dx.out(), dy.input(), x.input(), x.len);
}

pub(super) fn tanh_forward(g: &Gpu, x: DViewMut<'_>) {
    g.k().tanh_forward(grid(x.len), x.out(), x.len);
}

pub(super) fn tanh_backward(g: &Gpu, d: DViewMut<'_>, y: DView<'_>) {
    g.k().tanh_backward(grid(d.len), d.out(), y.input(), d.len);
}

pub(super) fn relu_forward(g: &Gpu, x: DViewMut<'_>) {
    g.k().relu_forward(grid(x.len), x.out(), x.len);
}

pub(super) fn relu_backward(g: &Gpu, d: DViewMut<'_>, y: DView<'_>) {
    g.k().relu_backward(grid(d.len), d.out(), y.input(), d.len);
}
