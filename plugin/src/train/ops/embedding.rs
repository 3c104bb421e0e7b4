//! BERT's embeddings before their LayerNorm: word + position + token type 0.

/// ids: B × S → out: (B·S) × C.
pub fn forward(
    out: &mut [f32],
    ids: &[u32],
    word: &[f32],
    pos: &[f32],
    tok_type: &[f32],
    s: usize,
    c: usize,
) {
    for (t, (o, &id)) in out.chunks_exact_mut(c).zip(ids).enumerate() {
        let (w, p) = (&word[id as usize * c..][..c], &pos[(t % s) * c..][..c]);
        for j in 0..c {
            o[j] = w[j] + p[j] + tok_type[j];
        }
    }
}

/// Accumulates into the word, position and token-type-0 tables.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    dword: &mut [f32],
    dpos: &mut [f32],
    dtok_type: &mut [f32],
    dout: &[f32],
    ids: &[u32],
    s: usize,
    c: usize,
) {
    for (t, (d, &id)) in dout.chunks_exact(c).zip(ids).enumerate() {
        let w = &mut dword[id as usize * c..][..c];
        for j in 0..c {
            w[j] += d[j];
        }
        let p = &mut dpos[(t % s) * c..][..c];
        for j in 0..c {
            p[j] += d[j];
        }
        for j in 0..c {
            dtok_type[j] += d[j];
        }
    }
}
