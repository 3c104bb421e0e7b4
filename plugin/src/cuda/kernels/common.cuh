// Prepended to every kernel family before NVRTC compiles it (see cuda/mod.rs): no #include, so
// the sources compile with the NVRTC library alone (PyPI's nvidia-cuda-nvrtc ships no headers).
//
// bf16 is carried as its 16 raw bits (unsigned short): the kernels only load and store it, and
// cuBLAS does bf16 arithmetic itself.

typedef unsigned short bf16_t;
typedef unsigned long long u64;

// -inf without math.h.
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf16_to_f32(bf16_t h) {
    return __uint_as_float(((unsigned int)h) << 16);
}

// Round to nearest even, as torch.Tensor.to(torch.bfloat16) does; NaN stays NaN.
__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (bf16_t)((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16_t)(u >> 16);
}

// SplitMix64's finaliser, the same mix as train/ops/dropout.rs, so that every backend drops the
// same elements for the same (seed, index).
__device__ __forceinline__ u64 mix64(u64 z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// 0 (dropped) or 1/(1-p) (kept) for element i: train/ops/dropout.rs's keep() and fill_mask().
__device__ __forceinline__ float dropout_scale(u64 seed, u64 i, float p) {
    float u = (float)(mix64(seed ^ (i * 0x9E3779B97F4A7C15ull)) >> 40) / 16777216.0f;
    return u >= p ? 1.0f / (1.0f - p) : 0.0f;
}

// Sum over a warp; every lane gets the total.
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of up to 1024 threads (a multiple of 32); every thread gets the total.
__device__ float block_sum(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? partial[lane] : 0.0f;
    return warp_sum(v);
}

__device__ float block_max(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? partial[lane] : NEG_INF;
    return warp_max(v);
}
