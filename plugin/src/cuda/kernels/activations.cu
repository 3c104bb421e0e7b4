// Elementwise activations, forward and backward: exact GELU (BERT's "gelu"), bias + GELU fused
// (the FFN's first projection epilogue), tanh (pooler), ReLU (centre head).
// Launch: 1-D over n elements. train/ops/gelu.rs is the reference.

__device__ __forceinline__ float gelu(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

__device__ __forceinline__ float gelu_grad(float x) {
    float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
    float pdf = 0.3989422804014327f * expf(-0.5f * x * x);
    return cdf + x * pdf;
}

extern "C" __global__ void gelu_forward(float* y, const float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = gelu(x[i]);
}

// Accumulates dx.
extern "C" __global__ void gelu_backward(float* dx, const float* dy, const float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) dx[i] += dy[i] * gelu_grad(x[i]);
}

// In place over rows of C: x = x + b (kept as the GELU input for backward), y = gelu(x).
extern "C" __global__ void bias_gelu_forward(float* y, float* x, const float* b, size_t n, int C) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float v = x[i] + b[i % C];
        x[i] = v;
        y[i] = gelu(v);
    }
}

extern "C" __global__ void tanh_forward(float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = tanhf(x[i]);
}

// From the output y: d = d * (1 - y^2).
extern "C" __global__ void tanh_backward(float* d, const float* y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) d[i] *= 1.0f - y[i] * y[i];
}

extern "C" __global__ void relu_forward(float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) x[i] = fmaxf(x[i], 0.0f);
}

extern "C" __global__ void relu_backward(float* d, const float* y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n && !(y[i] > 0.0f)) d[i] = 0.0f;
}
