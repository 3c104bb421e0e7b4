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
pub mod layernorm;
pub mod linear;

/// `C = beta·C + A · B`, each operand given with its row and column strides, so that
/// transposes and blocks of larger matrices (one attention head) cost no copy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_strided(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    (a_rs, a_cs): (usize, usize),
    b: &[f32],
    (b_rs, b_cs): (usize, usize),
    c: &mut [f32],
    (c_rs, c_cs): (usize, usize),
    beta: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() > (m - 1) * a_rs + k.saturating_sub(1) * a_cs || k == 0);
    assert!(b.len() > k.saturating_sub(1) * b_rs + (n - 1) * b_cs || k == 0);
    assert!(c.len() > (m - 1) * c_rs + (n - 1) * c_cs);
    // SAFETY: the asserts above keep every access inside the slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs as isize,
            a_cs as isize,
            b.as_ptr(),
            b_rs as isize,
            b_cs as isize,
            beta,
            c.as_mut_ptr(),
            c_rs as isize,
            c_cs as isize,
        )
    }
}

/// Row-major strides of an `r × c` matrix, and of its transpose.
pub(crate) const fn rm(cols: usize) -> (usize, usize) {
    (cols, 1)
}
pub(crate) const fn tr(cols: usize) -> (usize, usize) {
    (1, cols)
}
