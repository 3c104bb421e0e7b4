//! The masked-language-model head of `BertForMaskedLM`: dense → GELU → LayerNorm → decoder tied
//! to the word embeddings, and the loss over the labelled positions.

use super::backend::{Backend, Dropout};
use super::encoder::{self, lin_backward, lin_forward, ln_backward, ln_forward, Tokens};
use super::params::Params;
use crate::config::BertConfig;
use crate::layout::{embeddings, mlm};

/// MLM labels per token: the original id where a prediction is asked, -1 elsewhere.
#[derive(Debug, Clone)]
pub struct MlmBatch {
    pub tokens: Tokens,
    pub labels: Vec<i64>,
}

/// The head's activations for a batch: logits (T × V) and what the backward pass needs.
struct Head<B: Backend> {
    hd: B::Buf,
    hg: B::Buf,
    ht: B::Buf,
    ln: (B::Buf, B::Buf),
    logits: B::Buf,
}

fn head_forward<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    x: &B::Buf,
) -> Head<B> {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let t = B::len(x) / h;
    let hd = lin_forward(be, x, params, mlm::TRANSFORM, h, h);
    let mut hg = be.zeros(t * h);
    be.gelu_forward(B::all_mut(&mut hg), B::all(&hd));
    let eps = config.layer_norm_eps as f32;
    let (ht, ln) = ln_forward(be, &hg, params, mlm::TRANSFORM_LAYER_NORM, h, eps);
    let mut logits = be.zeros(t * v);
    be.linear_forward(
        B::all_mut(&mut logits),
        B::all(&ht),
        params.get(embeddings::WORD),
        params.get(mlm::BIAS),
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
pub fn evaluate<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    b: &MlmBatch,
) -> (f32, usize, usize) {
    let v = config.vocab_size;
    let acts = encoder::forward(be, config, params, &b.tokens, &Dropout::OFF);
    let head = head_forward(be, config, params, &acts.hidden);
    let mut scratch = be.zeros(B::len(&head.logits));
    let loss = be.cross_entropy(B::all_mut(&mut scratch), B::all(&head.logits), &b.labels, v);
    let logits = be.download(&head.logits);
    let (mut n, mut right) = (0, 0);
    for (row, &label) in logits.chunks_exact(v).zip(&b.labels) {
        if label >= 0 {
            n += 1;
            right += usize::from(super::argmax(row) as i64 == label);
        }
    }
    (loss, n, right)
}

/// The masked-LM loss of a batch, with every parameter's gradient accumulated into `grads`
/// (same layout as `params`, from [`Params::bert_mlm`]).
pub fn loss_and_grads<B: Backend>(
    be: &B,
    config: &BertConfig,
    params: &Params<B>,
    grads: &mut Params<B>,
    b: &MlmBatch,
    dropout: &Dropout,
) -> f32 {
    let (h, v) = (config.hidden_size, config.vocab_size);
    let t = b.tokens.batch * b.tokens.seq;
    let acts = encoder::forward(be, config, params, &b.tokens, dropout);
    let x = &acts.hidden;
    let Head {
        hd,
        hg,
        ht,
        ln,
        logits,
    } = head_forward(be, config, params, x);
    let mut dlogits = be.zeros(t * v);
    let loss = be.cross_entropy(B::all_mut(&mut dlogits), B::all(&logits), &b.labels, v);
    drop(logits);

    let mut dht = be.zeros(t * h);
    {
        // The decoder's weight is the word embedding table; its bias is cls.predictions.bias.
        let (dw, db) = grads.two_mut(embeddings::WORD, mlm::BIAS);
        be.linear_backward(
            B::all_mut(&mut dht),
            dw,
            db,
            B::all(&dlogits),
            B::all(&ht),
            params.get(embeddings::WORD),
            t,
            h,
            v,
        );
    }
    let mut dhg = be.zeros(t * h);
    let name = mlm::TRANSFORM_LAYER_NORM;
    ln_backward(be, &mut dhg, &dht, &hg, &ln, params, grads, name, h);
    let mut dhd = be.zeros(t * h);
    be.gelu_backward(B::all_mut(&mut dhd), B::all(&dhg), B::all(&hd));
    let mut dx = be.zeros(t * h);
    let name = mlm::TRANSFORM;
    lin_backward(be, &mut dx, &dhd, x, params, grads, name, h, h);
    encoder::backward(be, config, params, grads, &b.tokens, &acts, dx);
    loss
}
