//! Multi-head scaled dot-product attention with a key padding mask:
//! `P = softmax(Q Kᵀ / √d + mask)`, `ctx = P V`, per batch row and head.
//!
//! q, k, v, ctx: T × C with T = B·S and heads side by side in C (as BERT's projections give
//! them); `mask`: B × S, 1 for a real token, 0 for padding, whose keys get probability 0.
//! With dropout, `ctx = (P ⊙ M) V` where M holds 0 or 1/(1−p) per probability.

use super::{dropout, gemm_strided, rm, tr, vmath};

use crate::train::backend::Shape;

// The CPU kernels' offsets into a shape's tensors.
impl Shape {
    fn c(&self) -> usize {
        self.heads * self.head_dim
    }
    /// Offset of head h of batch row b in a T × C tensor.
    fn at(&self, b: usize, h: usize) -> usize {
        b * self.seq * self.c() + h * self.head_dim
    }
    /// Offset of the S × S probability block of (b, h).
    fn p_at(&self, b: usize, h: usize) -> usize {
        (b * self.heads + h) * self.seq * self.seq
    }
}

/// The weights V is multiplied by: P, or P ⊙ M (into `buf`) when there is a dropout mask.
fn weights_seen<'a>(p: &'a [f32], m: &[f32], buf: &'a mut [f32]) -> &'a [f32] {
    if m.is_empty() {
        return p;
    }
    buf.iter_mut()
        .zip(p.iter().zip(m))
        .for_each(|(w, (p, m))| *w = p * m);
    buf
}

/// Runs `f(item, outputs…)` for every (batch row, head) item, `threads` at a time; each item's
/// outputs are its own blocks of `blocks` (a list of buffers cut into per-item blocks of the
/// given sizes), so the threads share nothing mutable. Items go to threads in fixed
/// contiguous groups: results do not depend on the thread count.
pub(crate) fn par_items<F>(items: usize, threads: usize, blocks: Vec<(&mut [f32], usize)>, f: F)
where
    F: Fn(usize, &mut [&mut [f32]]) + Sync,
{
    let mut per_item: Vec<Vec<&mut [f32]>> = (0..items).map(|_| vec![]).collect();
    for (buf, size) in blocks {
        if size == 0 {
            per_item.iter_mut().for_each(|v| v.push(&mut []));
            continue;
        }
        for (v, block) in per_item.iter_mut().zip(buf.chunks_exact_mut(size)) {
            v.push(block);
        }
    }
    let threads = threads.clamp(1, items.max(1));
    if threads == 1 {
        for (i, mut outs) in per_item.into_iter().enumerate() {
            f(i, &mut outs);
        }
        return;
    }
    let per = items.div_ceil(threads);
    let mut groups = vec![];
    let mut rest = per_item;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        groups.push(std::mem::replace(&mut rest, tail));
    }
    rayon::scope(|s| {
        for (g, group) in groups.into_iter().enumerate() {
            let f = &f;
            s.spawn(move |_| {
                for (i, mut outs) in group.into_iter().enumerate() {
                    f(g * per + i, &mut outs);
                }
            });
        }
    });
}

/// Adds (or copies, `add` false) per-head blocks (B × H × S × d) into their columns of a
/// T × C tensor.
pub(crate) fn scatter_heads(dst: &mut [f32], heads: &[f32], sh: &Shape, add: bool) {
    let (s, d) = (sh.seq, sh.head_dim);
    for (bh, block) in heads.chunks_exact(s * d).enumerate() {
        let (b, h) = (bh / sh.heads, bh % sh.heads);
        for (row, src) in block.chunks_exact(d).enumerate() {
            let out = &mut dst[sh.at(b, h) + row * sh.c()..][..d];
            if add {
                out.iter_mut().zip(src).for_each(|(o, x)| *o += x);
            } else {
                out.copy_from_slice(src);
            }
        }
    }
}

