// Fused attention without dropout: ctx = softmax(Q Kᵀ · scale, key padding mask) V, in one pass
// over K and V tiles with an online softmax, so the B·H·S² scores never reach memory (the
// FlashAttention-2 scheme in fp32 CUDA cores, no tensor cores yet). Forward saves each row's
// log-sum-exp (B·H·S floats) and a copy of the mask (B·S) for backward, which recomputes the
// probabilities from them.
//
// Layout as the unfused path: q, k, v, ctx and their gradients are (B·S) × (H·D) row-major, head
// h in columns [h·D, (h+1)·D); mask is B × S (1 real key, 0 padding: probability 0). A padded
// query row still attends to the real keys, as in the unfused path. train/ops/attention.rs is
// the reference.
//
// Launch: grid (⌈S / FUSED_ROWS⌉, B·H), block FUSED_ROWS threads, one query (forward, dq) or key
// (dk, dv) row per thread; D ≤ FUSED_MAX_D (the host falls back to the unfused path otherwise).

#define FUSED_ROWS 64
#define FUSED_TILE 32
#define FUSED_MAX_D 64

// Row `i` of head `h` in batch row `b` of a (B·S) × (H·D) tensor.
__device__ __forceinline__ size_t head_row(int b, int h, int i, int S, int H, int D) {
    return ((size_t)b * S + i) * ((size_t)H * D) + (size_t)h * D;
}

// Loads rows [t0, t0 + FUSED_TILE) of one head of x into tile (zeros past S), and the mask.
__device__ __forceinline__ void load_tile(float (*tile)[FUSED_MAX_D], const float* x, int b, int h,
                                          int t0, int S, int H, int D) {
    for (int e = threadIdx.x; e < FUSED_TILE * D; e += blockDim.x) {
        int r = e / D, d = e % D;
        tile[r][d] = t0 + r < S ? x[head_row(b, h, t0 + r, S, H, D) + d] : 0.0f;
    }
}

__device__ __forceinline__ float dot_d(const float* a, const float* b, int D) {
    float s = 0.0f;
    for (int d = 0; d < D; ++d) s += a[d] * b[d];
    return s;
}

extern "C" __global__ void attention_fused_forward(float* ctx, float* lse, float* saved_mask,
                                                   const float* q, const float* k,
                                                   const float* v, const float* mask, int H,
                                                   int S, int D, float scale) {
    __shared__ float ks[FUSED_TILE][FUSED_MAX_D];
    __shared__ float vs[FUSED_TILE][FUSED_MAX_D];
    __shared__ float keep[FUSED_TILE];
    int b = blockIdx.y / H, h = blockIdx.y % H;
    int i = blockIdx.x * FUSED_ROWS + threadIdx.x;
    bool row = i < S;
    float qi[FUSED_MAX_D], acc[FUSED_MAX_D], sc[FUSED_TILE];
    for (int d = 0; d < D; ++d) {
        qi[d] = row ? q[head_row(b, h, i, S, H, D) + d] : 0.0f;
        acc[d] = 0.0f;
    }
    float m = NEG_INF, l = 0.0f;
    for (int t0 = 0; t0 < S; t0 += FUSED_TILE) {
        load_tile(ks, k, b, h, t0, S, H, D);
        load_tile(vs, v, b, h, t0, S, H, D);
        for (int r = threadIdx.x; r < FUSED_TILE; r += blockDim.x)
            keep[r] = t0 + r < S ? mask[(size_t)b * S + t0 + r] : 0.0f;
        __syncthreads();
        // Scores of the tile, then one rescale of the running sums for the tile's maximum.
        float tile_max = NEG_INF;
        for (int r = 0; r < FUSED_TILE; ++r) {
            sc[r] = keep[r] > 0.0f ? dot_d(qi, ks[r], D) * scale : NEG_INF;
            tile_max = fmaxf(tile_max, sc[r]);
        }
        float m_new = fmaxf(m, tile_max);
        if (m_new > NEG_INF) {
            float c = m > NEG_INF ? expf(m - m_new) : 0.0f;
            l *= c;
            for (int d = 0; d < D; ++d) acc[d] *= c;
            for (int r = 0; r < FUSED_TILE; ++r) {
                float e = sc[r] > NEG_INF ? expf(sc[r] - m_new) : 0.0f;
                l += e;
                for (int d = 0; d < D; ++d) acc[d] += e * vs[r][d];
            }
            m = m_new;
        }
        __syncthreads();
    }
    if (!row) return;
    if (h == 0) saved_mask[(size_t)b * S + i] = mask[(size_t)b * S + i];
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int d = 0; d < D; ++d) ctx[head_row(b, h, i, S, H, D) + d] = acc[d] * inv;
    lse[((size_t)b * H + h) * S + i] = l > 0.0f ? m + logf(l) : NEG_INF;
}

