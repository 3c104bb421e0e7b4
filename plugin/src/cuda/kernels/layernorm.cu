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

// Accumulates dx; the weight and bias gradients are layernorm_params_backward's. Launch: as
// layernorm_forward.
extern "C" __global__ void layernorm_backward(float* dx, const float* dy, const float* x,
                                              const float* w, const float* mean,
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
        dxr[j] += (dyr[j] * w[j] - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

// The weight and bias gradients' first pass, in a fixed order so that two runs give the same
// bits (float atomics would add in whatever order the blocks ran): for the chunk of rows
// blockIdx.y·R .. min(T, (blockIdx.y + 1)·R), pw[chunk, j] = Σ dy·norm and pb[chunk, j] = Σ dy,
// rows in order. column_sums_finish then adds the chunks, in order, into dw and db.
// Launch: grid (ceil(C / blockDim), ceil(T / R)), 1-D blocks.
extern "C" __global__ void layernorm_params_backward(float* pw, float* pb, const float* dy,
                                                     const float* x, const float* mean,
                                                     const float* rstd, int T, int C, int R) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    int r0 = blockIdx.y * R, r1 = r0 + R < T ? r0 + R : T;
    float sw = 0.0f, sb = 0.0f;
    for (int r = r0; r < r1; r++) {
        float d = dy[(size_t)r * C + j];
        sw += d * (x[(size_t)r * C + j] - mean[r]) * rstd[r];
        sb += d;
    }
    pw[(size_t)blockIdx.y * C + j] = sw;
    pb[(size_t)blockIdx.y * C + j] = sb;
}
