// Softmax cross-entropy over rows of V logits, forward and backward in one pass (the loss is
// never needed without its gradient). Rows whose label is < 0 are ignored (loss 0, gradient 0).
// inv_count = 1 / (rows with a label), counted on the host, which holds the labels.
// loss_rows[r] gets each row's loss; the host sums them in f64, as train/ops/cross_entropy.rs
// does. Launch: grid (rows), block (a multiple of 32, up to 1024).

extern "C" __global__ void cross_entropy_forward_backward(float* dlogits, float* loss_rows,
                                                          const float* logits,
                                                          const long long* labels, int V,
                                                          float inv_count) {
    size_t r = blockIdx.x;
    const float* x = logits + r * V;
    float* d = dlogits + r * V;
    long long label = labels[r];
    if (label < 0) {
        for (int j = threadIdx.x; j < V; j += blockDim.x) d[j] = 0.0f;
        if (threadIdx.x == 0) loss_rows[r] = 0.0f;
        return;
    }
    float mx = NEG_INF;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, x[j]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) sum += expf(x[j] - mx);
    float log_sum = logf(block_sum(sum)) + mx;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float g = expf(x[j] - log_sum) * inv_count;
        d[j] = j == label ? g - inv_count : g;
    }
    if (threadIdx.x == 0) loss_rows[r] = log_sum - x[label];
}
