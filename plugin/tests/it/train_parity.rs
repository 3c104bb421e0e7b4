//! The training engine against PyTorch (fixture from tests/make_train_fixtures.py): the masked-LM
//! loss, every parameter's gradient, and every parameter after one AdamW step, for a batch with
//! padding and masking.
//!
//! Tolerance: for each tensor, max |ours − PyTorch| ≤ 1e-4 × max |PyTorch| plus 1e-7, that is
//! relative to the tensor's scale, with a floor at float noise for tensors whose exact gradient
//! is zero (the key bias, whose shift softmax cancels: PyTorch itself gives ~1e-8 there).

use dnabert::cuda::selftest::step::{self, Fixture};
use dnabert::cuda::selftest::Report;
use dnabert::train::backend::Dropout;
use dnabert::train::classify::{self, ClassBatch, Head};
use dnabert::train::cpu::Cpu;
use dnabert::train::encoder::Tokens;
use dnabert::train::params::Params;

const REL: f32 = 1e-4;
const ABS: f32 = 1e-7;

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) -> f32 {
    crate::common::assert_close(REL, ABS, what, ours, theirs)
}

fn assert_all_pass(r: &Report) {
    for line in &r.lines {
        eprintln!("{line}");
    }
    assert!(r.failures().is_empty(), "{}", r.summary());
    assert_eq!(r.lines.len(), 3, "loss, gradients, update");
}

/// The loss, every gradient (the worst tensor named) and every parameter after AdamW: the
/// same check `cuda-check --run` runs on a GPU (`dnabert::cuda::selftest::step`).
#[test]
fn mlm_loss_gradients_and_adamw_step_match_pytorch() {
    let fx = Fixture::train_k3();
    assert!(
        fx.mlm_batch().tokens.mask.contains(&0.0),
        "the batch must exercise padding"
    );
    let mut r = Report::new(false);
    step::run(&mut r, &Cpu::new(1), "cpu", REL);
    assert_all_pass(&r);
}

/// The classification fixture's batch (the MLM batch's ids before masking, 3 classes).
fn class_batch(fx: &Fixture) -> ClassBatch {
    let (batch, seq) = (fx.shape("classify/ids")[0], fx.shape("classify/ids")[1]);
    ClassBatch {
        tokens: Tokens {
            batch,
            seq,
            ids: fx
                .i64s("classify/ids")
                .into_iter()
                .map(|i| i as u32)
                .collect(),
            mask: fx.i64s("mask").into_iter().map(|m| m as f32).collect(),
        },
        labels: fx.i64s("classify/labels"),
    }
}

fn classifier_matches_pytorch(prefix: &str, head: Head) {
    let fx = Fixture::train_k3();
    let config = Fixture::config();
    let params = fx
        .params(Params::bert_classifier(&config, 3, head), prefix)
        .unwrap();
    let b = class_batch(&fx);
    let be = Cpu::new(1);
    let mut grads = params.zeros_like(&be);
    let loss = classify::loss_and_grads(
        &be,
        &config,
        &params,
        &mut grads,
        &b,
        3,
        head,
        true,
        &Dropout::OFF,
    );
    let expected = fx.f32s(&format!("{prefix}loss"))[0];
    assert!(
        (loss - expected).abs() <= REL * expected.abs(),
        "loss {loss} vs PyTorch {expected}"
    );
    for (name, _) in &params.names {
        assert_close(
            &format!("grad {name}"),
            grads.get(name),
            &fx.f32s(&format!("{prefix}grad/{name}")),
        );
    }
}

#[test]
fn classification_loss_and_gradients_match_pytorch() {
    classifier_matches_pytorch("classify/", Head::Cls);
}

/// BioNeMo's splice-site head: the centre token's hidden state → dense + ReLU → dense. The
/// padded row's centre is taken among its real tokens only.
#[test]
fn centre_token_head_matches_pytorch() {
    classifier_matches_pytorch("centre/", Head::Centre { hidden: 8 });
}

/// With dropout on, the masks are a function of the seed, so the loss is a deterministic
/// function of the weights and its gradient can be checked against central differences (in
/// f32: a step of 1e-2 on weights of scale ~0.2, tolerance 3% of the largest gradient entry).
#[test]
fn gradients_with_dropout_match_finite_differences() {
    let fx = Fixture::train_k3();
    let config = Fixture::config();
    let head = Head::Cls;
    let mut params = fx
        .params(Params::bert_classifier(&config, 3, head), "classify/")
        .unwrap();
    let b = class_batch(&fx);
    let be = Cpu::new(1);
    let dropout = Dropout { p: 0.2, seed: 7 };
    let loss_at = |params: &Params, d: &Dropout| {
        let mut g = params.zeros_like(&be);
        classify::loss_and_grads(&be, &config, params, &mut g, &b, 3, head, true, d)
    };
    let mut grads = params.zeros_like(&be);
    let loss = classify::loss_and_grads(
        &be, &config, &params, &mut grads, &b, 3, head, true, &dropout,
    );
    assert_eq!(loss, loss_at(&params, &dropout), "same seed, same masks");
    assert_ne!(
        loss,
        loss_at(&params, &Dropout::OFF),
        "dropout changes the loss"
    );
    assert_ne!(loss, loss_at(&params, &Dropout { p: 0.2, seed: 8 }));
    let eps = 1e-2f32;
    for name in [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.attention.self.value.weight",
        "bert.encoder.layer.0.attention.output.dense.weight",
        "bert.encoder.layer.1.intermediate.dense.weight",
        "bert.encoder.layer.1.output.dense.bias",
        "bert.pooler.dense.weight",
        "classifier.weight",
    ] {
        let g = grads.get(name).to_vec();
        let scale = g.iter().fold(0f32, |m, v| m.max(v.abs()));
        // The three largest entries of each tensor.
        let mut idx: Vec<usize> = (0..g.len()).collect();
        idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        for &i in &idx[..3] {
            let r = params.range(name).start + i;
            let orig = params.data[r];
            params.data[r] = orig + eps;
            let up = loss_at(&params, &dropout);
            params.data[r] = orig - eps;
            let down = loss_at(&params, &dropout);
            params.data[r] = orig;
            let fd = (up - down) / (2.0 * eps);
            assert!(
                (fd - g[i]).abs() <= 0.03 * scale,
                "{name}[{i}]: analytic {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

// On a GPU, the same step runs in `gpu_parity.rs` (`cuda-check --run`'s checks), with fp32
// products, bf16 products (1e-2) and fused attention.
