//! `kernels/cast.cu`'s host side: a product's inputs in the backend's precision, as bf16
//! copies made just before the product (what `torch.autocast` does).

use cudarc::driver::CudaSlice;

use super::{grid, Gpu, In, Out, Precision};

/// A product's input as the GEMM reads it: the fp32 buffer itself, or a bf16 copy that lives
/// until the product is enqueued (freed in stream order after it).
pub(super) struct Operand {
    pub ptr: u64,
    _copy: Option<CudaSlice<u16>>,
}

impl Gpu {
    /// `len` fp32 values at `ptr`, in this backend's precision for a matrix product.
    pub(super) fn operand(&self, ptr: u64, len: usize) -> Operand {
        match self.precision {
            Precision::F32 => Operand { ptr, _copy: None },
            Precision::Int8 | Precision::Int16 => {
                unreachable!("int8 and int16 are refused for a GPU by Placement::target")
            }
            Precision::Bf16 => {
                let copy: CudaSlice<u16> = self.scratch(len);
                let out: Out<u16> = self.out(&copy);
                self.k()
                    .cast_f32_to_bf16(grid(len), out, In::<f32>::at(ptr), len);
                Operand {
                    ptr: out.addr,
                    _copy: Some(copy),
                }
            }
        }
    }
}
