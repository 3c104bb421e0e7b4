//! The training engine against PyTorch (fixture from tests/make_train_fixtures.py): the masked-LM
//! loss, every parameter's gradient, and every parameter after one AdamW step, for a batch with
//! padding and masking.
//!
//! Tolerance: for each tensor, max |ours − PyTorch| ≤ 1e-4 × max |PyTorch| plus 1e-7, that is
//! relative to the tensor's scale, with a floor at float noise for tensors whose exact gradient
//! is zero (the key bias, whose shift softmax cancels: PyTorch itself gives ~1e-8 there).

use std::collections::HashMap;

use dnabert::config::BertConfig;
use dnabert::train::backend::Dropout;
use dnabert::train::classify::{self, ClassBatch, Head};
use dnabert::train::cpu::Cpu;
use dnabert::train::encoder::Tokens;
use dnabert::train::mlm::{loss_and_grads, MlmBatch};
use dnabert::train::ops::adamw::AdamW;
use dnabert::train::params::Params;
use dnabert::train::OptimizerState;

const REL: f32 = 1e-4;
const ABS: f32 = 1e-7;

fn fixture() -> HashMap<String, (Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(crate::common::fixtures().join("train_k3.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec())))
        .collect()
}

fn f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn config() -> BertConfig {
    BertConfig {
        vocab_size: 69,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 32,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

/// Asserts the tolerance; returns the error relative to the tensor's scale.
/// `params` filled from the fixture's `{prefix}param/<name>` tensors, all of them used.
fn load_params(
    fx: &HashMap<String, (Vec<usize>, Vec<u8>)>,
    mut params: Params,
    prefix: &str,
) -> Params {
    let in_fixture = fx
        .keys()
        .filter(|k| {
            k.strip_prefix(prefix)
                .is_some_and(|k| k.starts_with("param/"))
        })
        .count();
    assert_eq!(
        params.names.len(),
        in_fixture,
        "every PyTorch parameter has a place here, and no more"
    );
    for (name, shape) in params.names.clone() {
        let (fshape, data) = &fx[&format!("{prefix}param/{name}")];
        assert_eq!(&shape, fshape, "{name}");
        params.get_mut(&name).copy_from_slice(&f32s(data));
    }
    params
}

fn assert_close(what: &str, ours: &[f32], theirs: &[f32]) -> f32 {
    assert_within(REL, what, ours, theirs)
}

/// Max abs error ≤ `rel` of the reference's largest magnitude (+ ABS); returns the error
/// relative to that magnitude.
fn assert_within(rel: f32, what: &str, ours: &[f32], theirs: &[f32]) -> f32 {
    crate::common::assert_close(rel, ABS, what, ours, theirs)
}

/// The optimizer settings of the fixture's AdamW step.
const OPT: AdamW = AdamW {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    weight_decay: 0.01,
};

/// The fixture's masked-LM batch (with padding and masking).
fn mlm_batch(fx: &HashMap<String, (Vec<usize>, Vec<u8>)>) -> MlmBatch {
    MlmBatch {
        tokens: Tokens {
            batch: fx["ids"].0[0],
            seq: fx["ids"].0[1],
            ids: i64s(&fx["ids"].1).into_iter().map(|i| i as u32).collect(),
            mask: i64s(&fx["mask"].1).into_iter().map(|m| m as f32).collect(),
        },
        labels: i64s(&fx["labels"].1),
    }
}

/// PyTorch's gradients, as parameters.
fn torch_grads(
    fx: &HashMap<String, (Vec<usize>, Vec<u8>)>,
    config: &BertConfig,
    names: &[String],
) -> Params {
    let mut g = Params::bert_mlm(config);
    for name in names {
        g.get_mut(name)
            .copy_from_slice(&f32s(&fx[&format!("grad/{name}")].1));
    }
    g
}

#[test]
fn mlm_loss_gradients_and_adamw_step_match_pytorch() {
    let fx = fixture();
    let config = config();
    let mut params = load_params(&fx, Params::bert_mlm(&config), "");
    let names: Vec<String> = params.names.iter().map(|(n, _)| n.clone()).collect();
    let b = mlm_batch(&fx);
    assert!(
        b.tokens.mask.contains(&0.0),
        "the batch must exercise padding"
    );

    let mut grads = Params::bert_mlm(&config);
    let be = Cpu::new(1);
    let loss = loss_and_grads(&be, &config, &params, &mut grads, &b, &Dropout::OFF);
    let expected_loss = f32s(&fx["loss"].1)[0];
    assert!(
        (loss - expected_loss).abs() <= REL * expected_loss.abs(),
        "loss {loss} vs PyTorch {expected_loss}"
    );
    let mut worst = (0f32, "");
    for name in &names {
        let rel = assert_close(
            &format!("grad {name}"),
            grads.get(name),
            &f32s(&fx[&format!("grad/{name}")].1),
        );
        if rel > worst.0 && !name.contains("attention.self.key.bias") {
            worst = (rel, name);
        }
    }
    eprintln!(
        "loss {loss} (PyTorch {expected_loss}); worst relative gradient error {:e} ({})",
        worst.0, worst.1
    );

    // The optimizer step is checked on PyTorch's own gradients: where a gradient is zero up to
    // float noise (the key bias), Adam's normalisation turns the noise into a full-size step, so
    // a step from our gradients could not be compared there.
    let mut state = OptimizerState::new(&be, &params);
    state.step(&be, &OPT, &mut params, &torch_grads(&fx, &config, &names));
    for name in &names {
        assert_close(
            &format!("after {name}"),
            params.get(name),
            &f32s(&fx[&format!("after/{name}")].1),
        );
    }
}

/// The classification fixture's batch (the MLM batch's ids before masking, 3 classes).
fn class_batch(fx: &HashMap<String, (Vec<usize>, Vec<u8>)>) -> ClassBatch {
    let (batch, seq) = (fx["classify/ids"].0[0], fx["classify/ids"].0[1]);
    ClassBatch {
        tokens: Tokens {
            batch,
            seq,
            ids: i64s(&fx["classify/ids"].1)
                .into_iter()
                .map(|i| i as u32)
                .collect(),
            mask: i64s(&fx["mask"].1).into_iter().map(|m| m as f32).collect(),
        },
        labels: i64s(&fx["classify/labels"].1),
    }
}

fn classifier_matches_pytorch(prefix: &str, head: Head) {
    let fx = fixture();
    let config = config();
    let params = load_params(&fx, Params::bert_classifier(&config, 3, head), prefix);
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
    let expected = f32s(&fx[&format!("{prefix}loss")].1)[0];
    assert!(
        (loss - expected).abs() <= REL * expected.abs(),
        "loss {loss} vs PyTorch {expected}"
    );
    for (name, _) in &params.names {
        assert_close(
            &format!("grad {name}"),
            grads.get(name),
            &f32s(&fx[&format!("{prefix}grad/{name}")].1),
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
    let fx = fixture();
    let config = config();
    let head = Head::Cls;
    let mut params = load_params(&fx, Params::bert_classifier(&config, 3, head), "classify/");
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

/// The same masked-LM step on the GPU backend (loss, every gradient, one AdamW update), held to
/// the same PyTorch fixture: fp32 products within the CPU's bound, bf16 products within 1e-2
/// (the bound), and fused attention (fp32) within the CPU's bound. Skips, saying why, without a GPU (CI); **not run yet**: no GPU has been
/// lent to this project.
#[test]
fn mlm_step_on_the_gpu_matches_pytorch() {
    use dnabert::cuda;
    use dnabert::cuda::backend::{Attention, Gpu};
    use dnabert::device::Precision;
    if !cuda::missing_libraries().is_empty() {
        eprintln!("SKIPPED: {}", cuda::unavailable_reason(0));
        return;
    }
    let gpu = Gpu::new(0).unwrap_or_else(|e| panic!("{e:#}"));
    for (precision, attention, rel) in [
        (Precision::F32, Attention::Products, REL),
        (Precision::Bf16, Attention::Products, 1e-2),
        (Precision::F32, Attention::Fused, REL),
    ] {
        let g = gpu.with_precision(precision).with_attention(attention);
        let fx = fixture();
        let config = config();
        let host = load_params(&fx, Params::bert_mlm(&config), "");
        let names: Vec<String> = host.names.iter().map(|(n, _)| n.clone()).collect();
        let b = mlm_batch(&fx);
        let mut params = host.to_backend(&g);
        let mut grads = Params::bert_mlm(&config).to_backend(&g);
        let loss = loss_and_grads(&g, &config, &params, &mut grads, &b, &Dropout::OFF);
        let expected_loss = f32s(&fx["loss"].1)[0];
        assert!(
            (loss - expected_loss).abs() <= rel * expected_loss.abs(),
            "GPU ({precision}, {attention:?}) loss {loss} vs PyTorch {expected_loss}"
        );
        let grads = grads.to_host(&g);
        for name in &names {
            let theirs = f32s(&fx[&format!("grad/{name}")].1);
            let what = format!("GPU ({precision}, {attention:?}) grad {name}");
            if precision == Precision::Bf16 && name.contains("attention.self.key.bias") {
                // Its true value is zero (softmax ignores a shift shared by a row's scores);
                // what remains is rounding noise with no scale of its own to be relative to,
                // so it is held to the key weight's gradient scale instead.
                let key_w = f32s(&fx[&format!("grad/{}", name.replace("bias", "weight"))].1);
                let scale = key_w.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = grads.get(name).iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(worst <= rel * scale, "{what}: {worst:e} vs scale {scale:e}");
                continue;
            }
            assert_within(rel, &what, grads.get(name), &theirs);
        }
        let torch_grads = torch_grads(&fx, &config, &names).to_backend(&g);
        let mut state = OptimizerState::new(&g, &params);
        state.step(&g, &OPT, &mut params, &torch_grads);
        let after = params.to_host(&g);
        for name in &names {
            assert_within(
                rel,
                &format!("GPU ({precision}, {attention:?}) after {name}"),
                after.get(name),
                &f32s(&fx[&format!("after/{name}")].1),
            );
        }
    }
}
