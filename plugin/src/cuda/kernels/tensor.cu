// Small tensor operations of the Backend trait: y += a·x, y *= a, Σx² (gradient clipping),
// row gather and its scatter-add backward (the MLM head reads only masked positions).

extern "C" __global__ void add_scaled(float* y, const float* x, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

extern "C" __global__ void scale(float* y, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] *= a;
}

// out[0] += Σ x² over the block's elements, accumulated in f64 as the CPU does.
// Launch: 1-D over n with blockDim a multiple of 32.
extern "C" __global__ void sum_squares(double* out, const float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    float v = i < n ? x[i] * x[i] : 0.0f;
    v = block_sum(v);
    if (threadIdx.x == 0) atomicAdd(out, (double)v);
}

// dst[r] = src[rows[r]] for rows of C. Launch: grid (rows), block (min(C, 1024)).
extern "C" __global__ void gather_rows(float* dst, const float* src, const unsigned int* rows,
                                       int C) {
    const float* s = src + (size_t)rows[blockIdx.x] * C;
    float* d = dst + (size_t)blockIdx.x * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) d[j] = s[j];
}

// dst[rows[r]] += src[r]; rows may repeat.
extern "C" __global__ void scatter_add_rows(float* dst, const float* src,
                                            const unsigned int* rows, int C) {
    const float* s = src + (size_t)blockIdx.x * C;
    float* d = dst + (size_t)rows[blockIdx.x] * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) atomicAdd(d + j, s[j]);
}

// y[t, j] += b[j] over rows of C (the bias of a linear layer). Launch: 1-D over n = rows·C.
extern "C" __global__ void add_bias_rows(float* y, const float* b, size_t n, int C) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += b[i % C];
}

// The bias gradient: db[j] += Σ_t dy[t, j] over T rows of C. Launch: 1-D over C.
extern "C" __global__ void sum_rows_into(float* db, const float* dy, int T, int C) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    float s = 0.0f;
    for (int t = 0; t < T; t++) s += dy[(size_t)t * C + j];
    db[j] += s;
}

// out = a ⊙ b (attention's dropped-out weights P ⊙ M). Launch: 1-D over n.
extern "C" __global__ void mul_into(float* out, const float* a, const float* b, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] * b[i];
}
