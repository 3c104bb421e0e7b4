//! One whole masked-LM training step against PyTorch: the fixture that
//! `tests/make_train_fixtures.py` writes (`tests/fixtures/train_k3.safetensors`, 0.6 MB,
//! compiled into the binary so that `cuda-check --run` needs no files): a 2-layer BERT's
//! weights, a batch with padding and masking, PyTorch's loss, every gradient, and every
//! parameter after one AdamW step. `plugin/tests/it/train_parity.rs` holds the CPU backend to
//! it through the same reader.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};

use super::Report;
use crate::config::BertConfig;
use crate::train::backend::AdamW;
use crate::train::backend::{Backend, Dropout};
use crate::train::encoder::Tokens;
use crate::train::mlm::{loss_and_grads, MlmBatch};
use crate::train::params::Params;
use crate::train::OptimizerState;

/// The fixture's bytes.
pub const TRAIN_K3: &[u8] = include_bytes!("../../../../tests/fixtures/train_k3.safetensors");

/// The optimizer settings of the fixture's AdamW step.
pub const OPT: AdamW = AdamW {
    lr: 1e-3,
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    weight_decay: 0.01,
};

/// The fixture's tensors by name: (shape, little-endian bytes).
pub struct Fixture {
    tensors: HashMap<String, (Vec<usize>, Vec<u8>)>,
}

