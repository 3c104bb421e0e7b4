//! int16 products where the CPU cannot have AVX512-VNNI (not x86-64): never available, so the
//! native engine refuses `--precision int16` before anything here is called.

pub fn available() -> bool {
    false
}

pub struct PackedInt16;

impl PackedInt16 {
    pub fn new(_: usize, _: usize, _: &[f32], _: (usize, usize)) -> Self {
        unreachable!("int16 products need AVX512-VNNI (x86-64)")
    }
}

pub fn gemm_bias(_: usize, _: &[f32], _: &PackedInt16, _: &mut [f32], _: usize, _: &[f32]) {
    unreachable!("int16 products need AVX512-VNNI (x86-64)")
}
