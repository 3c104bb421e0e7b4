//! Attention's host side, two ways. Products: cuBLAS batched Q·Kᵀ and P·V (`gemm.rs`) around
//! `kernels/attention.cu`'s masked softmax, the probabilities kept for backward. Fused
//! (`kernels/attention_fused.cu`, FlashAttention-2's scheme in fp32): scores never stored,
//! each row's log-sum-exp kept; heads up to [`FUSED_MAX_D`], no attention dropout.

use cudarc::driver::{CudaSlice, LaunchConfig};

use super::{rows, tensor, DView, DViewMut, Gpu, In, Out};
use crate::cuda::gemm;
use crate::train::backend::Shape;

/// The fused kernels' launch shape (`FUSED_ROWS` and `FUSED_MAX_D` in attention_fused.cu).
const FUSED_ROWS: usize = 64;
pub(super) const FUSED_MAX_D: usize = 64;

/// What fused attention saves per layer: each row's log-sum-exp, then the key mask.
pub(super) fn fused_saved_len(sh: &Shape) -> usize {
    sh.batch * sh.heads * sh.seq + sh.batch * sh.seq
}

type Qkv<'a> = (DView<'a>, DView<'a>, DView<'a>);
type DQkv<'a> = (DViewMut<'a>, DViewMut<'a>, DViewMut<'a>);

pub(super) fn forward(
    g: &Gpu,
    (ctx, probs, drop_mask): (DViewMut<'_>, DViewMut<'_>, DViewMut<'_>),
    (q, k, v): Qkv<'_>,
    mask: &[f32],
    sh: &Shape,
    (p, seed): (f32, u64),
) {
    let (b, h, s, d) = (sh.batch, sh.heads, sh.seq, sh.head_dim);
    let bytes = g.precision.bytes();
    let (q, k) = (g.operand(q.ptr, q.len), g.operand(k.ptr, k.len));
    g.run(gemm::attention_scores(sh, q.ptr, k.ptr, probs.ptr, bytes));
    let mask_d = g.to_device(mask);
    // With dropout, what V is multiplied by (P ⊙ M) goes to a buffer of its own; without,
    // the probabilities themselves.
    let weights: Option<CudaSlice<f32>> = (p > 0.0).then(|| g.zeroed(probs.len));
    let w: Out<f32> = weights.as_ref().map_or(probs.out(), |w| g.out(w));
    g.k().attention_softmax_forward(
        rows(b * h * s, s),
        probs.out(),
        w,
        if p > 0.0 {
            drop_mask.out()
        } else {
            Out::null()
        },
        probs.read(),
        g.out(&mask_d).read(),
        h as i32,
        s as i32,
        1.0 / (d as f32).sqrt(),
        p,
        seed,
    );
    let (v, w) = (g.operand(v.ptr, v.len), g.operand(w.addr, probs.len));
    g.run(gemm::attention_context(sh, v.ptr, w.ptr, ctx.ptr, bytes));
}

pub(super) fn backward(
    g: &Gpu,
    (dq, dk, dv): DQkv<'_>,
    dctx: DView<'_>,
    (q, k, v): Qkv<'_>,
    (probs, drop_mask): (DView<'_>, DView<'_>),
    sh: &Shape,
) {
    let (s, d) = (sh.seq, sh.head_dim);
    let with_dropout = drop_mask.len > 0;
    // What V was multiplied by: P, or P ⊙ M recomputed.
    let weights = with_dropout.then(|| {
        let w: CudaSlice<f32> = g.scratch(probs.len);
        tensor::mul_into(g, g.out(&w), probs.input(), drop_mask.input(), probs.len);
        w
    });
    let w_ptr = weights.as_ref().map_or(probs.ptr, |w| g.ptr(w));
    let dw: CudaSlice<f32> = g.zeroed(probs.len);
    let dw_ptr = g.ptr(&dw);
    let bytes = g.precision.bytes();
    let (v, dctx) = (g.operand(v.ptr, v.len), g.operand(dctx.ptr, dctx.len));
    let w = g.operand(w_ptr, probs.len);
    g.run(gemm::attention_backward_w_v(
        sh, v.ptr, dctx.ptr, w.ptr, dw_ptr, dv.ptr, bytes,
    ));
    g.k().attention_softmax_backward(
        rows(sh.batch * sh.heads * s, s),
        Out::at(dw_ptr),
        probs.input(),
        if with_dropout {
            drop_mask.input()
        } else {
            In::null()
        },
        s as i32,
        1.0 / (d as f32).sqrt(),
    );
    let (q, k) = (g.operand(q.ptr, q.len), g.operand(k.ptr, k.len));
    let ds = g.operand(dw_ptr, probs.len);
    g.run(gemm::attention_backward_q_k(
        sh, q.ptr, k.ptr, ds.ptr, dq.ptr, dk.ptr, bytes,
    ));
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
pub(super) fn fused_forward(
    g: &Gpu,
    ctx: DViewMut<'_>,
    saved: DViewMut<'_>,
    (q, k, v): Qkv<'_>,
    mask: &[f32],
    sh: &Shape,
) {
    assert_eq!(saved.len, fused_saved_len(sh));
    let mask_d = g.to_device(mask);
    let rows = sh.batch * sh.heads * sh.seq;
    g.k().attention_fused_forward(
        fused_grid(sh),
        ctx.out(),
        saved.out(),
        saved.out().offset(rows),
        q.input(),
        k.input(),
        v.input(),
        g.out(&mask_d).read(),
        sh.heads as i32,
        sh.seq as i32,
        sh.head_dim as i32,
        1.0 / (sh.head_dim as f32).sqrt(),
    );
}

/// `saved` as the forward pass left it.
pub(super) fn fused_backward(
    g: &Gpu,
    (dq, dk, dv): DQkv<'_>,
    dctx: DView<'_>,
    (q, k, v): Qkv<'_>,
    saved: DView<'_>,
    sh: &Shape,
) {
    assert_eq!(saved.len, fused_saved_len(sh));
    let rows = sh.batch * sh.heads * sh.seq;
    let lse = saved.input();
    let saved_mask = In::at(saved.ptr + 4 * rows as u64);
    let delta: CudaSlice<f32> = g.zeroed(rows);
    let scale = 1.0 / (sh.head_dim as f32).sqrt();
    let (heads, seq, dim) = (sh.heads as i32, sh.seq as i32, sh.head_dim as i32);
    g.k().attention_fused_dq_backward(
        fused_grid(sh),
        dq.out(),
        g.out(&delta),
        dctx.input(),
        q.input(),
        k.input(),
        v.input(),
        lse,
        saved_mask,
        heads,
        seq,
        dim,
        scale,
    );
    g.k().attention_fused_dkdv_backward(
        fused_grid(sh),
        dk.out(),
        dv.out(),
        dctx.input(),
        q.input(),
        k.input(),
        v.input(),
        lse,
        g.out(&delta).read(),
        saved_mask,
        heads,
        seq,
        dim,
        scale,
    );
}
