// AdamW as torch.optim.AdamW does it (decoupled weight decay, bias-corrected moments), over the
// fp32 master weights; with a non-null p_bf16 the updated weight is also stored as bf16, the
// copy that bf16 mixed-precision products read. bc1 = 1 - beta1^step, bc2 = 1 - beta2^step.
// train/ops/adamw.rs is the reference. Launch: 1-D over n.

extern "C" __global__ void adamw_update(float* p, const float* g, float* m, float* v,
                                        bf16_t* p_bf16, size_t n, float lr, float beta1,
                                        float beta2, float eps, float weight_decay, float bc1,
                                        float bc2) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float w = p[i];
    w -= lr * weight_decay * w;
    float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
    float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
    w -= lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
    p[i] = w;
    if (p_bf16) p_bf16[i] = f32_to_bf16(w);
}
