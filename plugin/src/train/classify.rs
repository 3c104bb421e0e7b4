//! DNABERT's sequence-classification head, as `BertForSequenceClassification`: the `[CLS]`
//! hidden state → pooler (dense + tanh) → classifier (dense), softmax cross-entropy.

use super::encoder::{self, lin_backward, lin_forward, Tokens};
use super::ops::cross_entropy;
use super::params::Params;
use crate::config::BertConfig;

pub struct ClassBatch {
    pub tokens: Tokens,
    /// One class per row.
    pub labels: Vec<i64>,
}

/// The `[CLS]` rows (position 0 of each sequence) of a T × C tensor.
fn cls_rows(x: &[f32], batch: usize, seq: usize, c: usize) -> Vec<f32> {
    (0..batch)
        .flat_map(|b| x[b * seq * c..][..c].iter().copied())
        .collect()
}

/// Class logits (B × n) and what the backward pass needs.
pub struct Forward {
    pub logits: Vec<f32>,
    acts: encoder::Activations,
    cls: Vec<f32>,
    pooled: Vec<f32>,
}

pub fn forward(config: &BertConfig, params: &Params, tokens: &Tokens, n_labels: usize) -> Forward {
    let h = config.hidden_size;
    let acts = encoder::forward(config, params, tokens);
    let cls = cls_rows(&acts.hidden, tokens.batch, tokens.seq, h);
    let mut pooled = lin_forward(&cls, params, "bert.pooler.dense", h, h);
    pooled.iter_mut().for_each(|x| *x = x.tanh());
    let logits = lin_forward(&pooled, params, "classifier", h, n_labels);
    Forward {
        logits,
        acts,
        cls,
        pooled,
    }
}

/// The mean cross-entropy of a batch, with every gradient accumulated into `grads` (layout from
/// [`Params::bert_classifier`]).
pub fn loss_and_grads(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    b: &ClassBatch,
    n_labels: usize,
) -> f32 {
    loss_and_grads_of(config, params, grads, b, n_labels, true)
}

/// As [`loss_and_grads`]; with `train_encoder` false the backward pass stops at the pooler
/// (a frozen encoder), leaving the encoder's gradients untouched.
pub fn loss_and_grads_of(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    b: &ClassBatch,
    n_labels: usize,
    train_encoder: bool,
) -> f32 {
    let h = config.hidden_size;
    let (batch, seq) = (b.tokens.batch, b.tokens.seq);
    let f = forward(config, params, &b.tokens, n_labels);
    let mut dlogits = vec![0f32; batch * n_labels];
    let loss = cross_entropy::forward_backward(&mut dlogits, &f.logits, &b.labels, n_labels);
    let mut dpooled = vec![0f32; batch * h];
    lin_backward(
        &mut dpooled,
        &dlogits,
        &f.pooled,
        params,
        grads,
        "classifier",
        h,
        n_labels,
    );
    dpooled
        .iter_mut()
        .zip(&f.pooled)
        .for_each(|(d, y)| *d *= 1.0 - y * y);
    let mut dcls = vec![0f32; batch * h];
    lin_backward(
        &mut dcls,
        &dpooled,
        &f.cls,
        params,
        grads,
        "bert.pooler.dense",
        h,
        h,
    );
    if !train_encoder {
        return loss;
    }
    let mut dhidden = vec![0f32; batch * seq * h];
    for (bi, d) in dcls.chunks_exact(h).enumerate() {
        dhidden[bi * seq * h..][..h].copy_from_slice(d);
    }
    encoder::backward(config, params, grads, &b.tokens, &f.acts, dhidden);
    loss
}

/// [`loss_and_grads_of`] with the batch's rows split across `threads`; each part's mean loss is
/// weighted by its share of the rows.
pub fn loss_and_grads_threaded(
    config: &BertConfig,
    params: &Params,
    grads: &mut Params,
    b: ClassBatch,
    n_labels: usize,
    train_encoder: bool,
    threads: usize,
) -> f32 {
    let parts: Vec<ClassBatch> = b
        .tokens
        .split_rows(threads)
        .into_iter()
        .map(|(row, tokens)| {
            let labels = b.labels[row..row + tokens.batch].to_vec();
            ClassBatch { tokens, labels }
        })
        .collect();
    let weights: Vec<f32> = parts
        .iter()
        .map(|p| p.tokens.batch as f32 / b.tokens.batch as f32)
        .collect();
    super::parallel_loss_and_grads(params, grads, &parts, &weights, |part, g| {
        loss_and_grads_of(config, params, g, part, n_labels, train_encoder)
    })
}
