//! DNABERT in Rust: k-mer tokenizer, Hugging Face model folders (from disk or the Hub, in
//! safetensors or `pytorch_model.bin`), an ONNX export of the encoder, CPU inference through
//! tract, the `embed` pipeline, and training on CPU and GPU backends.
//!
//! No panic on any input: `unwrap`, `expect` and `panic!` are refused outside tests (`cargo
//! clippy`, run in CI). Where one stays, an `allow` beside it says which invariant holds it
//! (never input). Slice indexing is not linted crate-wide: the kernels index by design, and the
//! parsers of users' files are fuzzed instead (`fuzz/`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod alloc;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod config_reference;
pub mod convert;
pub mod cuda;
pub mod device;
pub mod embed;
pub mod engine;
pub mod fasta;
pub mod folder;
pub mod hub;
pub mod io_util;
pub mod layout;
pub mod limits;
pub mod model_dir;
pub mod net;
pub mod npy;
#[cfg(feature = "onnx")]
pub mod onnx_export;
pub mod remote;
pub mod report;
pub mod rng;
pub mod sandbox;
pub mod scatter;
pub mod signals;
pub mod splice;
pub mod tables;
pub mod tokenizer;
pub mod train;
pub mod vocab;

/// Keeps freed memory in the process for the next allocation of its size. The engines allocate
/// and free tensors of megabytes per layer; glibc maps each above its dynamic limit afresh and
/// returns it at free, so every layer paid page faults and page clearing (with threads, TLB
/// shootdowns too: 45% of a CPU training step's time went to the kernel, perf). 32 MiB is the
/// largest limit glibc accepts; larger buffers (a model's gradients) get huge pages instead
/// (`alloc::HugePages`). Freed heap memory is kept up to 1 GiB: a training step frees ~450 MB
/// of activations at its end (1 x 512 tokens), which a 256 MiB limit handed back to the kernel
/// to fault in and clear again at the next step. One arena for all threads: a worker's own
/// arena is heaps of 64 MiB that glibc unmaps as soon as they empty, whatever the limit, so a
/// replica's activations were unmapped (a TLB shootdown on every core) and faulted back at
/// every step, ~9% of a step at 8 x 128 (perf); small blocks still come from each thread's
/// cache without a lock. Called once, before any thread starts, by the binary and benchmarks.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