// dq += scale · Σⱼ Pᵢⱼ (dPᵢⱼ − δᵢ) kⱼ with dPᵢⱼ = dctxᵢ · vⱼ and δᵢ = Σⱼ Pᵢⱼ dPᵢⱼ (= dctxᵢ · ctxᵢ),
// which a first pass over the keys computes and stores in delta for the dk/dv kernel.
extern "C" __global__ void attention_fused_dq_backward(float* dq, float* delta, const float* dctx,
                                                       const float* q, const float* k,
                                                       const float* v, const float* lse,
                                                       const float* mask, int H, int S, int D,
                                                       float scale) {
    __shared__ float ks[FUSED_TILE][FUSED_MAX_D];
    __shared__ float vs[FUSED_TILE][FUSED_MAX_D];
    __shared__ float keep[FUSED_TILE];
    int b = blockIdx.y / H, h = blockIdx.y % H;
    int i = blockIdx.x * FUSED_ROWS + threadIdx.x;
    bool row = i < S;
    float qi[FUSED_MAX_D], doi[FUSED_MAX_D], dqi[FUSED_MAX_D];
    for (int d = 0; d < D; ++d) {
        size_t at = head_row(b, h, row ? i : 0, S, H, D) + d;
        qi[d] = row ? q[at] : 0.0f;
        doi[d] = row ? dctx[at] : 0.0f;
        dqi[d] = 0.0f;
    }
    float li = row ? lse[((size_t)b * H + h) * S + i] : 0.0f;
    float di = 0.0f;
    for (int pass = 0; pass < 2; ++pass) {
        for (int t0 = 0; t0 < S; t0 += FUSED_TILE) {
            load_tile(ks, k, b, h, t0, S, H, D);
            load_tile(vs, v, b, h, t0, S, H, D);
            for (int r = threadIdx.x; r < FUSED_TILE; r += blockDim.x)
                keep[r] = t0 + r < S ? mask[(size_t)b * S + t0 + r] : 0.0f;
            __syncthreads();
            for (int r = 0; r < FUSED_TILE; ++r) {
                if (keep[r] <= 0.0f) continue;
                float p = expf(dot_d(qi, ks[r], D) * scale - li);
                float dp = dot_d(doi, vs[r], D);
                if (pass == 0) {
                    di += p * dp;
                } else {
                    float ds = scale * p * (dp - di);
                    for (int d = 0; d < D; ++d) dqi[d] += ds * ks[r][d];
                }
            }
            __syncthreads();
        }
    }
    if (!row) return;
    delta[((size_t)b * H + h) * S + i] = di;
    for (int d = 0; d < D; ++d) dq[head_row(b, h, i, S, H, D) + d] += dqi[d];
}

// One key row j per thread: dv += Σᵢ Pᵢⱼ dctxᵢ, dk += scale · Σᵢ Pᵢⱼ (dPᵢⱼ − δᵢ) qᵢ. A padded key
// has P = 0, so its gradients stay as they were.
extern "C" __global__ void attention_fused_dkdv_backward(float* dk, float* dv, const float* dctx,
                                                         const float* q, const float* k,
                                                         const float* v, const float* lse,
                                                         const float* delta, const float* mask,
                                                         int H, int S, int D, float scale) {
    __shared__ float qs[FUSED_TILE][FUSED_MAX_D];
    __shared__ float dos[FUSED_TILE][FUSED_MAX_D];
    __shared__ float ls[FUSED_TILE];
    __shared__ float ds_[FUSED_TILE];
    int b = blockIdx.y / H, h = blockIdx.y % H;
    int j = blockIdx.x * FUSED_ROWS + threadIdx.x;
    bool row = j < S && mask[(size_t)b * S + (j < S ? j : 0)] > 0.0f;
    float kj[FUSED_MAX_D], vj[FUSED_MAX_D], dkj[FUSED_MAX_D], dvj[FUSED_MAX_D];
    for (int d = 0; d < D; ++d) {
        size_t at = head_row(b, h, j < S ? j : 0, S, H, D) + d;
        kj[d] = row ? k[at] : 0.0f;
        vj[d] = row ? v[at] : 0.0f;
        dkj[d] = 0.0f;
        dvj[d] = 0.0f;
    }
    for (int t0 = 0; t0 < S; t0 += FUSED_TILE) {
        load_tile(qs, q, b, h, t0, S, H, D);
        load_tile(dos, dctx, b, h, t0, S, H, D);
        for (int r = threadIdx.x; r < FUSED_TILE; r += blockDim.x) {
            bool in = t0 + r < S;
            size_t at = ((size_t)b * H + h) * S + t0 + r;
            ls[r] = in ? lse[at] : 0.0f;
            ds_[r] = in ? delta[at] : 0.0f;
        }
        __syncthreads();
        if (row) {
            for (int r = 0; r < FUSED_TILE && t0 + r < S; ++r) {
                float p = expf(dot_d(qs[r], kj, D) * scale - ls[r]);
                float dp = dot_d(dos[r], vj, D);
                float ds = scale * p * (dp - ds_[r]);
                for (int d = 0; d < D; ++d) {
                    dvj[d] += p * dos[r][d];
                    dkj[d] += ds * qs[r][d];
                }
            }
        }
        __syncthreads();
    }
    if (!row) return;
    for (int d = 0; d < D; ++d) {
        size_t at = head_row(b, h, j, S, H, D) + d;
        dk[at] += dkj[d];
        dv[at] += dvj[d];
    }
}
