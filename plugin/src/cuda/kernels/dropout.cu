// Inverted dropout with counter-based randomness: element i drops when a hash of (seed, i) says
// so, exactly as train/ops/dropout.rs decides, so CPU and GPU runs drop the same elements and a
// resumed run redraws them. Launch: 1-D over n.

// In place: mask[i] = 0 or 1/(1-p); x *= mask.
extern "C" __global__ void dropout_forward(float* x, float* mask, size_t n, float p,
                                           unsigned long long seed) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) {
        float m = dropout_scale(seed, i, p);
        mask[i] = m;
        x[i] *= m;
    }
}

// In place: d *= mask.
extern "C" __global__ void dropout_backward(float* d, const float* mask, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) d[i] *= mask[i];
}
