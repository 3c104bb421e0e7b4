//! The masked-language-model head of `BertForMaskedLM`: dense → GELU → LayerNorm → decoder tied
//! to the word embeddings, and the loss over the labelled positions.

use super::encoder::{self, lin_backward, lin_forward, ln_backward, ln_forward, Tokens};
use super::ops::{cross_entropy, gelu, linear};
use super::params::Params;
use crate::config::BertConfig;

/// MLM labels per token: the original id where a prediction is asked, -1 elsewhere.
pub struct MlmBatch {
    pub tokens: Tokens,
    pub labels: Vec<i64>,
}

/// The head's activations for a batch: logits (T × V) and what the backward pass needs.
struct Head {
    hd: Vec<f32>,
    hg: Vec<f32>,
    ht: Vec<f32>,
    ln: (Vec<f32>, Vec<f32>),
    logits: Vec<f32>,
}

fn head_forward(config: &BertConfig, params: &Params, x: &[f32]) -> Head {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let t = x.len() / h;
    let hd = lin_forward(x, params, "cls.predictions.transform.dense", h, h);
    let mut hg = vec![0f32; t * h];
    gelu::forward(&mut hg, &hd);
    let mut ht = vec![0f32; t * h];
    let ln = ln_forward(
        &mut ht,
        &hg,
        params,
        "cls.predictions.transform.LayerNorm",
        h,
        config.layer_norm_eps as f32,
    );
    let word = params.get("bert.embeddings.word_embeddings.weight");
    let mut logits = vec![0f32; t * v];
    linear::forward(
        &mut logits,
        &ht,
        word,
        params.get("cls.predictions.bias"),
        t,
        h,
        v,
    );
    Head {
        hd,
        hg,
        ht,
        ln,
        logits,
    }
}

/// Loss, number of labelled tokens, and how many of them the model predicts right.
pub fn evaluate(config: &BertConfig, params: &Params, b: &MlmBatch) -> (f32, usize, usize) {
    let v = config.vocab_size;
    let acts = encoder::forward(config, params, &b.tokens);
    let head = head_forward(config, params, &acts.hidden);
    let mut scratch = vec![0f32; head.logits.len()];
    let loss = cross_entropy::forward_backward(&mut scratch, &head.logits, &b.labels, v);
    let (mut n, mut right) = (0, 0);
    for (row, &label) in head.logits.chunks_exact(v).zip(&b.labels) {
        if label >= 0 {
            n += 1;
            right += usize::from(super::argmax(row) as i64 == label);
        }
    }
    (loss, n, right)
}

/// The masked-LM loss of a batch, with every parameter's gradient accumulated into `grads`
/// (same layout as `params`, from [`Params::bert_mlm`]).
pub fn loss_and_grads(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    b: &MlmBatch,
) -> f32 {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let t = b.tokens.batch * b.tokens.seq;
    let acts = encoder::forward(config, params, &b.tokens);
    let x = &acts.hidden;
    let Head {
        hd,
        hg,
        ht,
        ln,
        logits,
    } = head_forward(config, params, x);
    let word = params.get("bert.embeddings.word_embeddings.weight");
    let mut dlogits = vec![0f32; t * v];
    let loss = cross_entropy::forward_backward(&mut dlogits, &logits, &b.labels, v);
    drop(logits);

    let mut dht = vec![0f32; t * h];
    {
        // The decoder's weight is the word embedding table; its bias is cls.predictions.bias.
        let rw = grads.range("bert.embeddings.word_embeddings.weight");
        let rb = grads.range("cls.predictions.bias");
        assert!(rw.end <= rb.start);
        let (lo, hi) = grads.data.split_at_mut(rb.start);
        linear::backward(
            &mut dht,
            &mut lo[rw],
            &mut hi[..rb.len()],
            &dlogits,
            &ht,
            word,
            t,
            h,
            v,
        );
    }
    let mut dhg = vec![0f32; t * h];
    ln_backward(
        &mut dhg,
        &dht,
        &hg,
        &ln,
        params,
        grads,
        "cls.predictions.transform.LayerNorm",
        h,
    );
    let mut dhd = vec![0f32; t * h];
    gelu::backward(&mut dhd, &dhg, &hd);
    let mut dx = vec![0f32; t * h];
    lin_backward(
        &mut dx,
        &dhd,
        x,
        params,
        grads,
        "cls.predictions.transform.dense",
        h,
        h,
    );
    encoder::backward(config, params, grads, &b.tokens, &acts, dx);
    loss
}
