//! The BERT encoder (embeddings + post-LayerNorm transformer layers), forward and backward
//! written out by hand over a [`Backend`]'s operations: the architecture is fixed, so no
//! autograd. Dropout sits where `transformers`' BERT has it: after the embeddings' LayerNorm, on
//! the attention probabilities, and on each sublayer's output before its residual sum.

use super::backend::{Backend, Dropout};
use super::params::Params;
use crate::config::BertConfig;
use crate::layout::{self, embeddings};

pub use crate::tokenizer::Tokens;

/// What one layer's forward keeps for its backward.
struct LayerActs<B: Backend> {
    input: B::Buf,
    q: B::Buf,
    k: B::Buf,
    v: B::Buf,
    probs: B::Buf,
    probs_drop: B::Buf,
    ctx: B::Buf,
    attn_drop: B::Buf,
    res1: B::Buf,
    ln1: (B::Buf, B::Buf),
    x1: B::Buf,
    inter: B::Buf,
    act: B::Buf,
    out_drop: B::Buf,
    res2: B::Buf,
    ln2: (B::Buf, B::Buf),
}

/// The encoder's saved activations, and its output (`hidden`, T × C).
pub struct Activations<B: Backend> {
    emb: B::Buf,
    emb_ln: (B::Buf, B::Buf),
    emb_drop: B::Buf,
    layers: Vec<LayerActs<B>>,
    pub hidden: B::Buf,
}

/// `LayerNorm(x)` with the tensors `{name}.weight`/`.bias`; returns y and (mean, rstd).
pub(super) fn ln_forward<B: Backend>(
    be: &B,
    x: &B::Buf,
    params: &Params<B>,
    name: &str,
    c: usize,
    eps: f32,
) -> (B::Buf, (B::Buf, B::Buf)) {
    let t = B::len(x) / c;
    let (mut y, mut mean, mut rstd) = (be.zeros(B::len(x)), be.zeros(t), be.zeros(t));
    be.layernorm_forward(
        B::all_mut(&mut y),
        B::all_mut(&mut mean),
        B::all_mut(&mut rstd),
        B::all(x),
        params.get(&format!("{name}.weight")),
        params.get(&format!("{name}.bias")),
        c,
        eps,
    );
    (y, (mean, rstd))
}

/// Accumulates dx and the LayerNorm's gradients.
#[allow(clippy::too_many_arguments)]
pub(super) fn ln_backward<B: Backend>(
    be: &B,
    dx: &mut B::Buf,
    dy: &B::Buf,
    x: &B::Buf,
    stats: &(B::Buf, B::Buf),
    params: &Params<B>,
    grads: &mut Params<B>,
    name: &str,
    c: usize,
) {
    let (dw, db) = grads.weight_and_bias_mut(name);
    be.layernorm_backward(
        B::all_mut(dx),
        dw,
        db,
        B::all(dy),
        B::all(x),
        params.get(&format!("{name}.weight")),
        B::all(&stats.0),
        B::all(&stats.1),
        c,
    );
}

/// `y = x · Wᵀ + b` with the tensors `{name}.weight`/`.bias`; returns y (T × O).
pub(super) fn lin_forward<B: Backend>(
    be: &B,
    x: &B::Buf,
    params: &Params<B>,
    name: &str,
    i: usize,
    o: usize,
) -> B::Buf {
    let t = B::len(x) / i;
    let mut y = be.zeros(t * o);
    be.linear_forward(
        B::all_mut(&mut y),
        B::all(x),
        params.get(&format!("{name}.weight")),
        params.get(&format!("{name}.bias")),
        t,
        i,
        o,
    );
    y
}

