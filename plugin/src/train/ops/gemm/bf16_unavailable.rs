//! bf16 products where the CPU cannot have AVX512-BF16 (not x86-64): never available, so the
//! native engine refuses `--precision bf16` before anything here is called.

pub fn available() -> bool {
    false
}

pub struct PackedBf16;

impl PackedBf16 {
    pub fn new(_: usize, _: usize, _: &[f32], _: (usize, usize)) -> Self {
        unreachable!("bf16 products need AVX512-BF16 (x86-64)")
    }
}

pub fn gemm_bias(_: usize, _: &[f32], _: &PackedBf16, _: &mut [f32], _: usize, _: &[f32]) {
    unreachable!("bf16 products need AVX512-BF16 (x86-64)")
}
