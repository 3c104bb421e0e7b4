//! The BERT encoder (embeddings + post-LayerNorm transformer layers), forward and backward
//! written out by hand over the kernels in `ops`: the architecture is fixed, so no autograd.

use super::ops::{attention, embedding, gelu, layernorm, linear};
use super::params::Params;
use crate::config::BertConfig;

/// Token ids (B × S), with a 0/1 attention mask.
pub struct Tokens {
    pub batch: usize,
    pub seq: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<f32>,
}

impl Tokens {
    /// The rows cut into at most `parts` consecutive groups, as (first row, tokens).
    pub fn split_rows(&self, parts: usize) -> Vec<(usize, Tokens)> {
        let parts = parts.clamp(1, self.batch.max(1));
        let mut out = vec![];
        let mut row = 0;
        for p in 0..parts {
            let rows = self.batch / parts + usize::from(p < self.batch % parts);
            let r = row * self.seq..(row + rows) * self.seq;
            let t = Tokens {
                batch: rows,
                seq: self.seq,
                ids: self.ids[r.clone()].to_vec(),
                mask: self.mask[r].to_vec(),
            };
            out.push((row, t));
            row += rows;
        }
        out
    }
}

/// What one layer's forward keeps for its backward.
struct LayerActs {
    input: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    probs: Vec<f32>,
    ctx: Vec<f32>,
    res1: Vec<f32>,
    ln1: (Vec<f32>, Vec<f32>),
    x1: Vec<f32>,
    inter: Vec<f32>,
    act: Vec<f32>,
    res2: Vec<f32>,
    ln2: (Vec<f32>, Vec<f32>),
}

/// The encoder's saved activations, and its output (`hidden`, T × C).
pub struct Activations {
    emb: Vec<f32>,
    emb_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<LayerActs>,
    pub hidden: Vec<f32>,
}

/// `y = LayerNorm(x)` with the tensors `{name}.weight`/`.bias`; returns (mean, rstd).
pub(super) fn ln_forward(
    y: &mut [f32],
    x: &[f32],
    params: &Params,
    name: &str,
    c: usize,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let t = x.len() / c;
    let (mut mean, mut rstd) = (vec![0f32; t], vec![0f32; t]);
    let (w, b) = (
        params.get(&format!("{name}.weight")),
        params.get(&format!("{name}.bias")),
    );
    layernorm::forward(y, &mut mean, &mut rstd, x, w, b, c, eps);
    (mean, rstd)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn ln_backward(
    dx: &mut [f32],
    dy: &[f32],
    x: &[f32],
    stats: &(Vec<f32>, Vec<f32>),
    params: &Params,
    grads: &mut Params,
    name: &str,
    c: usize,
) {
    let (dw, db) = grads.weight_and_bias_mut(name);
    layernorm::backward(
        dx,
        dw,
        db,
        dy,
        x,
        params.get(&format!("{name}.weight")),
        &stats.0,
        &stats.1,
        c,
    );
}

/// `y = x · Wᵀ + b` with the tensors `{name}.weight`/`.bias`; returns y (T × O).
pub(super) fn lin_forward(x: &[f32], params: &Params, name: &str, i: usize, o: usize) -> Vec<f32> {
    let t = x.len() / i;
    let mut y = vec![0f32; t * o];
    linear::forward(
        &mut y,
        x,
        params.get(&format!("{name}.weight")),
        params.get(&format!("{name}.bias")),
        t,
        i,
        o,
    );
    y
}

#[allow(clippy::too_many_arguments)]
pub(super) fn lin_backward(
    dx: &mut [f32],
    dy: &[f32],
    x: &[f32],
    params: &Params,
    grads: &mut Params,
    name: &str,
    i: usize,
    o: usize,
) {
    let t = x.len() / i;
    let (dw, db) = grads.weight_and_bias_mut(name);
    linear::backward(
        dx,
        dw,
        db,
        dy,
        x,
        params.get(&format!("{name}.weight")),
        t,
        i,
        o,
    );
}

fn attention_shape(config: &BertConfig, tokens: &Tokens) -> attention::Shape {
    attention::Shape {
        batch: tokens.batch,
        seq: tokens.seq,
        heads: config.num_attention_heads,
        head_dim: config.head_dim(),
    }
}

pub fn forward(config: &BertConfig, params: &Params, tokens: &Tokens) -> Activations {
    let (h, im) = (config.hidden_size, config.intermediate_size);
    let t = tokens.batch * tokens.seq;
    let eps = config.layer_norm_eps as f32;
    let sh = attention_shape(config, tokens);

    let mut emb = vec![0f32; t * h];
    embedding::forward(
        &mut emb,
        &tokens.ids,
        params.get("bert.embeddings.word_embeddings.weight"),
        params.get("bert.embeddings.position_embeddings.weight"),
        &params.get("bert.embeddings.token_type_embeddings.weight")[..h],
        tokens.seq,
        h,
    );
    let mut x = vec![0f32; t * h];
    let emb_ln = ln_forward(&mut x, &emb, params, "bert.embeddings.LayerNorm", h, eps);

    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let n = |s: &str| format!("bert.encoder.layer.{l}.{s}");
        let q = lin_forward(&x, params, &n("attention.self.query"), h, h);
        let k = lin_forward(&x, params, &n("attention.self.key"), h, h);
        let v = lin_forward(&x, params, &n("attention.self.value"), h, h);
        let mut probs = vec![0f32; sh.probs_len()];
        let mut ctx = vec![0f32; t * h];
        attention::forward(&mut ctx, &mut probs, &q, &k, &v, &tokens.mask, &sh);
        let mut res1 = lin_forward(&ctx, params, &n("attention.output.dense"), h, h);
        res1.iter_mut().zip(&x).for_each(|(r, x)| *r += x);
        let mut x1 = vec![0f32; t * h];
        let ln1 = ln_forward(
            &mut x1,
            &res1,
            params,
            &n("attention.output.LayerNorm"),
            h,
            eps,
        );
        let inter = lin_forward(&x1, params, &n("intermediate.dense"), h, im);
        let mut act = vec![0f32; t * im];
        gelu::forward(&mut act, &inter);
        let mut res2 = lin_forward(&act, params, &n("output.dense"), im, h);
        res2.iter_mut().zip(&x1).for_each(|(r, x)| *r += x);
        let mut x2 = vec![0f32; t * h];
        let ln2 = ln_forward(&mut x2, &res2, params, &n("output.LayerNorm"), h, eps);
        let input = std::mem::replace(&mut x, x2);
        layers.push(LayerActs {
            input,
            q,
            k,
            v,
            probs,
            ctx,
            res1,
            ln1,
            x1,
            inter,
            act,
            res2,
            ln2,
        });
    }
    Activations {
        emb,
        emb_ln,
        layers,
        hidden: x,
    }
}

