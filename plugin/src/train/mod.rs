//! The training engine: the model's math (`encoder`, the heads in `mlm` and `classify`, the
//! optimizer step) written once against the [`backend::Backend`] trait, with forward and
//! backward side by side and no autograd; the CPU backend (`cpu`) runs the Rust kernels of
//! `ops`. Held to PyTorch by gradient-parity tests (`plugin/tests/it/train_parity.rs`).

pub mod backend;
pub mod classify;
pub mod cpu;
pub mod data;
pub mod encoder;
pub mod finetune;
pub mod init;
pub mod metrics;
pub mod mlm;
pub mod ops;
pub mod params;
pub mod predict;
pub mod pretrain;
pub mod ranks;
pub mod resume;
pub mod store;

use backend::AdamW;
use backend::Backend;
use params::Params;

/// Optimizer state: the two AdamW moments in the parameters' layout, and the step count.
pub struct OptimizerState<B: Backend> {
    pub m: B::Buf,
    pub v: B::Buf,
    pub step: u64,
}

impl<B: Backend> OptimizerState<B> {
    pub fn new(be: &B, params: &Params<B>) -> Self {
        Self {
            m: be.zeros(params.len()),
            v: be.zeros(params.len()),
            step: 0,
        }
    }

    /// One AdamW step over every tensor; biases and LayerNorm parameters are not decayed.
    pub fn step(&mut self, be: &B, opt: &AdamW, params: &mut Params<B>, grads: &Params<B>) {
        self.step_filtered(be, opt, params, grads, |_| true)
    }

    /// One AdamW step over the tensors `train` accepts (the others stay as they are: frozen).
    pub fn step_filtered(
        &mut self,
        be: &B,
        opt: &AdamW,
        params: &mut Params<B>,
        grads: &Params<B>,
        train: impl Fn(&str) -> bool,
    ) {
        self.step += 1;
        for (name, _) in params.names.clone() {
            if !train(&name) {
                continue;
            }
            let r = params.range(&name);
            be.adamw(
                opt,
                params.get_mut(&name),
                grads.get(&name),
                B::slice_mut(&mut self.m, r.clone()),
                B::slice_mut(&mut self.v, r),
                self.step,
                Params::decays(&name),
            );
        }
    }
}

/// Runs `loss_and_grads` on each part of a batch (on a thread of its own when there are
/// several) and adds the parts' gradients into `grads`, each weighted by `weights[i]` (its share
/// of the batch's loss terms), in a fixed order: the result does not depend on timing. Returns
/// the weighted loss.
pub(crate) fn parallel_loss_and_grads<B: Backend, P: Sync>(
    be: &B,
    params: &Params<B>,
    grads: &mut Params<B>,
    parts: &[P],
    weights: &[f32],
    loss_and_grads: impl Fn(&B, usize, &P, &mut Params<B>) -> f32 + Sync,
) -> f32 {
    let f = &loss_and_grads;
    if let ([part], [w]) = (parts, weights) {
        if *w == 1.0 {
            // One part holding the whole batch: its gradients go straight into `grads`, with no
            // buffer of the model's size to clear and add (a tenth of a step at 1 x 512).
            return f(be, 0, part, grads);
        }
    }
    let sub = &be.share(parts.len());
    let run = |i: usize, part: &P| {
        let mut g = params.zeros_like(sub);
        (f(sub, i, part, &mut g), g)
    };
    // In order of the parts whatever thread ran each; a part's panic (a bug) goes on
    // unwinding here, as it would in one thread.
    use rayon::prelude::*;
    let results: Vec<(f32, Params<B>)> = parts
        .par_iter()
        .enumerate()
        .map(|(i, part)| run(i, part))
        .collect();
    let mut loss = 0f32;
    for ((l, g), &w) in results.iter().zip(weights) {
        loss += l * w;
        grads.add_scaled(be, g, w);
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
    // Empty stays empty: a path left out of the config, to be given on the command line.
    if p.is_relative() && !p.as_os_str().is_empty() {
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

/// Every core, as configs default their `threads` to.
fn default_threads() -> usize {
    crate::device::threads(None)
}
