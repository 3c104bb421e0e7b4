//! `kernels/cross_entropy.cu`'s host side: labels to the device, per-row losses back, summed
//! on the host in f64 as the CPU does.

use super::{rows, tensor, DView, DViewMut, Gpu};

pub(super) fn forward_backward(
    g: &Gpu,
    dlogits: DViewMut<'_>,
    logits: DView<'_>,
    labels: &[i64],
    v: usize,
) -> f32 {
    let count = labels.iter().filter(|&&l| l >= 0).count();
    if count == 0 {
        tensor::scale(g, dlogits, 0.0);
        return 0.0;
    }
    let labels_d = g.to_device(labels);
    let loss_rows = g.scratch::<f32>(labels.len());
    g.k().cross_entropy_forward_backward(
        rows(labels.len(), v),
        dlogits.out(),
        g.out(&loss_rows),
        logits.input(),
        g.out(&labels_d).read(),
        v as i32,
        1.0f32 / count as f32,
    );
    let losses = g.stream.clone_dtoh(&loss_rows).expect("device → host copy");
    (losses[..labels.len()]
        .iter()
        .map(|&l| l as f64)
        .sum::<f64>()
        / count as f64) as f32
}
