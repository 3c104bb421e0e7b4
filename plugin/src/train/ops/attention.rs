//! Multi-head scaled dot-product attention with a key padding mask:
//! `P = softmax(Q Kᵀ / √d + mask)`, `ctx = P V`, per batch row and head.
//!
//! q, k, v, ctx: T × C with T = B·S and heads side by side in C (as BERT's projections give
//! them); `mask`: B × S, 1 for a real token, 0 for padding, whose keys get probability 0.
//! With dropout, `ctx = (P ⊙ M) V` where M holds 0 or 1/(1−p) per probability.

use super::{dropout, gemm_strided, rm, tr};

pub struct Shape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

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
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.seq * self.seq
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

/// Fills ctx (T × C, overwritten) and probs (B × H × S × S, saved for backward). With
/// `p > 0`, `drop_mask` (as long as probs) receives the dropout scale factors.
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
) {
    let (s, d, c) = (sh.seq, sh.head_dim, sh.c());
    let scale = 1.0 / (d as f32).sqrt();
    let mut dropped = if p_drop > 0.0 {
        vec![0f32; s * s]
    } else {
        vec![]
    };
    if p_drop > 0.0 {
        assert_eq!(
            drop_mask.len(),
            probs.len(),
            "attention dropout needs a mask buffer"
        );
        dropout::fill_mask(drop_mask, p_drop, seed);
    }
    for b in 0..sh.batch {
        let keep = &mask[b * s..][..s];
        for h in 0..sh.heads {
            let (o, po) = (sh.at(b, h), sh.p_at(b, h));
            let p = &mut probs[po..][..s * s];
            gemm_strided(s, d, s, &q[o..], rm(c), &k[o..], tr(c), p, rm(s), 0.0);
            for row in p.chunks_exact_mut(s) {
                let mut max = f32::NEG_INFINITY;
                for (x, &m) in row.iter_mut().zip(keep) {
                    *x *= scale;
                    if m > 0.0 {
                        max = max.max(*x);
                    }
                }
                let mut sum = 0.0;
                for (x, &m) in row.iter_mut().zip(keep) {
                    *x = if m > 0.0 { (*x - max).exp() } else { 0.0 };
                    sum += *x;
                }
                row.iter_mut().for_each(|x| *x /= sum);
            }
            let m = if p_drop > 0.0 {
                &drop_mask[po..][..s * s]
            } else {
                &[][..]
            };
            let weights = weights_seen(p, m, &mut dropped);
            gemm_strided(
                s,
                s,
                d,
                weights,
                rm(s),
                &v[o..],
                rm(c),
                &mut ctx[o..],
                rm(c),
                0.0,
            );
        }
    }
}

/// Accumulates dq, dk, dv from dctx. `drop_mask` is empty when the forward pass had no
/// dropout.
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
) {
    let (s, d, c) = (sh.seq, sh.head_dim, sh.c());
    let scale = 1.0 / (d as f32).sqrt();
    let mut dp = vec![0f32; s * s];
    let dp = &mut dp[..];
    let with_dropout = !drop_mask.is_empty();
    let mut dropped = if with_dropout {
        vec![0f32; s * s]
    } else {
        vec![]
    };
    for b in 0..sh.batch {
        for h in 0..sh.heads {
            let (o, p) = (sh.at(b, h), &probs[sh.p_at(b, h)..][..s * s]);
            let m = if with_dropout {
                &drop_mask[sh.p_at(b, h)..][..s * s]
            } else {
                &[][..]
            };
            // dP' = dctx · Vᵀ and dV += P'ᵀ · dctx, with P' = P ⊙ M the weights V saw
            gemm_strided(s, d, s, &dctx[o..], rm(c), &v[o..], tr(c), dp, rm(s), 0.0);
            let weights = weights_seen(p, m, &mut dropped);
            dropout::backward(dp, m);
            gemm_strided(
                s,
                s,
                d,
                weights,
                tr(s),
                &dctx[o..],
                rm(c),
                &mut dv[o..],
                rm(c),
                1.0,
            );
            // Softmax backward, then the scale: dS = P ⊙ (dP − Σ dP ⊙ P) / √d
            for (dpr, pr) in dp.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
                let dot: f32 = dpr.iter().zip(pr).map(|(a, b)| a * b).sum();
                for (x, &pv) in dpr.iter_mut().zip(pr) {
                    *x = pv * (*x - dot) * scale;
                }
            }
            // dQ += dS · K ; dK += dSᵀ · Q
            gemm_strided(s, s, d, dp, rm(s), &k[o..], rm(c), &mut dq[o..], rm(c), 1.0);
            gemm_strided(s, s, d, dp, tr(s), &q[o..], rm(c), &mut dk[o..], rm(c), 1.0);
        }
    }
}
