//! LayerNorm over the last axis: `y = (x − mean) / sqrt(var + eps) · w + b`.
//!
//! Each row's sums run in 16 interleaved lanes (`vmath::sum_by`), compiled for AVX-512 where
//! the CPU has it: summed one element after another, the two reductions of a 768-wide row were
//! a dependency chain of 1,536 additions, 2% of `embed`.

use super::vmath::{sum, sum_by, vectorised};

vectorised! {
    /// x: T × C → y; saves each row's mean and 1/std for the backward pass.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        y: &mut [f32],
        mean: &mut [f32],
        rstd: &mut [f32],
        x: &[f32],
        w: &[f32],
        b: &[f32],
        c: usize,
        eps: f32
    ) {
        for (r, (xr, yr)) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)).enumerate() {
            let m = sum(xr) / c as f32;
            let var = sum_by(xr, |v| (v - m) * (v - m)) / c as f32;
            let s = 1.0 / (var + eps).sqrt();
            for (((y, &x), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *y = (x - m) * s * w + b;
            }
            mean[r] = m;
            rstd[r] = s;
        }
    }
}

vectorised! {
    /// Accumulates dx, dw, db.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
        dy: &[f32],
        x: &[f32],
        w: &[f32],
        mean: &[f32],
        rstd: &[f32],
        c: usize
    ) {
        for (r, ((xr, dyr), dxr)) in x
            .chunks_exact(c)
            .zip(dy.chunks_exact(c))
            .zip(dx.chunks_exact_mut(c))
            .enumerate()
        {
            let (m, s) = (mean[r], rstd[r]);
            // Σ dnorm and Σ dnorm · norm, in 16 lanes each.
            let (mut l1, mut l2) = ([0f32; 16], [0f32; 16]);
            let whole = c / 16 * 16;
            for ((xs, dys), ws) in xr[..whole]
                .chunks_exact(16)
                .zip(dyr[..whole].chunks_exact(16))
                .zip(w[..whole].chunks_exact(16))
            {
                for l in 0..16 {
                    let norm = (xs[l] - m) * s;
                    let dnorm = dys[l] * ws[l];
                    l1[l] += dnorm;
                    l2[l] += dnorm * norm;
                }
            }
            let (mut dnorm_mean, mut dnorm_norm_mean) = (l1.iter().sum::<f32>(), l2.iter().sum::<f32>());
            for j in whole..c {
                let norm = (xr[j] - m) * s;
                let dnorm = dyr[j] * w[j];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
            }
            dnorm_mean /= c as f32;
            dnorm_norm_mean /= c as f32;
            for j in 0..c {
                let norm = (xr[j] - m) * s;
                let dnorm = dyr[j] * w[j];
                db[j] += dyr[j];
                dw[j] += norm * dyr[j];
                dxr[j] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
            }
        }
    }
}
