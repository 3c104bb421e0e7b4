//! Softmax cross-entropy over the positions that carry a label (`-1` elsewhere, as PyTorch's
//! `ignore_index`), averaged over those positions.

/// logits: T × V. Returns the mean loss and fills dlogits (overwritten) with its gradient.
pub fn forward_backward(dlogits: &mut [f32], logits: &[f32], labels: &[i64], v: usize) -> f32 {
    let count = labels.iter().filter(|&&l| l >= 0).count();
    let mut loss = 0f64;
    for ((row, drow), &label) in logits
        .chunks_exact(v)
        .zip(dlogits.chunks_exact_mut(v))
        .zip(labels)
    {
        if label < 0 || count == 0 {
            drow.fill(0.0);
            continue;
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|x| (x - max).exp()).sum();
        let log_sum = sum.ln() + max;
        loss += (log_sum - row[label as usize]) as f64;
        for (d, &x) in drow.iter_mut().zip(row) {
            *d = (x - log_sum).exp() / count as f32;
        }
        drow[label as usize] -= 1.0 / count as f32;
    }
    if count == 0 {
        0.0
    } else {
        (loss / count as f64) as f32
    }
}
