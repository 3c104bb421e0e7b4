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

// The backward pass runs in a fixed order, so that two runs give the same bits (float atomics
// would add in whatever order the blocks ran): the word rows through scatter_add_rows (tensor.cu;
// the host groups the tokens by id), the token type through the column sums, and the positions
// here: dpos[s, j] += Σ_b dout[b·S + s, j], batch rows in order.
// Launch: grid (S), block (min(C, 1024)).
extern "C" __global__ void embedding_position_backward(float* dpos, const float* dout, int B,
                                                       int S, int C) {
    int s = blockIdx.x;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float acc = 0.0f;
        for (int b = 0; b < B; b++) acc += dout[((size_t)b * S + s) * C + j];
        dpos[(size_t)s * C + j] += acc;
    }
}
