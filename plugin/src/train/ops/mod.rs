//! CPU kernels for training, one op family per file with its forward and backward side by side
//! (as llm.c lays them out). Tensors are flat row-major f32 slices; "T" is the number of tokens
//! (batch × sequence). Backward functions *accumulate* into their gradient outputs, so that a
//! tensor used twice (residual streams, tied embeddings) gets the sum of its gradients.

pub mod adamw;
pub mod attention;
pub mod cross_entropy;
pub mod dropout;
pub mod embedding;
pub mod gelu;
pub mod gemm;
pub mod layernorm;
pub mod linear;
pub mod vmath;

pub use gemm::gemm_strided;

/// Row-major strides of an `r × c` matrix, and of its transpose.
pub(crate) const fn rm(cols: usize) -> (usize, usize) {
    (cols, 1)
}
pub(crate) const fn tr(cols: usize) -> (usize, usize) {
    (1, cols)
}
