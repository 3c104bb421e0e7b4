//! `Gpu`: the training `Backend` on one NVIDIA GPU over the kernels of `kernels/` and cuBLAS;
//! `pretrain`/`finetune`/`embed`/`predict --device cuda` use it. Matrix products run in fp32 or,
//! with [`Precision::Bf16`], on bf16 copies of their inputs with fp32 accumulation and fp32
//! outputs (what `torch.autocast(dtype=bfloat16)` does for a linear layer); everything else, the
//! weights, their gradients and the optimizer state stay fp32. **Written without a GPU and never run**:
//! it compiles, and `plugin/tests/it/gpu_parity.rs` and `train_parity.rs` hold it to the CPU backend
//! and to PyTorch on the first machine with a driver, where they run instead of skipping.
//!
//! Views are raw device pointers with a lifetime (see README.md): `Copy`, and splittable into
//! two mutable halves, which the flat parameter buffer needs. Everything runs on one stream, in
//! launch order. Matrices are row-major as on the CPU; cuBLAS is column-major: `gemm.rs` says
//! which call computes each product, and is tested on the CPU.
//!
//! One file per kernel family, as `train/ops/` is for the CPU (`layernorm.rs` launches
//! `kernels/layernorm.cu`, and so on; `linear.rs` is cuBLAS's), each holding the host side of
//! its ops; this file holds the device, the views and the `Backend` impl, which calls them.
//! Kernels are launched through `Kernels`, whose functions `build.rs` generates from the
//! kernels' own parameter lists: a launch with a wrong argument does not compile.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "the Backend trait is infallible: a CUDA error mid-step (a device fault, out of memory) ends the run"
)]

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cudaDataType};
use cudarc::cublas::{result as blas, CudaBlas};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig};

mod activations;
mod adamw;
mod attention;
mod cast;
mod cross_entropy;
mod dropout;
mod embedding;
mod layernorm;
mod linear;
mod tensor;

use super::gemm::Gemm;
use super::launch::{self, Launch};
pub use crate::device::Precision;
use crate::train::backend::{AdamW, Backend, Shape};

/// A read-only range of a device buffer.
#[derive(Clone, Copy)]
pub struct DView<'a> {
    ptr: u64,
    len: usize,
    _borrow: PhantomData<&'a [f32]>,
}

/// A writable range of a device buffer.
pub struct DViewMut<'a> {
    ptr: u64,
    len: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

/// How attention runs: two cuBLAS batched products around the masked-softmax kernel
/// (`attention.cu`, the probabilities kept for backward), or the fused kernels
/// (`attention_fused.cu`: scores never stored, each row's log-sum-exp kept), which take heads of
/// up to 64 and no attention dropout; elsewhere the products run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Attention {
    #[default]
    Products,
    Fused,
}

#[derive(Clone)]
pub struct Gpu {
    stream: Arc<CudaStream>,
    blas: Arc<CudaBlas>,
    functions: Arc<HashMap<&'static str, CudaFunction>>,
    precision: Precision,
    attention: Attention,
}

// SAFETY: cuBLAS handles are used from one stream; the training loop calls the backend from one
// thread at a time when `replicas()` is 1, which it is.
unsafe impl Sync for Gpu {}
unsafe impl Send for Gpu {}

