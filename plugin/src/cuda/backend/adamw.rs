//! `kernels/adamw.cu`'s host side: the bias corrections for the step, then one pass over the
//! parameters and their moments.

use super::{grid, DView, DViewMut, Gpu, Out};
use crate::train::backend::AdamW;

pub(super) fn update(
    g: &Gpu,
    opt: &AdamW,
    p: DViewMut<'_>,
    grad: DView<'_>,
    (m, v): (DViewMut<'_>, DViewMut<'_>),
    step: u64,
    decay: bool,
) {
    let bc1 = 1.0 - opt.beta1.powi(step as i32);
    let bc2 = 1.0 - opt.beta2.powi(step as i32);
    let wd = if decay { opt.weight_decay } else { 0.0 };
    g.k().adamw_update(
        grid(p.len),
        p.out(),
        grad.input(),
        m.out(),
        v.out(),
        // No bf16 copy of the weights is kept yet (README.md: measured first).
        Out::null(),
        p.len,
        opt.lr,
        opt.beta1,
        opt.beta2,
        opt.eps,
        wd,
        bc1,
        bc2,
    );
}