/// Fills ctx (T × C, overwritten) and probs (B × H × S × S, saved for backward). With
/// `p > 0`, `drop_mask` (as long as probs) receives the dropout scale factors. Heads run on
/// up to `threads` threads.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    ctx: &mut [f32],
    probs: &mut [f32],
    drop_mask: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    mask: &[f32],
    sh: &Shape,
    (p_drop, seed): (f32, u64),
    threads: usize,
) {
    let (s, d, c) = (sh.seq, sh.head_dim, sh.c());
    let scale = 1.0 / (d as f32).sqrt();
    if p_drop > 0.0 {
        assert_eq!(
            drop_mask.len(),
            probs.len(),
            "attention dropout needs a mask buffer"
        );
        dropout::fill_mask(drop_mask, p_drop, seed);
    }
    let items = sh.batch * sh.heads;
    let mut per_head = vec![0f32; items * s * d];
    let mask_block = if p_drop > 0.0 { s * s } else { 0 };
    let blocks = vec![
        (&mut probs[..items * s * s], s * s),
        (&mut per_head[..], s * d),
        (drop_mask, mask_block),
    ];
    par_items(items, threads, blocks, |bh, outs| {
        let (b, h) = (bh / sh.heads, bh % sh.heads);
        let o = sh.at(b, h);
        let [p, out, m] = outs else { unreachable!() };
        gemm_strided(s, d, s, &q[o..], rm(c), &k[o..], tr(c), p, rm(s), 0.0);
        vmath::masked_softmax_rows(p, &mask[b * s..][..s], scale);
        let mut dropped = vec![0f32; if m.is_empty() { 0 } else { s * s }];
        let weights = weights_seen(p, m, &mut dropped);
        gemm_strided(s, s, d, weights, rm(s), &v[o..], rm(c), out, rm(d), 0.0);
    });
    scatter_heads(ctx, &per_head, sh, false);
}

/// Accumulates dq, dk, dv from dctx. `drop_mask` is empty when the forward pass had no
/// dropout. Heads run on up to `threads` threads.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
    dctx: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    probs: &[f32],
    drop_mask: &[f32],
    sh: &Shape,
    threads: usize,
) {
    let (s, d, c) = (sh.seq, sh.head_dim, sh.c());
    let scale = 1.0 / (d as f32).sqrt();
    let with_dropout = !drop_mask.is_empty();
    let items = sh.batch * sh.heads;
    // Each head's dQ, dK, dV (S × d), added into their columns afterwards.
    let mut grads = vec![0f32; 3 * items * s * d];
    let (gq, rest) = grads.split_at_mut(items * s * d);
    let (gk, gv) = rest.split_at_mut(items * s * d);
    let blocks = vec![(gq, s * d), (gk, s * d), (gv, s * d)];
    par_items(items, threads, blocks, |bh, outs| {
        let [dq_h, dk_h, dv_h] = outs else {
            unreachable!()
        };
        let (b, h) = (bh / sh.heads, bh % sh.heads);
        let (o, p) = (sh.at(b, h), &probs[sh.p_at(b, h)..][..s * s]);
        let m = if with_dropout {
            &drop_mask[sh.p_at(b, h)..][..s * s]
        } else {
            &[][..]
        };
        let mut dp = vec![0f32; s * s];
        let mut dropped = vec![0f32; if with_dropout { s * s } else { 0 }];
        // dP' = dctx · Vᵀ and dV = P'ᵀ · dctx, with P' = P ⊙ M the weights V saw
        gemm_strided(
            s,
            d,
            s,
            &dctx[o..],
            rm(c),
            &v[o..],
            tr(c),
            &mut dp,
            rm(s),
            0.0,
        );
        let weights = weights_seen(p, m, &mut dropped);
        dropout::backward(&mut dp, m);
        gemm_strided(s, s, d, weights, tr(s), &dctx[o..], rm(c), dv_h, rm(d), 0.0);
        // Softmax backward, then the scale: dS = P ⊙ (dP − Σ dP ⊙ P) / √d
        for (dpr, pr) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
            let dot: f32 = dpr.iter().zip(pr).map(|(a, b)| a * b).sum();
            for (x, &pv) in dpr.iter_mut().zip(pr) {
                *x = pv * (*x - dot) * scale;
            }
        }
        // dQ = dS · K ; dK = dSᵀ · Q
        gemm_strided(s, s, d, &dp, rm(s), &k[o..], rm(c), dq_h, rm(d), 0.0);
        gemm_strided(s, s, d, &dp, tr(s), &q[o..], rm(c), dk_h, rm(d), 0.0);
    });
    let (gq, rest) = grads.split_at(items * s * d);
    let (gk, gv) = rest.split_at(items * s * d);
    scatter_heads(dq, gq, sh, true);
    scatter_heads(dk, gk, sh, true);
    scatter_heads(dv, gv, sh, true);
}
