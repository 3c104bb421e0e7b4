// attention_fused.cu on the CPU (see emulator.h). Reads from stdin: B H S D as int32, then
// q, k, v, dctx (B·S × H·D floats each) and mask (B·S); writes to stdout ctx, the saved
// log-sum-exp and mask, dq, dk and dv, after one forward and one backward pass launched as
// cuda/backend.rs launches them.
#include "emulator.h"
#include <cstdio>

#include "common.cuh"
#include "attention_fused.cu"

static std::vector<float> read_floats(size_t n) {
    std::vector<float> v(n);
    if (std::fread(v.data(), 4, n, stdin) != n) std::abort();
    return v;
}

static void write_floats(const std::vector<float>& v) { std::fwrite(v.data(), 4, v.size(), stdout); }

int main() {
    int dims[4];
    if (std::fread(dims, 4, 4, stdin) != 4) return 1;
    int B = dims[0], H = dims[1], S = dims[2], D = dims[3];
    size_t n = (size_t)B * S * H * D, rows = (size_t)B * H * S;
    auto q = read_floats(n), k = read_floats(n), v = read_floats(n), dctx = read_floats(n);
    auto mask = read_floats((size_t)B * S);
    std::vector<float> ctx(n), saved(rows + (size_t)B * S), dq(n), dk(n), dv(n), delta(rows);
    float scale = 1.0f / std::sqrt((float)D);
    dim3 grid{(unsigned)((S + FUSED_ROWS - 1) / FUSED_ROWS), (unsigned)(B * H), 1};
    launch(attention_fused_forward, grid, FUSED_ROWS, ctx.data(), saved.data(),
           saved.data() + rows, q.data(), k.data(), v.data(), mask.data(), H, S, D, scale);
    const float* lse = saved.data();
    const float* saved_mask = saved.data() + rows;
    launch(attention_fused_dq_backward, grid, FUSED_ROWS, dq.data(), delta.data(), dctx.data(),
           q.data(), k.data(), v.data(), lse, saved_mask, H, S, D, scale);
    launch(attention_fused_dkdv_backward, grid, FUSED_ROWS, dk.data(), dv.data(), dctx.data(),
           q.data(), k.data(), v.data(), lse, delta.data(), saved_mask, H, S, D, scale);
    write_floats(ctx);
    write_floats(saved);
    write_floats(dq);
    write_floats(dk);
    write_floats(dv);
    return 0;
}
