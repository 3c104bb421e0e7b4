//! Inverted dropout with counter-based randomness: whether element `i` drops is a hash of
//! (seed, i), not a draw from a stateful generator, so a GPU kernel computes the same mask
//! thread by thread, and a resumed run redraws the same masks from the step's seed.

/// SplitMix64's finaliser: a bijective 64-bit mix.
pub const fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether element `i` is kept: a uniform draw in [0, 1) (24 bits) at or above p.
pub fn keep(seed: u64, i: usize, p: f32) -> bool {
    let u = (mix(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 40) as f32
        / (1u32 << 24) as f32;
    u >= p
}

/// Fills `mask` with the scale factors: 0 (dropped) or 1/(1−p) (kept).
pub fn fill_mask(mask: &mut [f32], p: f32, seed: u64) {
    let scale = 1.0 / (1.0 - p);
    for (i, m) in mask.iter_mut().enumerate() {
        *m = if keep(seed, i, p) { scale } else { 0.0 };
    }
}

/// In place: `x *= mask`, with the mask of [`fill_mask`], saved for backward.
pub fn forward(x: &mut [f32], mask: &mut [f32], p: f32, seed: u64) {
    fill_mask(mask, p, seed);
    backward(x, mask);
}

/// In place: `d *= mask`.
pub fn backward(d: &mut [f32], mask: &[f32]) {
    d.iter_mut().zip(mask).for_each(|(d, m)| *d *= m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_p_and_keeps_the_mean() {
        let n = 100_000;
        let mut x = vec![1f32; n];
        let mut mask = vec![0f32; n];
        forward(&mut x, &mut mask, 0.1, 42);
        let dropped = x.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
        assert!((dropped - 0.1).abs() < 0.005, "dropped share {dropped}");
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        // Another seed drops other elements.
        let mut y = vec![1f32; n];
        forward(&mut y, &mut vec![0f32; n], 0.1, 43);
        assert_ne!(x, y);
        // The backward pass lets through exactly what the forward kept, scaled alike.
        let mut d = vec![2f32; n];
        backward(&mut d, &mask);
        assert!(d.iter().zip(&x).all(|(d, x)| *d == 2.0 * x));
    }
}
