// Attention's softmax with a key padding mask, between two cuBLAS batched products:
//   scores = Q Kᵀ (cuBLAS) → probs = softmax(scores / √d + mask) (here) → ctx = (P ⊙ M) V (cuBLAS)
// and the reverse for backward. Rows are (batch, head, query) triples of S scores; `mask` is
// B × S (1 real token, 0 padding: that key gets probability 0). train/ops/attention.rs is the
// reference. attention_fused.cu is the fused, tiled alternative (scores never written to memory).
// Launch: grid (B·H·S), block (a multiple of 32, up to 1024).

// probs: the softmax (saved for backward). With p > 0, drop_mask gets the dropout scale factors
// and weights = P ⊙ M (what V is multiplied by); otherwise weights may alias probs.
extern "C" __global__ void attention_softmax_forward(float* probs, float* weights, float* drop_mask,
                                                     const float* scores, const float* mask,
                                                     int H, int S, float scale, float p,
                                                     unsigned long long seed) {
    size_t r = blockIdx.x;
    int b = (int)(r / ((size_t)H * S));
    const float* x = scores + r * S;
    const float* keep = mask + (size_t)b * S;
    float* out = probs + r * S;
    float mx = NEG_INF;
    for (int j = threadIdx.x; j < S; j += blockDim.x)
        if (keep[j] > 0.0f) mx = fmaxf(mx, x[j] * scale);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float e = keep[j] > 0.0f ? expf(x[j] * scale - mx) : 0.0f;
        out[j] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum);
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float v = out[j] * inv;
        out[j] = v;
        if (p > 0.0f) {
            float m = dropout_scale(seed, r * S + j, p);
            drop_mask[r * S + j] = m;
            weights[r * S + j] = v * m;
        }
    }
}

// In place: dweights (the gradient of what V was multiplied by) becomes the gradient of the
// raw scores Q Kᵀ: dP = dW ⊙ M, dS = scale · P ⊙ (dP − Σⱼ dPⱼ Pⱼ). drop_mask is null without
// dropout.
extern "C" __global__ void attention_softmax_backward(float* d, const float* probs,
                                                      const float* drop_mask, int S, float scale) {
    size_t r = blockIdx.x;
    float* dr = d + r * S;
    const float* pr = probs + r * S;
    float dot = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float dp = drop_mask ? dr[j] * drop_mask[r * S + j] : dr[j];
        dr[j] = dp;
        dot += dp * pr[j];
    }
    dot = block_sum(dot);
    for (int j = threadIdx.x; j < S; j += blockDim.x) dr[j] = scale * pr[j] * (dr[j] - dot);
}
