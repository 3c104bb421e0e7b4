// fp32 <-> bf16 (round to nearest even), for bf16 inference weights and mixed-precision
// training's bf16 copies of activations and weights. Launch: 1-D over n.

extern "C" __global__ void cast_f32_to_bf16(bf16_t* y, const float* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = f32_to_bf16(x[i]);
}

extern "C" __global__ void cast_bf16_to_f32(float* y, const bf16_t* x, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = bf16_to_f32(x[i]);
}