/// Accumulates every encoder gradient, given d(hidden).
pub fn backward(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    tokens: &Tokens,
    acts: &Activations,
    dhidden: Vec<f32>,
) {
    let (h, im) = (config.hidden_size, config.intermediate_size);
    let t = tokens.batch * tokens.seq;
    let sh = attention_shape(config, tokens);
    let mut dx = dhidden;
    let mut scratch = vec![0f32; tokens.seq * tokens.seq];
    for (l, a) in acts.layers.iter().enumerate().rev() {
        let n = |s: &str| format!("bert.encoder.layer.{l}.{s}");
        let mut dres2 = vec![0f32; t * h];
        ln_backward(
            &mut dres2,
            &dx,
            &a.res2,
            &a.ln2,
            params,
            grads,
            &n("output.LayerNorm"),
            h,
        );
        let mut dx1 = dres2.clone(); // the residual branch
        let mut dact = vec![0f32; t * im];
        lin_backward(
            &mut dact,
            &dres2,
            &a.act,
            params,
            grads,
            &n("output.dense"),
            im,
            h,
        );
        let mut dinter = vec![0f32; t * im];
        gelu::backward(&mut dinter, &dact, &a.inter);
        lin_backward(
            &mut dx1,
            &dinter,
            &a.x1,
            params,
            grads,
            &n("intermediate.dense"),
            h,
            im,
        );
        let mut dres1 = vec![0f32; t * h];
        ln_backward(
            &mut dres1,
            &dx1,
            &a.res1,
            &a.ln1,
            params,
            grads,
            &n("attention.output.LayerNorm"),
            h,
        );
        let mut din = dres1.clone(); // the residual branch
        let mut dctx = vec![0f32; t * h];
        lin_backward(
            &mut dctx,
            &dres1,
            &a.ctx,
            params,
            grads,
            &n("attention.output.dense"),
            h,
            h,
        );
        let (mut dq, mut dk, mut dv) = (vec![0f32; t * h], vec![0f32; t * h], vec![0f32; t * h]);
        attention::backward(
            &mut dq,
            &mut dk,
            &mut dv,
            &mut scratch,
            &dctx,
            &a.q,
            &a.k,
            &a.v,
            &a.probs,
            &sh,
        );
        lin_backward(
            &mut din,
            &dq,
            &a.input,
            params,
            grads,
            &n("attention.self.query"),
            h,
            h,
        );
        lin_backward(
            &mut din,
            &dk,
            &a.input,
            params,
            grads,
            &n("attention.self.key"),
            h,
            h,
        );
        lin_backward(
            &mut din,
            &dv,
            &a.input,
            params,
            grads,
            &n("attention.self.value"),
            h,
            h,
        );
        dx = din;
    }
    let mut demb = vec![0f32; t * h];
    ln_backward(
        &mut demb,
        &dx,
        &acts.emb,
        &acts.emb_ln,
        params,
        grads,
        "bert.embeddings.LayerNorm",
        h,
    );
    // Word, position and token-type tables come first in every layout, in that order.
    let rw = grads.range("bert.embeddings.word_embeddings.weight");
    let rp = grads.range("bert.embeddings.position_embeddings.weight");
    let rt = grads.range("bert.embeddings.token_type_embeddings.weight");
    assert!(rw.end <= rp.start && rp.end <= rt.start);
    let (dword, rest) = grads.data.split_at_mut(rp.start);
    let (dpos, dtype) = rest.split_at_mut(rt.start - rp.start);
    embedding::backward(
        &mut dword[rw],
        &mut dpos[..rp.len()],
        &mut dtype[..h],
        &demb,
        &tokens.ids,
        tokens.seq,
        h,
    );
}