/// cudarc's launch configuration for one of `launch.rs`'s shapes.
fn config(l: Launch) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (l.grid.0 as u32, l.grid.1 as u32, 1),
        block_dim: (l.block as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn grid(n: usize) -> LaunchConfig {
    config(launch::elements(n))
}

fn rows(n_rows: usize, c: usize) -> LaunchConfig {
    config(launch::rows(n_rows, c))
}

impl Gpu {
    /// Opens GPU `ordinal`, compiles every kernel family for its architecture and loads them.
    pub fn new(ordinal: usize) -> Result<Self> {
        if !super::missing_libraries().is_empty() {
            bail!(super::unavailable_reason(ordinal));
        }
        let ctx =
            CudaContext::new(ordinal).with_context(|| format!("cuda:{ordinal}: cannot open"))?;
        use cudarc::driver::sys::CUdevice_attribute::*;
        let major = ctx.attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = ctx.attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        // NVRTC wants a 'static name; one per process and device kind.
        let arch: &'static str = Box::leak(format!("sm_{major}{minor}").into_boxed_str());
        let stream = ctx.default_stream();
        let mut functions = HashMap::new();
        for (family, _) in super::FAMILIES {
            let ptx = super::compile_ptx(family, arch)?;
            let module = ctx.load_module(ptx)?;
            for name in super::kernel_names(family) {
                functions.insert(name, module.load_function(name)?);
            }
        }
        let blas = CudaBlas::new(stream.clone())?;
        Ok(Self {
            stream,
            blas: Arc::new(blas),
            functions: Arc::new(functions),
            precision: Precision::F32,
            attention: Attention::Products,
        })
    }

    /// "NAME, sm_XY, N GiB" for a report's first line.
    pub fn describe(&self) -> String {
        let ctx = self.stream.context();
        use cudarc::driver::sys::CUdevice_attribute::*;
        let cc = |a| ctx.attribute(a).unwrap_or(0);
        format!(
            "cuda:{} {}, sm_{}{}, {:.0} GiB",
            ctx.ordinal(),
            ctx.name().unwrap_or_else(|_| "(unnamed)".into()),
            cc(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            cc(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
            ctx.total_mem().unwrap_or(0) as f64 / (1u64 << 30) as f64
        )
    }

    /// The same GPU with attention run as `attention`.
    pub fn with_attention(&self, attention: Attention) -> Self {
        Self {
            attention,
            ..self.clone()
        }
    }

    /// Whether attention of this shape runs fused (with no dropout on its probabilities).
    fn fused(&self, sh: &Shape, dropout: bool) -> bool {
        self.attention == Attention::Fused && sh.head_dim <= attention::FUSED_MAX_D && !dropout
    }

    /// The same GPU (stream, cuBLAS handle, loaded kernels) with products in `precision`.
    pub fn with_precision(&self, precision: Precision) -> Self {
        Self {
            precision,
            ..self.clone()
        }
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The one stream every launch goes to (NCCL's collectives join it).
    pub fn stream(&self) -> Arc<CudaStream> {
        self.stream.clone()
    }

    /// The kernels' typed launchers, on this GPU's stream.
    fn k(&self) -> Kernels<'_> {
        Kernels {
            stream: &self.stream,
            functions: &self.functions,
        }
    }

    fn to_device<T: cudarc::driver::DeviceRepr>(&self, host: &[T]) -> CudaSlice<T> {
        self.stream.clone_htod(host).expect("host → device copy")
    }

    fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        let (p, _sync) = s.device_ptr(&self.stream);
        p
    }

    /// A device buffer as a kernel's output (or, `.read()`, input).
    fn out<T>(&self, s: &CudaSlice<T>) -> Out<T> {
        Out::at(self.ptr(s))
    }

    /// `n` values that a kernel writes in full before anything reads them.
    fn scratch<T: cudarc::driver::DeviceRepr>(&self, n: usize) -> CudaSlice<T> {
        // SAFETY: callers launch a kernel that writes every element first.
        unsafe { self.stream.alloc::<T>(n.max(1)) }.expect("device allocation")
    }

    /// `n` zeros on the device.
    fn zeroed<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        n: usize,
    ) -> CudaSlice<T> {
        self.stream
            .alloc_zeros(n.max(1))
            .expect("device allocation")
    }

    /// Issues the products of `gemms` (see `gemm.rs`) with fp32 accumulation and outputs; their
    /// A and B hold elements of this backend's precision (see [`Gpu::operand`]).
    fn run(&self, gemms: impl IntoIterator<Item = Gemm>) {
        let op = |t| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let inputs = match self.precision {
            Precision::F32 => cudaDataType::CUDA_R_32F,
            Precision::Bf16 => cudaDataType::CUDA_R_16BF,
            Precision::Int8 | Precision::Int16 => {
                unreachable!("int8 and int16 are refused for a GPU by Placement::target")
            }
        };
        let alpha = 1.0f32;
        for g in gemms {
            let ((ta, tb), (m, n, k)) = (g.trans, g.mnk);
            // SAFETY: every pointer is a live device allocation on this backend's stream,
            // holding the m×k, k×n and m×n matrices (times `batch`, at the strides) that
            // gemm.rs lays out over the callers' views. COMPUTE_32F keeps fp32 inputs exact (no
            // TF32: the handle's math mode is left at its default).
            unsafe {
                blas::gemm_strided_batched_ex(
                    *self.blas.handle(),
                    op(ta),
                    op(tb),
                    m as i32,
                    n as i32,
                    k as i32,
                    (&alpha as *const f32).cast(),
                    g.a.ptr as *const _,
                    inputs,
                    g.a.ld as i32,
                    g.a.stride as i64,
                    g.b.ptr as *const _,
                    inputs,
                    g.b.ld as i32,
                    g.b.stride as i64,
                    (&g.beta as *const f32).cast(),
                    g.c.ptr as *mut _,
                    cudaDataType::CUDA_R_32F,
                    g.c.ld as i32,
                    g.c.stride as i64,
                    g.batch as i32,
                    cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }
            .expect("cublasGemmStridedBatchedEx");
        }
    }
}

/// A device address a kernel reads (`const T*`).
pub struct In<T> {
    addr: u64,
    _t: PhantomData<*const T>,
}

/// A device address a kernel writes (`T*`).
pub struct Out<T> {
    addr: u64,
    _t: PhantomData<*mut T>,
}

// Copy by hand: derive would ask T: Copy, and these are addresses.
impl<T> Clone for In<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for In<T> {}
impl<T> Clone for Out<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Out<T> {}

impl<T> In<T> {
    fn at(addr: u64) -> Self {
        In {
            addr,
            _t: PhantomData,
        }
    }
    /// The null pointer, for an optional argument the kernel checks.
    fn null() -> Self {
        Self::at(0)
    }
}

impl<T> Out<T> {
    fn at(addr: u64) -> Self {
        Out {
            addr,
            _t: PhantomData,
        }
    }
    fn null() -> Self {
        Self::at(0)
    }
    /// The same address, read.
    fn read(self) -> In<T> {
        In::at(self.addr)
    }
    /// `n` elements further on.
    fn offset(self, n: usize) -> Self {
        Self::at(self.addr + (n * std::mem::size_of::<T>()) as u64)
    }
}

impl DView<'_> {
    fn input(self) -> In<f32> {
        In::at(self.ptr)
    }
}

impl DViewMut<'_> {
    fn out(&self) -> Out<f32> {
        Out::at(self.ptr)
    }
    fn read(&self) -> In<f32> {
        In::at(self.ptr)
    }
}

/// The kernels' launchers (`launchers.rs`, generated by build.rs), on one stream.
struct Kernels<'a> {
    stream: &'a Arc<CudaStream>,
    functions: &'a HashMap<&'static str, CudaFunction>,
}

