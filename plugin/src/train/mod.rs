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