impl Fixture {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes).context("the training fixture")?;
        Ok(Fixture {
            tensors: st
                .tensors()
                .into_iter()
                .map(|(n, v)| (n, (v.shape().to_vec(), v.data().to_vec())))
                .collect(),
        })
    }

    /// The compiled-in `train_k3.safetensors`.
    pub fn train_k3() -> Self {
        Self::parse(TRAIN_K3).expect("the compiled-in fixture parses")
    }

    fn raw(&self, name: &str) -> &(Vec<usize>, Vec<u8>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("the fixture has no tensor {name}"))
    }

    pub fn shape(&self, name: &str) -> &[usize] {
        &self.raw(name).0
    }

    pub fn f32s(&self, name: &str) -> Vec<f32> {
        self.raw(name)
            .1
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    pub fn i64s(&self, name: &str) -> Vec<i64> {
        self.raw(name)
            .1
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    /// The model the fixture was made with (`make_train_fixtures.py`).
    pub fn config() -> BertConfig {
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

    /// `params` filled from the `{prefix}param/<name>` tensors; every one of them must have a
    /// place in `params`, and the shapes must agree.
    pub fn params(&self, mut params: Params, prefix: &str) -> Result<Params> {
        let in_fixture = self
            .tensors
            .keys()
            .filter(|k| {
                k.strip_prefix(prefix)
                    .is_some_and(|k| k.starts_with("param/"))
            })
            .count();
        if params.names.len() != in_fixture {
            bail!(
                "{} parameters here, {in_fixture} in the fixture under {prefix}param/",
                params.names.len()
            );
        }
        for (name, shape) in params.names.clone() {
            let key = format!("{prefix}param/{name}");
            let fshape = self.tensors.get(&key).map(|t| &t.0);
            if fshape != Some(&shape) {
                bail!("{key}: shape {fshape:?} in the fixture, {shape:?} here");
            }
            params.get_mut(&name).copy_from_slice(&self.f32s(&key));
        }
        Ok(params)
    }

    /// The masked-LM batch (with padding and masking).
    pub fn mlm_batch(&self) -> MlmBatch {
        let ids = self.shape("ids");
        MlmBatch {
            tokens: Tokens {
                batch: ids[0],
                seq: ids[1],
                ids: self.i64s("ids").into_iter().map(|i| i as u32).collect(),
                mask: self.i64s("mask").into_iter().map(|m| m as f32).collect(),
            },
            labels: self.i64s("labels"),
        }
    }

    /// PyTorch's gradients, as parameters.
    pub fn grads(&self, config: &BertConfig) -> Params {
        let mut g = Params::bert_mlm(config);
        for (name, _) in g.names.clone() {
            g.get_mut(&name)
                .copy_from_slice(&self.f32s(&format!("grad/{name}")));
        }
        g
    }
}

/// The fixture's step on `be`: the loss, every gradient and every parameter after AdamW
/// within `bound` of PyTorch's scale per tensor.
pub fn run<B: Backend>(r: &mut Report, be: &B, tag: &str, bound: f32) {
    let fx = Fixture::train_k3();
    let config = Fixture::config();
    let host = match fx.params(Params::bert_mlm(&config), "") {
        Ok(p) => p,
        Err(e) => return r.check(format!("mlm step ({tag})"), false, format!("{e:#}")),
    };
    let names: Vec<String> = host.names.iter().map(|(n, _)| n.clone()).collect();
    let b = fx.mlm_batch();
    let mut params = host.to_backend(be);
    let mut grads = Params::bert_mlm(&config).to_backend(be);
    let loss = loss_and_grads(be, &config, &params, &mut grads, &b, &Dropout::OFF);
    r.close(
        format!("mlm step loss ({tag})"),
        &[loss],
        &fx.f32s("loss"),
        bound,
    );
    let grads = grads.to_host(be);
    // Worst over the tensors, with the one that sets it named, rather than 39 lines.
    let mut worst = WorstOf::default();
    for name in &names {
        let theirs = fx.f32s(&format!("grad/{name}"));
        let ours = grads.get(name);
        if name.contains("attention.self.key.bias") {
            // Its true value is zero (softmax ignores a shift shared by a row's scores): what
            // remains is rounding noise with no scale of its own, so it is held to the key
            // weight's gradient scale instead.
            let key_w = fx.f32s(&format!("grad/{}", name.replace("bias", "weight")));
            let scale = key_w.iter().fold(0f32, |m, v| m.max(v.abs()));
            let noise = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
            let err = noise / scale.max(1e-30);
            worst.add(
                name,
                if err <= bound {
                    super::Outcome::Pass { err, bound }
                } else {
                    super::Outcome::Fail(format!(
                        "{err:.2e} of the key weight gradient's scale (bound {bound:.0e})"
                    ))
                },
            );
            continue;
        }
        worst.add(name, super::compare(ours, &theirs, bound));
    }
    worst.report(
        r,
        &format!("mlm step gradients, {} tensors ({tag})", names.len()),
    );
    // The optimizer step on PyTorch's own gradients (where a gradient is float noise, Adam
    // would turn ours into a full-size step that could not be compared).
    let torch_grads = fx.grads(&config).to_backend(be);
    let mut state = OptimizerState::new(be, &params);
    state.step(be, &OPT, &mut params, &torch_grads);
    let after = params.to_host(be);
    let mut worst = WorstOf::default();
    for name in &names {
        worst.add(
            name,
            super::compare(after.get(name), &fx.f32s(&format!("after/{name}")), bound),
        );
    }
    worst.report(
        r,
        &format!("mlm step AdamW update, {} tensors ({tag})", names.len()),
    );
}

/// The worst of many comparisons: the first failure, or the largest passing error.
#[derive(Default)]
struct WorstOf {
    fail: Option<String>,
    pass: Option<(f32, f32, String)>,
}

impl WorstOf {
    fn add(&mut self, name: &str, o: super::Outcome) {
        match o {
            super::Outcome::Fail(why) if self.fail.is_none() => {
                self.fail = Some(format!("{name}: {why}"))
            }
            super::Outcome::Pass { err, bound } if self.pass.as_ref().is_none_or(|p| err > p.0) => {
                self.pass = Some((err, bound, name.to_owned()));
            }
            _ => {}
        }
    }

    fn report(self, r: &mut Report, what: &str) {
        match (self.fail, self.pass) {
            (Some(why), _) => r.check(what, false, why),
            (None, Some((err, bound, name))) => r.push(
                format!("{what}, worst {name}"),
                super::Outcome::Pass { err, bound },
            ),
            (None, None) => r.check(what, false, "nothing compared"),
        }
    }
}