impl Kernels<'_> {
    fn function(&self, name: &str) -> &CudaFunction {
        self.functions
            .get(name)
            .unwrap_or_else(|| panic!("kernel {name} not loaded"))
    }
}

mod launchers {
    use super::{In, Kernels, Out};
    use cudarc::driver::{LaunchConfig, PushKernelArg};
    include!(concat!(env!("OUT_DIR"), "/launchers.rs"));
}

impl Backend for Gpu {
    type Buf = CudaSlice<f32>;
    type View<'a> = DView<'a>;
    type ViewMut<'a> = DViewMut<'a>;

    fn zeros(&self, n: usize) -> CudaSlice<f32> {
        self.zeroed(n)
    }
    fn upload(&self, host: &[f32]) -> CudaSlice<f32> {
        if host.is_empty() {
            return self.zeros(0);
        }
        self.to_device(host)
    }
    fn download(&self, buf: &CudaSlice<f32>) -> Vec<f32> {
        self.stream.clone_dtoh(buf).expect("device → host copy")
    }
    fn len(buf: &CudaSlice<f32>) -> usize {
        buf.len()
    }
    fn slice(buf: &CudaSlice<f32>, r: Range<usize>) -> DView<'_> {
        assert!(r.start <= r.end && r.end <= buf.len());
        let (p, _sync) = buf.device_ptr(buf.stream());
        DView {
            ptr: p + 4 * r.start as u64,
            len: r.len(),
            _borrow: PhantomData,
        }
    }
    fn slice_mut(buf: &mut CudaSlice<f32>, r: Range<usize>) -> DViewMut<'_> {
        assert!(r.start <= r.end && r.end <= buf.len());
        let (p, _sync) = buf.device_ptr(buf.stream());
        DViewMut {
            ptr: p + 4 * r.start as u64,
            len: r.len(),
            _borrow: PhantomData,
        }
    }
    fn split_mut<'a>(v: DViewMut<'a>, at: usize) -> (DViewMut<'a>, DViewMut<'a>)
    where
        Self: 'a,
    {
        assert!(at <= v.len);
        let tail = DViewMut {
            ptr: v.ptr + 4 * at as u64,
            len: v.len - at,
            _borrow: PhantomData,
        };
        (
            DViewMut {
                ptr: v.ptr,
                len: at,
                _borrow: PhantomData,
            },
            tail,
        )
    }
    fn replicas(&self) -> usize {
        1
    }
    fn attention_saved_len(&self, sh: &Shape, dropout: bool) -> usize {
        if self.fused(sh, dropout) {
            attention::fused_saved_len(sh)
        } else {
            sh.probs_len()
        }
    }
    fn share(&self, _parts: usize) -> Self {
        self.clone()
    }

    fn add_scaled(&self, y: DViewMut<'_>, x: DView<'_>, a: f32) {
        tensor::add_scaled(self, y, x, a)
    }
    fn scale(&self, y: DViewMut<'_>, a: f32) {
        tensor::scale(self, y, a)
    }
    fn sum_squares(&self, x: DView<'_>) -> f64 {
        tensor::sum_squares(self, x)
    }
    fn gather_rows(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        tensor::gather_rows(self, dst, src, rows, c)
    }
    fn scatter_add_rows(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        tensor::scatter_add_rows(self, dst, src, rows, c)
    }

    fn gelu_forward(&self, y: DViewMut<'_>, x: DView<'_>) {
        activations::gelu_forward(self, y, x)
    }
    fn gelu_backward(&self, dx: DViewMut<'_>, dy: DView<'_>, x: DView<'_>) {
        activations::gelu_backward(self, dx, dy, x)
    }
    fn tanh_forward(&self, x: DViewMut<'_>) {
        activations::tanh_forward(self, x)
    }
    fn tanh_backward(&self, d: DViewMut<'_>, y: DView<'_>) {
        activations::tanh_backward(self, d, y)
    }
    fn relu_forward(&self, x: DViewMut<'_>) {
        activations::relu_forward(self, x)
    }
    fn relu_backward(&self, d: DViewMut<'_>, y: DView<'_>) {
        activations::relu_backward(self, d, y)
    }
    fn dropout_forward(&self, x: DViewMut<'_>, mask: DViewMut<'_>, p: f32, seed: u64) {
        dropout::forward(self, x, mask, p, seed)
    }
    fn dropout_backward(&self, d: DViewMut<'_>, mask: DView<'_>) {
        dropout::backward(self, d, mask)
    }

    fn linear_forward(
        &self,
        y: DViewMut<'_>,
        x: DView<'_>,
        w: DView<'_>,
        b: DView<'_>,
        t: usize,
        i: usize,
        o: usize,
    ) {
        linear::forward(self, y, x, w, b, (t, i, o))
    }
    fn linear_backward(
        &self,
        dx: DViewMut<'_>,
        dw: DViewMut<'_>,
        db: DViewMut<'_>,
        dy: DView<'_>,
        x: DView<'_>,
        w: DView<'_>,
        t: usize,
        i: usize,
        o: usize,
    ) {
        linear::backward(self, (dx, dw, db), dy, x, w, (t, i, o))
    }
    fn layernorm_forward(
        &self,
        y: DViewMut<'_>,
        mean: DViewMut<'_>,
        rstd: DViewMut<'_>,
        x: DView<'_>,
        w: DView<'_>,
        b: DView<'_>,
        c: usize,
        eps: f32,
    ) {
        layernorm::forward(self, (y, mean, rstd), x, w, b, c, eps)
    }
    fn layernorm_backward(
        &self,
        dx: DViewMut<'_>,
        dw: DViewMut<'_>,
        db: DViewMut<'_>,
        dy: DView<'_>,
        x: DView<'_>,
        w: DView<'_>,
        mean: DView<'_>,
        rstd: DView<'_>,
        c: usize,
    ) {
        layernorm::backward(self, (dx, dw, db), dy, x, w, (mean, rstd), c)
    }
    fn embedding_forward(
        &self,
        out: DViewMut<'_>,
        ids: &[u32],
        word: DView<'_>,
        pos: DView<'_>,
        tok_type: DView<'_>,
        s: usize,
        c: usize,
    ) {
        embedding::forward(self, out, ids, (word, pos, tok_type), s, c)
    }
    fn embedding_backward(
        &self,
        dword: DViewMut<'_>,
        dpos: DViewMut<'_>,
        dtok_type: DViewMut<'_>,
        dout: DView<'_>,
        ids: &[u32],
        s: usize,
        c: usize,
    ) {
        embedding::backward(self, (dword, dpos, dtok_type), dout, ids, s, c)
    }
    fn attention_forward(
        &self,
        ctx: DViewMut<'_>,
        probs: DViewMut<'_>,
        drop_mask: DViewMut<'_>,
        q: DView<'_>,
        k: DView<'_>,
        v: DView<'_>,
        mask: &[f32],
        sh: &Shape,
        dropout: (f32, u64),
    ) {
        if self.fused(sh, dropout.0 > 0.0) {
            attention::fused_forward(self, ctx, probs, (q, k, v), mask, sh)
        } else {
            attention::forward(self, (ctx, probs, drop_mask), (q, k, v), mask, sh, dropout)
        }
    }
    fn attention_backward(
        &self,
        dq: DViewMut<'_>,
        dk: DViewMut<'_>,
        dv: DViewMut<'_>,
        dctx: DView<'_>,
        q: DView<'_>,
        k: DView<'_>,
        v: DView<'_>,
        probs: DView<'_>,
        drop_mask: DView<'_>,
        sh: &Shape,
    ) {
        // The encoder allocates drop_mask only with dropout, which the fused path never has.
        if self.fused(sh, drop_mask.len > 0) {
            attention::fused_backward(self, (dq, dk, dv), dctx, (q, k, v), probs, sh)
        } else {
            attention::backward(self, (dq, dk, dv), dctx, (q, k, v), (probs, drop_mask), sh)
        }
    }
    fn cross_entropy(
        &self,
        dlogits: DViewMut<'_>,
        logits: DView<'_>,
        labels: &[i64],
        v: usize,
    ) -> f32 {
        cross_entropy::forward_backward(self, dlogits, logits, labels, v)
    }
    fn adamw(
        &self,
        opt: &AdamW,
        p: DViewMut<'_>,
        g: DView<'_>,
        m: DViewMut<'_>,
        v: DViewMut<'_>,
        step: u64,
        decay: bool,
    ) {
        adamw::update(self, opt, p, g, (m, v), step, decay)
    }
}
