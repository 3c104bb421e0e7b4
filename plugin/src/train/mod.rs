//! The training engine (work in progress): the model's math written once over kernels with
//! forward and backward side by side, held to PyTorch by gradient-parity tests.
//!
//! Done: the CPU kernels (`ops`), the encoder (`encoder`), the masked-LM head (`mlm`) and
//! DNABERT's classification head (`classify`), forward and backward; AdamW; `init`,
//! `pretrain` (with bit-exact resume), `finetune` and `predict`.
//! Not yet: dropout, the splice-site head, and the `Backend` trait that a CUDA implementation
//! will share (the kernels are shaped for it: one op family per file, forward and backward).

pub mod classify;
pub mod data;
pub mod encoder;
pub mod finetune;
pub mod metrics;
pub mod mlm;
pub mod ops;
pub mod params;
pub mod predict;
pub mod pretrain;
pub mod store;

use ops::adamw::AdamW;
use params::Params;

/// Optimizer state: the two AdamW moments in the parameters' layout, and the step count.
pub struct OptimizerState {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub step: u64,
}

impl OptimizerState {
    pub fn new(params: &Params) -> Self {
        Self {
            m: vec![0.0; params.data.len()],
            v: vec![0.0; params.data.len()],
            step: 0,
        }
    }

    /// One AdamW step over every tensor; biases and LayerNorm parameters are not decayed.
    pub fn step(&mut self, opt: &AdamW, params: &mut Params, grads: &Params) {
        self.step_filtered(opt, params, grads, |_| true)
    }

    /// One AdamW step over the tensors `train` accepts (the others stay as they are: frozen).
    pub fn step_filtered(
        &mut self,
        opt: &AdamW,
        params: &mut Params,
        grads: &Params,
        train: impl Fn(&str) -> bool,
    ) {
        self.step += 1;
        for (name, _) in params.names.clone() {
            if !train(&name) {
                continue;
            }
            let r = params.range(&name);
            opt.update(
                &mut params.data[r.clone()],
                &grads.data[r.clone()],
                &mut self.m[r.clone()],
                &mut self.v[r],
                self.step,
                Params::decays(&name),
            );
        }
    }
}

/// Runs `loss_and_grads` on each part of a batch on a thread of its own and adds the parts'
/// gradients into `grads`, each weighted by `weights[i]` (its share of the batch's loss terms),
/// in a fixed order: the result does not depend on timing. Returns the weighted loss.
pub(crate) fn parallel_loss_and_grads<B: Sync>(
    params: &Params,
    grads: &mut Params,
    parts: &[B],
    weights: &[f32],
    loss_and_grads: impl Fn(&B, &mut Params) -> f32 + Sync,
) -> f32 {
    let f = &loss_and_grads;
    let results: Vec<(f32, Params)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                s.spawn(move || {
                    let mut g = params.zeros_like();
                    (f(part, &mut g), g)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("training thread panicked"))
            .collect()
    });
    let mut loss = 0f32;
    for ((l, g), &w) in results.iter().zip(weights) {
        loss += l * w;
        grads.add_scaled(g, w);
    }
    loss
}

/// Reads a YAML config; unknown keys and wrong types are errors naming the key. Returns the
/// file's folder, against which the config's relative paths are to be taken.
pub fn load_yaml<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> anyhow::Result<(T, std::path::PathBuf)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let c = serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((
        c,
        path.parent()
            .unwrap_or(std::path::Path::new("."))
            .to_owned(),
    ))
}

/// `p` taken from `base` when relative.
pub(crate) fn resolve(base: &std::path::Path, p: &mut std::path::PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

/// The index of the largest value (the first on a tie): the predicted class.
pub(crate) fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |m, (i, &x)| if x > m.1 { (i, x) } else { m },
        )
        .0
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
