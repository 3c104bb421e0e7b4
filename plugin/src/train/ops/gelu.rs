//! Exact GELU, as BERT's "gelu": `x · Φ(x) = 0.5 x (1 + erf(x / √2))`.

use std::f32::consts::FRAC_1_SQRT_2;

const INV_SQRT_2PI: f32 = 0.398_942_3;

pub fn forward(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 0.5 * x * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
    }
}

/// Accumulates dx: `Φ(x) + x · φ(x)`.
pub fn backward(dx: &mut [f32], dy: &[f32], x: &[f32]) {
    for ((dx, &dy), &x) in dx.iter_mut().zip(dy).zip(x) {
        let cdf = 0.5 * (1.0 + libm::erff(x * FRAC_1_SQRT_2));
        let pdf = INV_SQRT_2PI * (-0.5 * x * x).exp();
        *dx += dy * (cdf + x * pdf);
    }
}
