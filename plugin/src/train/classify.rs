//! Sequence-classification heads over the encoder, softmax cross-entropy on their logits:
//! - [`Head::Cls`], DNABERT's and `BertForSequenceClassification`'s: the `[CLS]` hidden state →
//!   pooler (dense + tanh) → dropout → classifier (dense);
//! - [`Head::Centre`], BioNeMo's splice-site head: the hidden state of the sequence's centre
//!   token → dense (`hidden` units) + ReLU → dropout → dense.

use super::backend::{Backend, Dropout};
use super::encoder::{self, drop_backward, drop_forward, lin_backward, lin_forward, Tokens};
use super::params::Params;
use crate::config::BertConfig;

pub use crate::layout::Head;

/// The row (of B·S) that feeds the head, per sequence: `[CLS]` at 0, or the centre token of the
/// real tokens, `(len − 1) / 2` as BioNeMo takes it.
pub fn rows(head: Head, tokens: &Tokens) -> Vec<usize> {
    (0..tokens.batch)
        .map(|b| {
            let at = match head {
                Head::Cls => 0,
                Head::Centre { .. } => {
                    let len = tokens.mask[b * tokens.seq..][..tokens.seq]
                        .iter()
                        .filter(|&&m| m > 0.0)
                        .count();
                    (len.max(1) - 1) / 2
                }
            };
            b * tokens.seq + at
        })
        .collect()
}
pub struct ClassBatch {
    pub tokens: Tokens,
    /// One class per row.
    pub labels: Vec<i64>,
}

/// Class logits (B × n) and what the backward pass needs.
pub struct Forward<B: Backend> {
    pub logits: B::Buf,
    acts: encoder::Activations<B>,
    rows: Vec<usize>,
    picked: B::Buf,
    /// The first layer's activated output, before dropout.
    z: B::Buf,
    dropped: B::Buf,
    drop_mask: B::Buf,
}

pub fn forward<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    tokens: &Tokens,
    n_labels: usize,
    head: Head,
    dropout: &Dropout,
) -> Forward<B> {
    let h = config.hidden_size;
    let width = head.width(config);
    let (first, second) = head.layers();
    let acts = encoder::forward(be, config, params, tokens, dropout);
    let rows = rows(head, tokens);
    let mut picked = be.zeros(tokens.batch * h);
    be.gather_rows(B::all_mut(&mut picked), B::all(&acts.hidden), &rows, h);
    let mut z = lin_forward(be, &picked, params, first, h, width);
    match head {
        Head::Cls => be.tanh_forward(B::all_mut(&mut z)),
        Head::Centre { .. } => be.relu_forward(B::all_mut(&mut z)),
    }
    let mut dropped = z.clone();
    let drop_mask = drop_forward(be, &mut dropped, dropout, encoder::HEAD_SITES);
    let logits = lin_forward(be, &dropped, params, second, width, n_labels);
    Forward {
        logits,
        acts,
        rows,
        picked,
        z,
        dropped,
        drop_mask,
    }
}

/// The mean cross-entropy of a batch, with every gradient accumulated into `grads` (layout from
/// [`Params::bert_classifier`] with the same head). With `train_encoder` false the backward
/// pass stops at the head (a frozen encoder), leaving the encoder's gradients untouched.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grads<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    grads: &mut Params<B>,
    b: &ClassBatch,
    n_labels: usize,
    head: Head,
    train_encoder: bool,
    dropout: &Dropout,
) -> f32 {
    let h = config.hidden_size;
    let width = head.width(config);
    let (first, second) = head.layers();
    let (batch, seq) = (b.tokens.batch, b.tokens.seq);
    let f = forward(be, config, params, &b.tokens, n_labels, head, dropout);
    let mut dlogits = be.zeros(batch * n_labels);
    let loss = be.cross_entropy(
        B::all_mut(&mut dlogits),
        B::all(&f.logits),
        &b.labels,
        n_labels,
    );
    let mut dz = be.zeros(batch * width);
    lin_backward(
        be, &mut dz, &dlogits, &f.dropped, params, grads, second, width, n_labels,
    );
    drop_backward(be, &mut dz, &f.drop_mask);
    match head {
        Head::Cls => be.tanh_backward(B::all_mut(&mut dz), B::all(&f.z)),
        Head::Centre { .. } => be.relu_backward(B::all_mut(&mut dz), B::all(&f.z)),
    }
    let mut dpicked = be.zeros(batch * h);
    lin_backward(
        be,
        &mut dpicked,
        &dz,
        &f.picked,
        params,
        grads,
        first,
        h,
        width,
    );
    if !train_encoder {
        return loss;
    }
    let mut dhidden = be.zeros(batch * seq * h);
    be.scatter_add_rows(B::all_mut(&mut dhidden), B::all(&dpicked), &f.rows, h);
    encoder::backward(be, config, params, grads, &b.tokens, &f.acts, dhidden);
    loss
}

/// [`loss_and_grads`] with the batch's rows split across the backend's replicas; each part's
/// mean loss is weighted by its share of the rows.
#[allow(clippy::too_many_arguments)]
pub fn loss_and_grads_split<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    grads: &mut Params<B>,
    b: ClassBatch,
    n_labels: usize,
    head: Head,
    train_encoder: bool,
    dropout: &Dropout,
) -> f32 {
    let parts: Vec<ClassBatch> = b
        .tokens
        .split_rows(be.replicas())
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
    super::parallel_loss_and_grads(be, params, grads, &parts, &weights, |be, i, part, g| {
        let d = dropout.part(i);
        loss_and_grads(
            be,
            config,
            params,
            g,
            part,
            n_labels,
            head,
            train_encoder,
            &d,
        )
    })
}
