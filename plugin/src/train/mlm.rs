//! BERT with its masked-language-model head, forward and backward written out by hand over the
//! kernels in `ops` (no autograd: the architecture is fixed).
//!
//! Parameters live in one flat buffer, each under its Hugging Face `BertForMaskedLM` name, so
//! gradients and optimizer moments share one layout and checkpoints are a walk over names. The
//! decoder weight is tied to the word embeddings, as in the checkpoints DNABERT ships.

use std::collections::HashMap;
use std::ops::Range;

use super::ops::{attention, cross_entropy, embedding, gelu, layernorm, linear};
use crate::config::BertConfig;

/// Named tensors in one flat buffer.
#[derive(Debug, Clone)]
pub struct Params {
    pub data: Vec<f32>,
    pub names: Vec<(String, Vec<usize>)>,
    ranges: HashMap<String, Range<usize>>,
}

impl Params {
    /// Zeros in the layout of `BertForMaskedLM` for `config`.
    pub fn zeros(config: &BertConfig) -> Self {
        let (h, i, v) = (
            config.hidden_size,
            config.intermediate_size,
            config.vocab_size,
        );
        let mut names: Vec<(String, Vec<usize>)> = vec![
            ("bert.embeddings.word_embeddings.weight".into(), vec![v, h]),
            (
                "bert.embeddings.position_embeddings.weight".into(),
                vec![config.max_position_embeddings, h],
            ),
            (
                "bert.embeddings.token_type_embeddings.weight".into(),
                vec![config.type_vocab_size, h],
            ),
            ("bert.embeddings.LayerNorm.weight".into(), vec![h]),
            ("bert.embeddings.LayerNorm.bias".into(), vec![h]),
        ];
        for l in 0..config.num_hidden_layers {
            let p = format!("bert.encoder.layer.{l}");
            for (n, shape) in [
                ("attention.self.query", vec![h, h]),
                ("attention.self.key", vec![h, h]),
                ("attention.self.value", vec![h, h]),
                ("attention.output.dense", vec![h, h]),
                ("attention.output.LayerNorm", vec![h]),
                ("intermediate.dense", vec![i, h]),
                ("output.dense", vec![h, i]),
                ("output.LayerNorm", vec![h]),
            ] {
                let out = shape[0];
                names.push((format!("{p}.{n}.weight"), shape));
                names.push((format!("{p}.{n}.bias"), vec![out]));
            }
        }
        names.push(("cls.predictions.transform.dense.weight".into(), vec![h, h]));
        names.push(("cls.predictions.transform.dense.bias".into(), vec![h]));
        names.push(("cls.predictions.transform.LayerNorm.weight".into(), vec![h]));
        names.push(("cls.predictions.transform.LayerNorm.bias".into(), vec![h]));
        names.push(("cls.predictions.bias".into(), vec![v]));
        let mut ranges = HashMap::new();
        let mut at = 0;
        for (n, shape) in &names {
            let len: usize = shape.iter().product();
            ranges.insert(n.clone(), at..at + len);
            at += len;
        }
        Self {
            data: vec![0.0; at],
            names,
            ranges,
        }
    }

