//! LayerNorm over the last axis: `y = (x − mean) / sqrt(var + eps) · w + b`.

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
    eps: f32,
) {
    for (r, (xr, yr)) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)).enumerate() {
        let m = xr.iter().sum::<f32>() / c as f32;
        let var = xr.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / c as f32;
        let s = 1.0 / (var + eps).sqrt();
        for j in 0..c {
            yr[j] = (xr[j] - m) * s * w[j] + b[j];
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

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
    c: usize,
) {
    for (r, ((xr, dyr), dxr)) in x
        .chunks_exact(c)
        .zip(dy.chunks_exact(c))
        .zip(dx.chunks_exact_mut(c))
        .enumerate()
    {
        let (m, s) = (mean[r], rstd[r]);
        let (mut dnorm_mean, mut dnorm_norm_mean) = (0f32, 0f32);
        for j in 0..c {
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
