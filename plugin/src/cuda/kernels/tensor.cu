// Small tensor operations of the Backend trait: y += a·x, y *= a, Σx² (gradient clipping),
// row gather and its scatter-add backward (the MLM head reads only masked positions), bias
// addition and column sums. No float atomics anywhere: every reduction sums in an order fixed by
// the launch, so a run gives the same bits each time (`pretrain --resume` relies on it).

extern "C" __global__ void add_scaled(float* y, const float* x, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += a * x[i];
}

extern "C" __global__ void scale(float* y, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] *= a;
}

// Σ x², first pass: partial[block] = the block's grid-stride share, summed in a fixed order (the
// host adds the partials, in order, in f64 as the CPU does), so that two runs give the same bits.
// Launch: a fixed grid (not the device's SM count, which would change the order between cards),
// blockDim a multiple of 32.
extern "C" __global__ void sum_squares(double* partial, const float* x, size_t n) {
    float v = 0.0f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        v += x[i] * x[i];
    v = block_sum(v);
    if (threadIdx.x == 0) partial[blockIdx.x] = (double)v;
}

// dst[r] = src[rows[r]] for rows of C. Launch: grid (rows), block (min(C, 1024)).
extern "C" __global__ void gather_rows(float* dst, const float* src, const unsigned int* rows,
                                       int C) {
    const float* s = src + (size_t)rows[blockIdx.x] * C;
    float* d = dst + (size_t)blockIdx.x * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) d[j] = s[j];
}

// dst[targets[u]] += Σ src[order[i]] for i in offsets[u] .. offsets[u + 1]: a scatter-add whose
// rows may repeat, with the rows grouped by target on the host (a target's sources in their
// order), so that each target is one block's and the sum's order is fixed. Launch: grid (number
// of targets), block (min(C, 1024)).
extern "C" __global__ void scatter_add_rows(float* dst, const float* src,
                                            const unsigned int* targets,
                                            const unsigned int* offsets,
                                            const unsigned int* order, int C) {
    unsigned int u = blockIdx.x;
    float* d = dst + (size_t)targets[u] * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float acc = 0.0f;
        for (unsigned int i = offsets[u]; i < offsets[u + 1]; i++)
            acc += src[(size_t)order[i] * C + j];
        d[j] += acc;
    }
}

// y[t, j] += b[j] over rows of C (the bias of a linear layer). Launch: 1-D over n = rows·C.
extern "C" __global__ void add_bias_rows(float* y, const float* b, size_t n, int C) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += b[i % C];
}

// Column sums over T rows of C in two passes with a fixed order (the bias gradients, the token
// type's): first partial[chunk, j] = Σ a[r, j] over the chunk's rows blockIdx.y·R .. min(T,
// (blockIdx.y + 1)·R), in order. Launch: grid (ceil(C / blockDim), ceil(T / R)).
extern "C" __global__ void column_sums_partial(float* partial, const float* a, int T, int C, int R) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    int r0 = blockIdx.y * R, r1 = r0 + R < T ? r0 + R : T;
    float s = 0.0f;
    for (int r = r0; r < r1; r++) s += a[(size_t)r * C + j];
    partial[(size_t)blockIdx.y * C + j] = s;
}

// Then out[j] += Σ partial[p, j] over the P chunks, in order. Launch: 1-D over C.
extern "C" __global__ void column_sums_finish(float* out, const float* partial, int P, int C) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    float s = 0.0f;
    for (int p = 0; p < P; p++) s += partial[(size_t)p * C + j];
    out[j] += s;
}

// out = a ⊙ b (attention's dropped-out weights P ⊙ M). Launch: 1-D over n.
extern "C" __global__ void mul_into(float* out, const float* a, const float* b, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) out[i] = a[i] * b[i];
}
