// LayerNorm over rows of C: y = (x - mean) / sqrt(var + eps) * w + b, saving mean and 1/std.
// Launch: grid (rows), block (a multiple of 32, up to 1024). train/ops/layernorm.rs is the
// reference; variance is two-pass (from the mean), as there.

extern "C" __global__ void layernorm_forward(float* y, float* mean, float* rstd, const float* x,
                                             const float* w, const float* b, int C, float eps) {
    int r = blockIdx.x;
    const float* xr = x + (size_t)r * C;
    float* yr = y + (size_t)r * C;
    float s = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) s += xr[j];
    float m = block_sum(s) / C;
    float v = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) v += (xr[j] - m) * (xr[j] - m);
    float inv = rsqrtf(block_sum(v) / C + eps);
    for (int j = threadIdx.x; j < C; j += blockDim.x) yr[j] = (xr[j] - m) * inv * w[j] + b[j];
    if (threadIdx.x == 0) {
        mean[r] = m;
        rstd[r] = inv;
    }
}

// Accumulates dx, dw, db.
extern "C" __global__ void layernorm_backward(float* dx, float* dw, float* db, const float* dy,
                                              const float* x, const float* w, const float* mean,
                                              const float* rstd, int C) {
    int r = blockIdx.x;
    const float* xr = x + (size_t)r * C;
    const float* dyr = dy + (size_t)r * C;
    float* dxr = dx + (size_t)r * C;
    float m = mean[r], s = rstd[r];
    float a = 0.0f, bsum = 0.0f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float dnorm = dyr[j] * w[j];
        a += dnorm;
        bsum += dnorm * (xr[j] - m) * s;
    }
    float dnorm_mean = block_sum(a) / C;
    float dnorm_norm_mean = block_sum(bsum) / C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float norm = (xr[j] - m) * s;
        float dnorm = dyr[j] * w[j];
        atomicAdd(db + j, dyr[j]);
        atomicAdd(dw + j, norm * dyr[j]);
        dxr[j] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}
