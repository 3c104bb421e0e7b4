// Runs our CUDA C kernels on the CPU, so that CI, which has no GPU, checks their arithmetic,
// indexing and synchronisation against the CPU backend. Each thread of a block is a std::thread;
// blocks run one after another, so a `static` is the block's shared memory. __syncthreads is a
// barrier of the block's threads (a thread that returns leaves it, as on a GPU), and warp
// shuffles exchange through a table between two barriers of the warp's 32 threads.
//
// What this cannot check: timing, memory coalescing, register limits, races that only a real
// scheduler exposes, and the host code (launch shapes are the test's, cuBLAS is not here).

#pragma once
#include <algorithm>
#include <barrier>
#include <cstdlib>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::unique_ptr<std::barrier<>> block_barrier;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<float> warp_slots;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() { block_barrier->arrive_and_wait(); }

inline float __int_as_float(int i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline float __uint_as_float(unsigned i) {
    float f;
    std::memcpy(&f, &i, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned i;
    std::memcpy(&i, &f, 4);
    return i;
}

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    warp_slots[threadIdx.x] = v;
    warp_barriers[warp]->arrive_and_wait();
    float other = warp_slots[warp * 32 + (lane ^ lane_mask)];
    warp_barriers[warp]->arrive_and_wait();
    return other;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

template <typename T>
T atomicAdd(T* p, T v) {
    static std::mutex m;
    std::lock_guard<std::mutex> g(m);
    T old = *p;
    *p += v;
    return old;
}

// Runs `kernel(args...)` over a 2-D grid of 1-D blocks, in grid order, or in the reverse order
// with EMULATOR_BLOCK_ORDER=reverse: a GPU runs blocks in any order, so a kernel whose result
// depends on it (float atomics across blocks) gives different bits the two ways.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, unsigned threads, Args... args) {
    gridDim = grid;
    blockDim = dim3{threads, 1, 1};
    std::vector<dim3> blocks;
    for (unsigned by = 0; by < grid.y; ++by)
        for (unsigned bx = 0; bx < grid.x; ++bx) blocks.push_back(dim3{bx, by, 0});
    const char* order = std::getenv("EMULATOR_BLOCK_ORDER");
    if (order && std::strcmp(order, "reverse") == 0) std::reverse(blocks.begin(), blocks.end());
    for (dim3 blk : blocks) {
        unsigned bx = blk.x, by = blk.y;
        block_barrier = std::make_unique<std::barrier<>>(threads);
        warp_barriers.clear();
        for (unsigned w = 0; w < (threads + 31) / 32; ++w)
            warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
        warp_slots.assign(((threads + 31) / 32) * 32, 0.0f);
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t)
            pool.emplace_back([=] {
                threadIdx = dim3{t, 0, 0};
                blockIdx = dim3{bx, by, 0};
                kernel(args...);
                block_barrier->arrive_and_drop();
            });
        for (auto& th : pool) th.join();
    }
}
