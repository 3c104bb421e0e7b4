// BERT's input embeddings: word + position + token type 0, over T = B*S tokens of C channels.
// Launch: grid (T), block (min(C, 1024)). train/ops/embedding.rs is the reference.

extern "C" __global__ void embedding_forward(float* out, const unsigned int* ids,
                                             const float* word, const float* pos,
                                             const float* tok_type, int S, int C) {
    int t = blockIdx.x;
    const float* w = word + (size_t)ids[t] * C;
    const float* p = pos + (size_t)(t % S) * C;
    float* o = out + (size_t)t * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) o[j] = w[j] + p[j] + tok_type[j];
}

// Accumulates: rows that share a k-mer or a position add into the same gradient row.
extern "C" __global__ void embedding_backward(float* dword, float* dpos, float* dtok_type,
                                              const float* dout, const unsigned int* ids,
                                              int S, int C) {
    int t = blockIdx.x;
    const float* d = dout + (size_t)t * C;
    float* dw = dword + (size_t)ids[t] * C;
    float* dp = dpos + (size_t)(t % S) * C;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        atomicAdd(dw + j, d[j]);
        atomicAdd(dp + j, d[j]);
        atomicAdd(dtok_type + j, d[j]);
    }
}