/// Accumulates dx and the layer's weight and bias gradients.
#[allow(clippy::too_many_arguments)]
pub(super) fn lin_backward<B: Backend>(
    be: &B,
    dx: &mut B::Buf,
    dy: &B::Buf,
    x: &B::Buf,
    params: &Params<B>,
    grads: &mut Params<B>,
    name: &str,
    i: usize,
    o: usize,
) {
    let t = B::len(x) / i;
    let (dw, db) = grads.weight_and_bias_mut(name);
    be.linear_backward(
        B::all_mut(dx),
        dw,
        db,
        B::all(dy),
        B::all(x),
        params.get(&format!("{name}.weight")),
        t,
        i,
        o,
    );
}

/// Dropout in place at one site; returns the mask (empty when dropout is off).
pub(super) fn drop_forward<B: Backend>(
    be: &B,
    x: &mut B::Buf,
    dropout: &Dropout,
    site: u64,
) -> B::Buf {
    if !dropout.on() {
        return be.zeros(0);
    }
    let mut mask = be.zeros(B::len(x));
    let (p, seed) = dropout.site(site);
    be.dropout_forward(B::all_mut(x), B::all_mut(&mut mask), p, seed);
    mask
}

/// The backward of [`drop_forward`], in place on the gradient.
pub(super) fn drop_backward<B: Backend>(be: &B, d: &mut B::Buf, mask: &B::Buf) {
    if B::len(mask) > 0 {
        be.dropout_backward(B::all_mut(d), B::all(mask));
    }
}

fn attention_shape(config: &BertConfig, tokens: &Tokens) -> crate::train::backend::Shape {
    crate::train::backend::Shape {
        batch: tokens.batch,
        seq: tokens.seq,
        heads: config.num_attention_heads,
        head_dim: config.head_dim(),
    }
}

/// Dropout sites: 0 the embeddings, then four per layer; heads use sites from `HEAD_SITES`.
fn site(layer: usize, k: u64) -> u64 {
    1 + 4 * layer as u64 + k
}
pub(super) const HEAD_SITES: u64 = 1 << 32;

pub fn forward<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    tokens: &Tokens,
    dropout: &Dropout,
) -> Activations<B> {
    let (h, im) = (config.hidden_size, config.intermediate_size);
    let t = tokens.batch * tokens.seq;
    let eps = config.layer_norm_eps as f32;
    let sh = attention_shape(config, tokens);

    let mut emb = be.zeros(t * h);
    be.embedding_forward(
        B::all_mut(&mut emb),
        &tokens.ids,
        params.get(embeddings::WORD),
        params.get(embeddings::POSITION),
        params.get(embeddings::TOKEN_TYPE),
        tokens.seq,
        h,
    );
    let (mut x, emb_ln) = ln_forward(be, &emb, params, embeddings::LAYER_NORM, h, eps);
    let emb_drop = drop_forward(be, &mut x, dropout, 0);

    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let n = layout::layer(l);
        let q = lin_forward(be, &x, params, &n.query, h, h);
        let k = lin_forward(be, &x, params, &n.key, h, h);
        let v = lin_forward(be, &x, params, &n.value, h, h);
        let mut probs = be.zeros(be.attention_saved_len(&sh, dropout.on()));
        let mut probs_drop = be.zeros(if dropout.on() { sh.probs_len() } else { 0 });
        let mut ctx = be.zeros(t * h);
        be.attention_forward(
            B::all_mut(&mut ctx),
            B::all_mut(&mut probs),
            B::all_mut(&mut probs_drop),
            B::all(&q),
            B::all(&k),
            B::all(&v),
            &tokens.mask,
            &sh,
            if dropout.on() {
                dropout.site(site(l, 0))
            } else {
                (0.0, 0)
            },
        );
        let mut res1 = lin_forward(be, &ctx, params, &n.attention_output, h, h);
        let attn_drop = drop_forward(be, &mut res1, dropout, site(l, 1));
        be.add_scaled(B::all_mut(&mut res1), B::all(&x), 1.0);
        let (x1, ln1) = ln_forward(be, &res1, params, &n.attention_layer_norm, h, eps);
        let inter = lin_forward(be, &x1, params, &n.intermediate, h, im);
        let mut act = be.zeros(t * im);
        be.gelu_forward(B::all_mut(&mut act), B::all(&inter));
        let mut res2 = lin_forward(be, &act, params, &n.output, im, h);
        let out_drop = drop_forward(be, &mut res2, dropout, site(l, 2));
        be.add_scaled(B::all_mut(&mut res2), B::all(&x1), 1.0);
        let (x2, ln2) = ln_forward(be, &res2, params, &n.output_layer_norm, h, eps);
        let input = std::mem::replace(&mut x, x2);
        layers.push(LayerActs {
            input,
            q,
            k,
            v,
            probs,
            probs_drop,
            ctx,
            attn_drop,
            res1,
            ln1,
            x1,
            inter,
            act,
            out_drop,
            res2,
            ln2,
        });
    }
    Activations {
        emb,
        emb_ln,
        emb_drop,
        layers,
        hidden: x,
    }
}

