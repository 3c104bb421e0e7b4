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

use std::collections::HashMap;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cudarc::cublas::sys::cublasOperation_t::{CUBLAS_OP_N, CUBLAS_OP_T};
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cudaDataType};
use cudarc::cublas::{result as blas, CudaBlas};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg,
};

use super::gemm::{self, Gemm};
use super::launch::{self, Launch};
pub use crate::device::Precision;
use crate::train::backend::Backend;
use crate::train::ops::adamw::AdamW;
use crate::train::ops::attention::Shape;

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

/// The fused kernels' launch shape (`FUSED_ROWS` and `FUSED_MAX_D` in attention_fused.cu).
const FUSED_ROWS: usize = 64;
const FUSED_MAX_D: usize = 64;

/// What fused attention saves per layer: each row's log-sum-exp, then the key mask.
fn fused_saved_len(sh: &Shape) -> usize {
    sh.batch * sh.heads * sh.seq + sh.batch * sh.seq
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
        for (family, src) in super::FAMILIES {
            let ptx = super::compile_ptx(family, arch)?;
            let module = ctx.load_module(ptx)?;
            for name in super::kernel_names(src) {
                let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
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
        self.attention == Attention::Fused && sh.head_dim <= FUSED_MAX_D && !dropout
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

    fn f(&self, name: &str) -> &CudaFunction {
        self.functions
            .get(name)
            .unwrap_or_else(|| panic!("kernel {name} not loaded"))
    }

    fn to_device<T: cudarc::driver::DeviceRepr>(&self, host: &[T]) -> CudaSlice<T> {
        self.stream.clone_htod(host).expect("host → device copy")
    }

    fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        let (p, _sync) = s.device_ptr(&self.stream);
        p
    }

    /// Issues the products of `gemms` (see `gemm.rs`) with fp32 accumulation and outputs; their
    /// A and B hold elements of this backend's precision (see [`Gpu::operand`]).
    fn run(&self, gemms: impl IntoIterator<Item = Gemm>) {
        let op = |t| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let inputs = match self.precision {
            Precision::F32 => cudaDataType::CUDA_R_32F,
            Precision::Bf16 => cudaDataType::CUDA_R_16BF,
            Precision::Int8 => unreachable!("int8 is refused for a GPU by Placement::target"),
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

/// Binds each argument to a local (the launch builder keeps pointers to them until launch),
/// pushes it, and recurses; macro hygiene gives every level's `arg` a name of its own.
macro_rules! push_args {
    ($b:ident;) => {};
    ($b:ident; $first:expr $(, $rest:expr)*) => {
        let arg = $first;
        $b.arg(&arg);
        push_args!($b; $($rest),*);
    };
}

/// Launches kernel `$name` with the arguments in its parameter order.
macro_rules! launch {
    ($gpu:expr, $name:expr, $cfg:expr, $($arg:expr),* $(,)?) => {{
        let f = $gpu.f($name);
        let mut b = $gpu.stream.launch_builder(f);
        push_args!(b; $($arg),*);
        // SAFETY: every kernel's parameter list matches the arguments pushed here (checked
        // against kernels/*.cu by the GPU parity tests).
        unsafe { b.launch($cfg) }.unwrap_or_else(|e| panic!("{}: {e:?}", $name));
    }};
}

/// A product's input as the GEMM reads it: the fp32 buffer itself, or a bf16 copy that lives
/// until the product is enqueued (freed in stream order after it).
struct Operand {
    ptr: u64,
    _copy: Option<CudaSlice<u16>>,
}

impl Gpu {
    /// `len` fp32 values at `ptr`, in this backend's precision for a matrix product.
    fn operand(&self, ptr: u64, len: usize) -> Operand {
        match self.precision {
            Precision::F32 => Operand { ptr, _copy: None },
            Precision::Int8 => unreachable!("int8 is refused for a GPU by Placement::target"),
            Precision::Bf16 => {
                // SAFETY: every element is written by the cast before any product reads it.
                let copy = unsafe { self.stream.alloc::<u16>(len) }.expect("device allocation");
                launch!(
                    self,
                    "cast_f32_to_bf16",
                    grid(len),
                    self.ptr(&copy),
                    ptr,
                    len
                );
                Operand {
                    ptr: self.ptr(&copy),
                    _copy: Some(copy),
                }
            }
        }
    }

    /// The fused kernels' grid: blocks of FUSED_ROWS rows of one (batch row, head).
    fn fused_grid(sh: &Shape) -> LaunchConfig {
        LaunchConfig {
            grid_dim: (
                sh.seq.div_ceil(FUSED_ROWS) as u32,
                (sh.batch * sh.heads) as u32,
                1,
            ),
            block_dim: (FUSED_ROWS as u32, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    /// `saved`: each row's log-sum-exp (B·H·S), then the mask (B·S), for the backward pass.
    fn fused_attention_forward(
        &self,
        ctx: DViewMut<'_>,
        saved: DViewMut<'_>,
        (q, k, v): (DView<'_>, DView<'_>, DView<'_>),
        mask: &[f32],
        sh: &Shape,
    ) {
        assert_eq!(saved.len, fused_saved_len(sh));
        let mask_d = self.to_device(mask);
        let rows = sh.batch * sh.heads * sh.seq;
        launch!(
            self,
            "attention_fused_forward",
            Self::fused_grid(sh),
            ctx.ptr,
            saved.ptr,
            saved.ptr + 4 * rows as u64,
            q.ptr,
            k.ptr,
            v.ptr,
            self.ptr(&mask_d),
            sh.heads as i32,
            sh.seq as i32,
            sh.head_dim as i32,
            1.0 / (sh.head_dim as f32).sqrt()
        );
    }

    /// `saved` as the forward pass left it.
    fn fused_attention_backward(
        &self,
        (dq, dk, dv): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
        dctx: DView<'_>,
        (q, k, v): (DView<'_>, DView<'_>, DView<'_>),
        saved: DView<'_>,
        sh: &Shape,
    ) {
        assert_eq!(saved.len, fused_saved_len(sh));
        let rows = sh.batch * sh.heads * sh.seq;
        let (lse_ptr, mask_ptr) = (saved.ptr, saved.ptr + 4 * rows as u64);
        let delta = self
            .stream
            .alloc_zeros::<f32>(rows)
            .expect("device allocation");
        let scale = 1.0 / (sh.head_dim as f32).sqrt();
        launch!(
            self,
            "attention_fused_dq_backward",
            Self::fused_grid(sh),
            dq.ptr,
            self.ptr(&delta),
            dctx.ptr,
            q.ptr,
            k.ptr,
            v.ptr,
            lse_ptr,
            mask_ptr,
            sh.heads as i32,
            sh.seq as i32,
            sh.head_dim as i32,
            scale
        );
        launch!(
            self,
            "attention_fused_dkdv_backward",
            Self::fused_grid(sh),
            dk.ptr,
            dv.ptr,
            dctx.ptr,
            q.ptr,
            k.ptr,
            v.ptr,
            lse_ptr,
            self.ptr(&delta),
            mask_ptr,
            sh.heads as i32,
            sh.seq as i32,
            sh.head_dim as i32,
            scale
        );
    }

    /// `dst[r] = src[rows[r]]`, the row indices copied to the device.
    fn gather(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        if rows.is_empty() {
            return;
        }
        let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        let idx = self.to_device(&idx);
        launch!(
            self,
            "gather_rows",
            self::rows(rows.len(), c),
            dst.ptr,
            src.ptr,
            self.ptr(&idx),
            c as i32
        );
    }

    /// `dst[rows[i]] += src[i]` with the sources grouped by target (`launch::group_rows`), so
    /// that repeated rows add in a fixed order.
    fn scatter_add(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        if rows.is_empty() {
            return;
        }
        let g = launch::group_rows(rows);
        let (targets, offsets, order) = (
            self.to_device(&g.targets),
            self.to_device(&g.offsets),
            self.to_device(&g.order),
        );
        launch!(
            self,
            "scatter_add_rows",
            self::rows(g.targets.len(), c),
            dst.ptr,
            src.ptr,
            self.ptr(&targets),
            self.ptr(&offsets),
            self.ptr(&order),
            c as i32
        );
    }

    /// `out[j] += Σ_r a[r, j]` over `t` rows of `c`, in the fixed order of two passes.
    fn column_sums_into(&self, out_ptr: u64, a_ptr: u64, t: usize, c: usize) {
        let partial = self.scratch(launch::chunks(t) * c);
        launch!(
            self,
            "column_sums_partial",
            config(launch::column_chunks(t, c)),
            self.ptr(&partial),
            a_ptr,
            t as i32,
            c as i32,
            launch::CHUNK_ROWS as i32
        );
        self.column_sums_finish(out_ptr, &partial, t, c);
    }

    /// The second pass: the chunks' partial sums (`launch::chunks(t)` rows of `c`) into `out`.
    fn column_sums_finish(&self, out_ptr: u64, partial: &CudaSlice<f32>, t: usize, c: usize) {
        launch!(
            self,
            "column_sums_finish",
            grid(c),
            out_ptr,
            self.ptr(partial),
            launch::chunks(t) as i32,
            c as i32
        );
    }

    /// `n` floats that a kernel writes in full before anything reads them.
    fn scratch(&self, n: usize) -> CudaSlice<f32> {
        // SAFETY: callers launch a kernel that writes every element first.
        unsafe { self.stream.alloc::<f32>(n.max(1)) }.expect("device allocation")
    }
}

impl Backend for Gpu {
    type Buf = CudaSlice<f32>;
    type View<'a> = DView<'a>;
    type ViewMut<'a> = DViewMut<'a>;

    fn zeros(&self, n: usize) -> CudaSlice<f32> {
        self.stream
            .alloc_zeros(n.max(1))
            .expect("device allocation")
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
            fused_saved_len(sh)
        } else {
            sh.probs_len()
        }
    }
    fn share(&self, _parts: usize) -> Self {
        self.clone()
    }

    fn add_scaled(&self, y: DViewMut<'_>, x: DView<'_>, a: f32) {
        assert_eq!(y.len, x.len);
        launch!(self, "add_scaled", grid(y.len), y.ptr, x.ptr, a, y.len);
    }
    fn scale(&self, y: DViewMut<'_>, a: f32) {
        launch!(self, "scale", grid(y.len), y.ptr, a, y.len);
    }
    fn sum_squares(&self, x: DView<'_>) -> f64 {
        let l = launch::sum_squares();
        // SAFETY: every block writes its partial.
        let partial = unsafe { self.stream.alloc::<f64>(l.grid.0) }.expect("device allocation");
        launch!(
            self,
            "sum_squares",
            config(l),
            self.ptr(&partial),
            x.ptr,
            x.len
        );
        // The blocks' partials added on the host, in block order.
        let partials = self
            .stream
            .clone_dtoh(&partial)
            .expect("device → host copy");
        partials.iter().sum()
    }
    fn gather_rows(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        self.gather(dst, src, rows, c);
    }
    fn scatter_add_rows(&self, dst: DViewMut<'_>, src: DView<'_>, rows: &[usize], c: usize) {
        self.scatter_add(dst, src, rows, c);
    }

    fn gelu_forward(&self, y: DViewMut<'_>, x: DView<'_>) {
        launch!(self, "gelu_forward", grid(x.len), y.ptr, x.ptr, x.len);
    }
    fn gelu_backward(&self, dx: DViewMut<'_>, dy: DView<'_>, x: DView<'_>) {
        launch!(
            self,
            "gelu_backward",
            grid(x.len),
            dx.ptr,
            dy.ptr,
            x.ptr,
            x.len
        );
    }
    fn tanh_forward(&self, x: DViewMut<'_>) {
        launch!(self, "tanh_forward", grid(x.len), x.ptr, x.len);
    }
    fn tanh_backward(&self, d: DViewMut<'_>, y: DView<'_>) {
        launch!(self, "tanh_backward", grid(d.len), d.ptr, y.ptr, d.len);
    }
    fn relu_forward(&self, x: DViewMut<'_>) {
        launch!(self, "relu_forward", grid(x.len), x.ptr, x.len);
    }
    fn relu_backward(&self, d: DViewMut<'_>, y: DView<'_>) {
        launch!(self, "relu_backward", grid(d.len), d.ptr, y.ptr, d.len);
    }
    fn dropout_forward(&self, x: DViewMut<'_>, mask: DViewMut<'_>, p: f32, seed: u64) {
        launch!(
            self,
            "dropout_forward",
            grid(x.len),
            x.ptr,
            mask.ptr,
            x.len,
            p,
            seed
        );
    }
    fn dropout_backward(&self, d: DViewMut<'_>, mask: DView<'_>) {
        launch!(
            self,
            "dropout_backward",
            grid(d.len),
            d.ptr,
            mask.ptr,
            d.len
        );
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
        let (w, x) = (self.operand(w.ptr, w.len), self.operand(x.ptr, x.len));
        self.run([gemm::linear_forward(t, i, o, x.ptr, w.ptr, y.ptr)]);
        launch!(
            self,
            "add_bias_rows",
            grid(t * o),
            y.ptr,
            b.ptr,
            t * o,
            o as i32
        );
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
        let dy_in = self.operand(dy.ptr, dy.len);
        let (w, x) = (self.operand(w.ptr, w.len), self.operand(x.ptr, x.len));
        self.run(gemm::linear_backward(
            t, i, o, dy_in.ptr, x.ptr, w.ptr, dx.ptr, dw.ptr,
        ));
        self.column_sums_into(db.ptr, dy.ptr, t, o);
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
        let n = x.len / c;
        launch!(
            self,
            "layernorm_forward",
            rows(n, c),
            y.ptr,
            mean.ptr,
            rstd.ptr,
            x.ptr,
            w.ptr,
            b.ptr,
            c as i32,
            eps
        );
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
        let n = x.len / c;
        launch!(
            self,
            "layernorm_backward",
            rows(n, c),
            dx.ptr,
            dy.ptr,
            x.ptr,
            w.ptr,
            mean.ptr,
            rstd.ptr,
            c as i32
        );
        let (pw, pb) = (
            self.scratch(launch::chunks(n) * c),
            self.scratch(launch::chunks(n) * c),
        );
        launch!(
            self,
            "layernorm_params_backward",
            config(launch::column_chunks(n, c)),
            self.ptr(&pw),
            self.ptr(&pb),
            dy.ptr,
            x.ptr,
            mean.ptr,
            rstd.ptr,
            n as i32,
            c as i32,
            launch::CHUNK_ROWS as i32
        );
        self.column_sums_finish(dw.ptr, &pw, n, c);
        self.column_sums_finish(db.ptr, &pb, n, c);
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
        let ids_d = self.to_device(ids);
        launch!(
            self,
            "embedding_forward",
            rows(ids.len(), c),
            out.ptr,
            self.ptr(&ids_d),
            word.ptr,
            pos.ptr,
            tok_type.ptr,
            s as i32,
            c as i32
        );
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
        let t = ids.len();
        let rows_of: Vec<usize> = ids.iter().map(|&i| i as usize).collect();
        self.scatter_add(dword, dout, &rows_of, c);
        launch!(
            self,
            "embedding_position_backward",
            rows(s, c),
            dpos.ptr,
            dout.ptr,
            (t / s) as i32,
            s as i32,
            c as i32
        );
        self.column_sums_into(dtok_type.ptr, dout.ptr, t, c);
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
        (p, seed): (f32, u64),
    ) {
        if self.fused(sh, p > 0.0) {
            return self.fused_attention_forward(ctx, probs, (q, k, v), mask, sh);
        }
        let (b, h, s, d) = (sh.batch, sh.heads, sh.seq, sh.head_dim);
        let bytes = self.precision.bytes();
        let (q, k) = (self.operand(q.ptr, q.len), self.operand(k.ptr, k.len));
        self.run(gemm::attention_scores(sh, q.ptr, k.ptr, probs.ptr, bytes));
        let mask_d = self.to_device(mask);
        let weights = if p > 0.0 {
            Some(
                self.stream
                    .alloc_zeros::<f32>(probs.len)
                    .expect("device allocation"),
            )
        } else {
            None
        };
        let w_ptr = weights.as_ref().map_or(probs.ptr, |w| self.ptr(w));
        let scale = 1.0 / (d as f32).sqrt();
        launch!(
            self,
            "attention_softmax_forward",
            rows(b * h * s, s),
            probs.ptr,
            w_ptr,
            if p > 0.0 { drop_mask.ptr } else { 0u64 },
            probs.ptr,
            self.ptr(&mask_d),
            h as i32,
            s as i32,
            scale,
            p,
            seed
        );
        let (v, w) = (self.operand(v.ptr, v.len), self.operand(w_ptr, probs.len));
        self.run(gemm::attention_context(sh, v.ptr, w.ptr, ctx.ptr, bytes));
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
            return self.fused_attention_backward((dq, dk, dv), dctx, (q, k, v), probs, sh);
        }
        let (b, h, s, d) = (sh.batch, sh.heads, sh.seq, sh.head_dim);
        let with_dropout = drop_mask.len > 0;
        // What V was multiplied by: P, or P ⊙ M recomputed.
        let weights = with_dropout.then(|| {
            let w = self
                .stream
                .alloc_zeros::<f32>(probs.len)
                .expect("device allocation");
            launch!(
                self,
                "mul_into",
                grid(probs.len),
                self.ptr(&w),
                probs.ptr,
                drop_mask.ptr,
                probs.len
            );
            w
        });
        let w_ptr = weights.as_ref().map_or(probs.ptr, |w| self.ptr(w));
        let dw = self
            .stream
            .alloc_zeros::<f32>(probs.len)
            .expect("device allocation");
        let dw_ptr = self.ptr(&dw);
        let bytes = self.precision.bytes();
        let (v, dctx) = (self.operand(v.ptr, v.len), self.operand(dctx.ptr, dctx.len));
        let w = self.operand(w_ptr, probs.len);
        self.run(gemm::attention_backward_w_v(
            sh, v.ptr, dctx.ptr, w.ptr, dw_ptr, dv.ptr, bytes,
        ));
        let scale = 1.0 / (d as f32).sqrt();
        launch!(
            self,
            "attention_softmax_backward",
            rows(b * h * s, s),
            dw_ptr,
            probs.ptr,
            if with_dropout { drop_mask.ptr } else { 0u64 },
            s as i32,
            scale
        );
        let (q, k) = (self.operand(q.ptr, q.len), self.operand(k.ptr, k.len));
        let ds = self.operand(dw_ptr, probs.len);
        self.run(gemm::attention_backward_q_k(
            sh, q.ptr, k.ptr, ds.ptr, dq.ptr, dk.ptr, bytes,
        ));
    }
    fn cross_entropy(
        &self,
        dlogits: DViewMut<'_>,
        logits: DView<'_>,
        labels: &[i64],
        v: usize,
    ) -> f32 {
        let count = labels.iter().filter(|&&l| l >= 0).count();
        if count == 0 {
            launch!(
                self,
                "scale",
                grid(dlogits.len),
                dlogits.ptr,
                0.0f32,
                dlogits.len
            );
            return 0.0;
        }
        let labels_d = self.to_device(labels);
        let loss_rows = self
            .stream
            .alloc_zeros::<f32>(labels.len())
            .expect("device allocation");
        launch!(
            self,
            "cross_entropy_forward_backward",
            rows(labels.len(), v),
            dlogits.ptr,
            self.ptr(&loss_rows),
            logits.ptr,
            self.ptr(&labels_d),
            v as i32,
            1.0f32 / count as f32
        );
        let losses = self
            .stream
            .clone_dtoh(&loss_rows)
            .expect("device → host copy");
        (losses.iter().map(|&l| l as f64).sum::<f64>() / count as f64) as f32
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
        let bc1 = 1.0 - opt.beta1.powi(step as i32);
        let bc2 = 1.0 - opt.beta2.powi(step as i32);
        let wd = if decay { opt.weight_decay } else { 0.0 };
        launch!(
            self,
            "adamw_update",
            grid(p.len),
            p.ptr,
            g.ptr,
            m.ptr,
            v.ptr,
            0u64,
            p.len,
            opt.lr,
            opt.beta1,
            opt.beta2,
            opt.eps,
            wd,
            bc1,
            bc2
        );
    }
}
