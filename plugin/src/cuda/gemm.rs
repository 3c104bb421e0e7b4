//! The GPU backend's matrix products as data: which cuBLAS call (transposes, sizes, leading
//! dimensions, strides, batch) computes each product of the model's row-major tensors. cuBLAS is
//! column-major, so every product is written for the transposes (a row-major A is a
//! column-major Aᵀ); that mapping is where a backend without a GPU to run on most easily goes
//! wrong, so it lives here as pure functions, tested on the CPU against a column-major reference
//! GEMM and the CPU backend (`plugin/tests/it/cuda_gemm.rs`). `backend.rs` hands each [`Gemm`] to
//! `cublasGemmStridedBatchedEx`.

use crate::train::backend::Shape;

/// A matrix operand: device address, leading dimension and batch stride (in elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mat {
    pub ptr: u64,
    pub ld: usize,
    pub stride: usize,
}

/// Column-major `C = op(A)·op(B) + beta·C` over `batch` matrices; op(A) is m × k, op(B) k × n.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gemm {
    pub trans: (bool, bool),
    pub mnk: (usize, usize, usize),
    pub a: Mat,
    pub b: Mat,
    pub beta: f32,
    pub c: Mat,
    pub batch: usize,
}

fn one(ptr: u64, ld: usize) -> Mat {
    Mat { ptr, ld, stride: 0 }
}

/// `y = x · wᵀ` (x: T × I, w: O × I, y: T × O, overwritten) as `Yᵀ (O × T) = W (O × I) · Xᵀ`:
/// row-major W is column-major Wᵀ, hence op(A) = T.
pub fn linear_forward(t: usize, i: usize, o: usize, x: u64, w: u64, y: u64) -> Gemm {
    Gemm {
        trans: (true, false),
        mnk: (o, t, i),
        a: one(w, i),
        b: one(x, i),
        beta: 0.0,
        c: one(y, o),
        batch: 1,
    }
}

/// `dx += dy · w` as `dXᵀ (I × T) += Wᵀ (I × O) · dYᵀ (O × T)`, and `dw += dyᵀ · x` as
/// `dWᵀ (I × O) += Xᵀ (I × T) · dY (T × O)`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    t: usize,
    i: usize,
    o: usize,
    dy: u64,
    x: u64,
    w: u64,
    dx: u64,
    dw: u64,
) -> [Gemm; 2] {
    [
        Gemm {
            trans: (false, false),
            mnk: (i, t, o),
            a: one(w, i),
            b: one(dy, o),
            beta: 1.0,
            c: one(dx, i),
            batch: 1,
        },
        Gemm {
            trans: (false, true),
            mnk: (i, o, t),
            a: one(x, i),
            b: one(dy, o),
            beta: 1.0,
            c: one(dw, i),
            batch: 1,
        },
    ]
}

/// An operand of attention's per-head products: a T × C activation (Q, K, V, ctx and their
/// gradients; heads `head_dim` elements apart) or B·H·S·S scores, probabilities or their
/// gradients (row i of (b, h) at `(b·H + h)·S² + i·S`).
#[derive(Debug, Clone, Copy)]
pub enum Heads {
    Tokens(u64),
    Scores(u64),
}

/// `C = op(A)·op(B) + beta·C` for every (batch row, head): one strided batch over the heads per
/// batch row. A and B hold elements of `input_bytes` (4 fp32, 2 bf16); C is fp32.
#[allow(clippy::too_many_arguments)]
fn per_head(
    sh: &Shape,
    trans: (bool, bool),
    mnk: (usize, usize, usize),
    a: Heads,
    b: Heads,
    beta: f32,
    c: Heads,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, h, d) = (sh.seq, sh.heads, sh.head_dim);
    let (cc, ss) = (h * d, s * s);
    let at = |x: Heads, bi: usize, bytes: usize| match x {
        Heads::Tokens(p) => Mat {
            ptr: p + (bytes * bi * s * cc) as u64,
            ld: cc,
            stride: d,
        },
        Heads::Scores(p) => Mat {
            ptr: p + (bytes * bi * h * ss) as u64,
            ld: s,
            stride: ss,
        },
    };
    (0..sh.batch)
        .map(|bi| Gemm {
            trans,
            mnk,
            a: at(a, bi, input_bytes),
            b: at(b, bi, input_bytes),
            beta,
            c: at(c, bi, 4),
            batch: h,
        })
        .collect()
}

/// The scores `q kᵀ` of each head into `scores` (overwritten): `Pᵀ = K · Qᵀ` per head.
pub fn attention_scores(sh: &Shape, q: u64, k: u64, scores: u64, input_bytes: usize) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    per_head(
        sh,
        (true, false),
        (s, s, d),
        Tokens(k),
        Tokens(q),
        0.0,
        Scores(scores),
        input_bytes,
    )
}

/// `ctx = W v` per head (W: the probabilities, dropped out or not), overwritten:
/// `ctxᵀ (d × S) = Vᵀ · Wᵀ`.
pub fn attention_context(sh: &Shape, v: u64, w: u64, ctx: u64, input_bytes: usize) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    per_head(
        sh,
        (false, false),
        (d, s, s),
        Tokens(v),
        Scores(w),
        0.0,
        Tokens(ctx),
        input_bytes,
    )
}

/// Backward through `ctx = W v`: `dW = dctx vᵀ` (overwritten) as `dWᵀ = V · dctxᵀ`, and
/// `dv += Wᵀ dctx` as `dVᵀ += dctxᵀ · W`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_w_v(
    sh: &Shape,
    v: u64,
    dctx: u64,
    w: u64,
    dw: u64,
    dv: u64,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    let mut g = per_head(
        sh,
        (true, false),
        (s, s, d),
        Tokens(v),
        Tokens(dctx),
        0.0,
        Scores(dw),
        input_bytes,
    );
    g.extend(per_head(
        sh,
        (false, true),
        (d, s, s),
        Tokens(dctx),
        Scores(w),
        1.0,
        Tokens(dv),
        input_bytes,
    ));
    g
}

/// Backward through the scores, given their gradient dS: `dq += dS k` as `dQᵀ += Kᵀ · dSᵀ`
/// (row-major dS is column-major dSᵀ), and `dk += dSᵀ q` as `dKᵀ += Qᵀ · dS`.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward_q_k(
    sh: &Shape,
    q: u64,
    k: u64,
    ds: u64,
    dq: u64,
    dk: u64,
    input_bytes: usize,
) -> Vec<Gemm> {
    let (s, d) = (sh.seq, sh.head_dim);
    use Heads::*;
    let mut g = per_head(
        sh,
        (false, false),
        (d, s, s),
        Tokens(k),
        Scores(ds),
        1.0,
        Tokens(dq),
        input_bytes,
    );
    g.extend(per_head(
        sh,
        (false, true),
        (d, s, s),
        Tokens(q),
        Scores(ds),
        1.0,
        Tokens(dk),
        input_bytes,
    ));
    g
}