/// Accumulates every encoder gradient, given d(hidden).
pub fn backward<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    grads: &mut Params<B>,
    tokens: &Tokens,
    acts: &Activations<B>,
    dhidden: B::Buf,
) {
    let (h, im) = (config.hidden_size, config.intermediate_size);
    let t = tokens.batch * tokens.seq;
    let sh = attention_shape(config, tokens);
    let mut dx = dhidden;
    for (l, a) in acts.layers.iter().enumerate().rev() {
        let n = layout::layer(l);
        let mut dres2 = be.zeros(t * h);
        let ln = &n.output_layer_norm;
        ln_backward(be, &mut dres2, &dx, &a.res2, &a.ln2, params, grads, ln, h);
        let mut dx1 = dres2.clone(); // the residual branch
        drop_backward(be, &mut dres2, &a.out_drop);
        let mut dact = be.zeros(t * im);
        let name = &n.output;
        lin_backward(be, &mut dact, &dres2, &a.act, params, grads, name, im, h);
        let mut dinter = be.zeros(t * im);
        be.gelu_backward(B::all_mut(&mut dinter), B::all(&dact), B::all(&a.inter));
        let name = &n.intermediate;
        lin_backward(be, &mut dx1, &dinter, &a.x1, params, grads, name, h, im);
        let mut dres1 = be.zeros(t * h);
        let ln = &n.attention_layer_norm;
        ln_backward(be, &mut dres1, &dx1, &a.res1, &a.ln1, params, grads, ln, h);
        let mut din = dres1.clone(); // the residual branch
        drop_backward(be, &mut dres1, &a.attn_drop);
        let mut dctx = be.zeros(t * h);
        let name = &n.attention_output;
        lin_backward(be, &mut dctx, &dres1, &a.ctx, params, grads, name, h, h);
        let (mut dq, mut dk, mut dv) = (be.zeros(t * h), be.zeros(t * h), be.zeros(t * h));
        be.attention_backward(
            B::all_mut(&mut dq),
            B::all_mut(&mut dk),
            B::all_mut(&mut dv),
            B::all(&dctx),
            B::all(&a.q),
            B::all(&a.k),
            B::all(&a.v),
            B::all(&a.probs),
            B::all(&a.probs_drop),
            &sh,
        );
        for (d, name) in [(&dq, &n.query), (&dk, &n.key), (&dv, &n.value)] {
            lin_backward(be, &mut din, d, &a.input, params, grads, name, h, h);
        }
        dx = din;
    }
    drop_backward(be, &mut dx, &acts.emb_drop);
    let mut demb = be.zeros(t * h);
    let ln = embeddings::LAYER_NORM;
    ln_backward(
        be,
        &mut demb,
        &dx,
        &acts.emb,
        &acts.emb_ln,
        params,
        grads,
        ln,
        h,
    );
    let [dword, dpos, dtype] = grads.array_mut([
        embeddings::WORD,
        embeddings::POSITION,
        embeddings::TOKEN_TYPE,
    ]);
    be.embedding_backward(
        dword,
        dpos,
        dtype,
        B::all(&demb),
        &tokens.ids,
        tokens.seq,
        h,
    );
}
