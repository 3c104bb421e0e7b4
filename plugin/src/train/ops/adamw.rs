//! AdamW as `torch.optim.AdamW` does it: decoupled weight decay, bias-corrected moments.

use crate::train::backend::AdamW;

// The CPU's update; the settings are the backends' shared vocabulary (`train::backend`).
impl AdamW {
    /// One step (`step` counts from 1) over a parameter tensor and its moments.
    pub fn update(
        &self,
        p: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        step: u64,
        decay: bool,
    ) {
        let bc1 = 1.0 - self.beta1.powi(step as i32);
        let bc2 = 1.0 - self.beta2.powi(step as i32);
        let wd = if decay { self.weight_decay } else { 0.0 };
        for i in 0..p.len() {
            p[i] -= self.lr * wd * p[i];
            m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g[i];
            v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g[i] * g[i];
            let denom = (v[i] / bc2).sqrt() + self.eps;
            p[i] -= self.lr * (m[i] / bc1) / denom;
        }
    }
}