    pub fn range(&self, name: &str) -> Range<usize> {
        self.ranges
            .get(name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .clone()
    }

    pub fn get(&self, name: &str) -> &[f32] {
        &self.data[self.range(name)]
    }

    pub fn get_mut(&mut self, name: &str) -> &mut [f32] {
        let r = self.range(name);
        &mut self.data[r]
    }

    /// Whether AdamW decays this tensor: not biases nor LayerNorm parameters (BERT's rule).
    pub fn decays(name: &str) -> bool {
        !(name.ends_with(".bias") || name.contains("LayerNorm"))
    }
}

/// A training batch: B rows of S token ids, a 0/1 attention mask, and MLM labels (-1 where
/// no prediction is asked).
pub struct MlmBatch {
    pub batch: usize,
    pub seq: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<f32>,
    pub labels: Vec<i64>,
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
    ln1_mean: Vec<f32>,
    ln1_rstd: Vec<f32>,
    x1: Vec<f32>,
    inter: Vec<f32>,
    act: Vec<f32>,
    res2: Vec<f32>,
    ln2_mean: Vec<f32>,
    ln2_rstd: Vec<f32>,
}

/// The masked-LM loss of a batch, with every parameter's gradient accumulated into `grads`
/// (same layout as `params`).
pub fn loss_and_grads(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    b: &MlmBatch,
) -> f32 {
    let (h, im, v) = (
        config.hidden_size,
        config.intermediate_size,
        config.vocab_size,
    );
    let t = b.batch * b.seq;
    let eps = config.layer_norm_eps as f32;
    let sh = attention::Shape {
        batch: b.batch,
        seq: b.seq,
        heads: config.num_attention_heads,
        head_dim: config.head_dim(),
    };
    let p = |n: &str| params.get(n);

    // Embeddings.
    let mut emb = vec![0f32; t * h];
    embedding::forward(
        &mut emb,
        &b.ids,
        p("bert.embeddings.word_embeddings.weight"),
        p("bert.embeddings.position_embeddings.weight"),
        &p("bert.embeddings.token_type_embeddings.weight")[..h],
        b.seq,
        h,
    );
    let (mut emb_mean, mut emb_rstd) = (vec![0f32; t], vec![0f32; t]);
    let mut x = vec![0f32; t * h];
    layernorm::forward(
        &mut x,
        &mut emb_mean,
        &mut emb_rstd,
        &emb,
        p("bert.embeddings.LayerNorm.weight"),
        p("bert.embeddings.LayerNorm.bias"),
        h,
        eps,
    );

    // Encoder.
    let mut acts: Vec<LayerActs> = Vec::with_capacity(config.num_hidden_layers);
    for l in 0..config.num_hidden_layers {
        let n = |s: &str| format!("bert.encoder.layer.{l}.{s}");
        let lin = |y: &mut Vec<f32>, x: &[f32], name: &str, i: usize, o: usize| {
            y.resize(t * o, 0.0);
            linear::forward(
                y,
                x,
                p(&n(&format!("{name}.weight"))),
                p(&n(&format!("{name}.bias"))),
                t,
                i,
                o,
            );
        };
        let (mut q, mut k, mut vv) = (vec![], vec![], vec![]);
        lin(&mut q, &x, "attention.self.query", h, h);
        lin(&mut k, &x, "attention.self.key", h, h);
        lin(&mut vv, &x, "attention.self.value", h, h);
        let mut probs = vec![0f32; sh.probs_len()];
        let mut ctx = vec![0f32; t * h];
        attention::forward(&mut ctx, &mut probs, &q, &k, &vv, &b.mask, &sh);
        let mut res1 = vec![];
        lin(&mut res1, &ctx, "attention.output.dense", h, h);
        res1.iter_mut().zip(&x).for_each(|(r, x)| *r += x);
        let (mut ln1_mean, mut ln1_rstd, mut x1) =
            (vec![0f32; t], vec![0f32; t], vec![0f32; t * h]);
        layernorm::forward(
            &mut x1,
            &mut ln1_mean,
            &mut ln1_rstd,
            &res1,
            p(&n("attention.output.LayerNorm.weight")),
            p(&n("attention.output.LayerNorm.bias")),
            h,
            eps,
        );
        let mut inter = vec![];
        lin(&mut inter, &x1, "intermediate.dense", h, im);
        let mut act = vec![0f32; t * im];
        gelu::forward(&mut act, &inter);
        let mut res2 = vec![];
        lin(&mut res2, &act, "output.dense", im, h);
        res2.iter_mut().zip(&x1).for_each(|(r, x)| *r += x);
        let (mut ln2_mean, mut ln2_rstd, mut x2) =
            (vec![0f32; t], vec![0f32; t], vec![0f32; t * h]);
        layernorm::forward(
            &mut x2,
            &mut ln2_mean,
            &mut ln2_rstd,
            &res2,
            p(&n("output.LayerNorm.weight")),
            p(&n("output.LayerNorm.bias")),
            h,
            eps,
        );
        let input = std::mem::replace(&mut x, x2);
        acts.push(LayerActs {
            input,
            q,
            k,
            v: vv,
            probs,
            ctx,
            res1,
            ln1_mean,
            ln1_rstd,
            x1,
            inter,
            act,
            res2,
            ln2_mean,
            ln2_rstd,
        });
    }

    // MLM head: dense → GELU → LayerNorm → tied decoder.
    let mut hd = vec![0f32; t * h];
    linear::forward(
        &mut hd,
        &x,
        p("cls.predictions.transform.dense.weight"),
        p("cls.predictions.transform.dense.bias"),
        t,
        h,
        h,
    );
    let mut hg = vec![0f32; t * h];
    gelu::forward(&mut hg, &hd);
    let (mut hmean, mut hrstd, mut ht) = (vec![0f32; t], vec![0f32; t], vec![0f32; t * h]);
    layernorm::forward(
        &mut ht,
        &mut hmean,
        &mut hrstd,
        &hg,
        p("cls.predictions.transform.LayerNorm.weight"),
        p("cls.predictions.transform.LayerNorm.bias"),
        h,
        eps,
    );
    let mut logits = vec![0f32; t * v];
    let word = p("bert.embeddings.word_embeddings.weight");
    linear::forward(&mut logits, &ht, word, p("cls.predictions.bias"), t, h, v);
    let mut dlogits = vec![0f32; t * v];
    let loss = cross_entropy::forward_backward(&mut dlogits, &logits, &b.labels, v);
    drop(logits);

    // Backward, head first. Gradients of shared tensors accumulate.
    let g = |grads: &mut Params, name: &str| grads.range(name);
    let mut dht = vec![0f32; t * h];
    {
        let (rw, rb) = (
            g(grads, "bert.embeddings.word_embeddings.weight"),
            g(grads, "cls.predictions.bias"),
        );
        let (dw, db) = split2(&mut grads.data, rw, rb);
        linear::backward(&mut dht, dw, db, &dlogits, &ht, word, t, h, v);
    }
    let mut dhg = vec![0f32; t * h];
    {
        let (rw, rb) = (
            g(grads, "cls.predictions.transform.LayerNorm.weight"),
            g(grads, "cls.predictions.transform.LayerNorm.bias"),
        );
        let (dw, db) = split2(&mut grads.data, rw, rb);
        layernorm::backward(
            &mut dhg,
            dw,
            db,
            &dht,
            &hg,
            p("cls.predictions.transform.LayerNorm.weight"),
            &hmean,
            &hrstd,
            h,
        );
    }
    let mut dhd = vec![0f32; t * h];
    gelu::backward(&mut dhd, &dhg, &hd);
    let mut dx = vec![0f32; t * h];
    {
        let (rw, rb) = (
            g(grads, "cls.predictions.transform.dense.weight"),
            g(grads, "cls.predictions.transform.dense.bias"),
        );
        let (dw, db) = split2(&mut grads.data, rw, rb);
        linear::backward(
            &mut dx,
            dw,
            db,
            &dhd,
            &x,
            p("cls.predictions.transform.dense.weight"),
            t,
            h,
            h,
        );
    }

    for (l, a) in acts.iter().enumerate().rev() {
        let n = |s: &str| format!("bert.encoder.layer.{l}.{s}");
        let lin_back = |grads: &mut Params,
                        dx: &mut [f32],
                        dy: &[f32],
                        x: &[f32],
                        name: &str,
                        i: usize,
                        o: usize| {
            let (rw, rb) = (
                grads.range(&n(&format!("{name}.weight"))),
                grads.range(&n(&format!("{name}.bias"))),
            );
            let (dw, db) = split2(&mut grads.data, rw, rb);
            linear::backward(dx, dw, db, dy, x, p(&n(&format!("{name}.weight"))), t, i, o);
        };
        let ln_back = |grads: &mut Params,
                       dx: &mut [f32],
                       dy: &[f32],
                       x: &[f32],
                       name: &str,
                       mean: &[f32],
                       rstd: &[f32]| {
            let (rw, rb) = (
                grads.range(&n(&format!("{name}.weight"))),
                grads.range(&n(&format!("{name}.bias"))),
            );
            let (dw, db) = split2(&mut grads.data, rw, rb);
            layernorm::backward(
                dx,
                dw,
                db,
                dy,
                x,
                p(&n(&format!("{name}.weight"))),
                mean,
                rstd,
                h,
            );
        };
        // dx holds d(output of this layer).
        let mut dres2 = vec![0f32; t * h];
        ln_back(
            grads,
            &mut dres2,
            &dx,
            &a.res2,
            "output.LayerNorm",
            &a.ln2_mean,
            &a.ln2_rstd,
        );
        let mut dx1 = dres2.clone(); // residual
        let mut dact = vec![0f32; t * im];
        lin_back(grads, &mut dact, &dres2, &a.act, "output.dense", im, h);
        let mut dinter = vec![0f32; t * im];
        gelu::backward(&mut dinter, &dact, &a.inter);
        lin_back(grads, &mut dx1, &dinter, &a.x1, "intermediate.dense", h, im);
        let mut dres1 = vec![0f32; t * h];
        ln_back(
            grads,
            &mut dres1,
            &dx1,
            &a.res1,
            "attention.output.LayerNorm",
            &a.ln1_mean,
            &a.ln1_rstd,
        );
        let mut din = dres1.clone(); // residual
        let mut dctx = vec![0f32; t * h];
        lin_back(
            grads,
            &mut dctx,
            &dres1,
            &a.ctx,
            "attention.output.dense",
            h,
            h,
        );
        let (mut dq, mut dk, mut dv) = (vec![0f32; t * h], vec![0f32; t * h], vec![0f32; t * h]);
        let mut scratch = vec![0f32; b.seq * b.seq];
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
        lin_back(grads, &mut din, &dq, &a.input, "attention.self.query", h, h);
        lin_back(grads, &mut din, &dk, &a.input, "attention.self.key", h, h);
        lin_back(grads, &mut din, &dv, &a.input, "attention.self.value", h, h);
        dx = din;
    }

    // Embeddings.
    let mut demb = vec![0f32; t * h];
    {
        let (rw, rb) = (
            g(grads, "bert.embeddings.LayerNorm.weight"),
            g(grads, "bert.embeddings.LayerNorm.bias"),
        );
        let (dw, db) = split2(&mut grads.data, rw, rb);
        layernorm::backward(
            &mut demb,
            dw,
            db,
            &dx,
            &emb,
            p("bert.embeddings.LayerNorm.weight"),
            &emb_mean,
            &emb_rstd,
            h,
        );
    }
    let rw = g(grads, "bert.embeddings.word_embeddings.weight");
    let rp = g(grads, "bert.embeddings.position_embeddings.weight");
    let rt = g(grads, "bert.embeddings.token_type_embeddings.weight");
    let (dword, rest) = grads.data.split_at_mut(rp.start);
    let (dpos, dtype) = rest.split_at_mut(rt.start - rp.start);
    embedding::backward(
        &mut dword[rw],
        &mut dpos[..rp.len()],
        &mut dtype[..h],
        &demb,
        &b.ids,
        b.seq,
        h,
    );
    loss
}

/// Two disjoint mutable ranges of one buffer.
fn split2(data: &mut [f32], a: Range<usize>, b: Range<usize>) -> (&mut [f32], &mut [f32]) {
    assert!(a.end <= b.start || b.end <= a.start, "ranges overlap");
    if a.start < b.start {
        let (lo, hi) = data.split_at_mut(b.start);
        (&mut lo[a], &mut hi[..b.len()])
    } else {
        let (lo, hi) = data.split_at_mut(a.start);
        let bl = b.clone();
        (&mut hi[..a.len()], &mut lo[bl])
    }
}
