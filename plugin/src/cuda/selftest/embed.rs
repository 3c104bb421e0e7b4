//! What `embed --device cuda` runs (the training engine's encoder behind the embed pipeline,
//! `embed/backend_engine.rs`) on a model folder, against the same encoder on the CPU backend:
//! two windows of DNA, one full length and one shorter (so that padding is exercised), every
//! token's last hidden state.

use std::path::Path;

use super::Report;
use crate::embed::backend_engine::BackendEngine;
use crate::engine::Infer;
use crate::model_dir::ModelDir;
use crate::train::backend::Backend;
use crate::train::cpu::Cpu;

/// `bases` of DNA from `seed` (xorshift64), no N.
fn dna(bases: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..bases)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            b"ACGT"[(s >> 62) as usize]
        })
        .collect()
}

/// The encoder on `be` against the CPU's, within `bound` of scale; skipped when `model` is not
/// a model folder here.
pub fn run<B: Backend + Send + Clone>(r: &mut Report, be: &B, tag: &str, bound: f32, model: &Path) {
    let name = format!("embed encoder on {} ({tag})", model.display());
    if !model.is_dir() {
        return r.skip(name, "no such model folder here (give --model)");
    }
    let md = match ModelDir::open_folder(model) {
        Ok(md) => md,
        Err(e) => return r.check(name, false, format!("{e:#}")),
    };
    let kmers = md.model_max_length.saturating_sub(2).max(1);
    let k = md.vocab.k;
    let (long, short) = (dna(kmers + k - 1, 1), dna(kmers / 3 + k - 1, 2));
    let tokens = md.tokenizer.encode(&[&long, &short], kmers);
    let want = BackendEngine::new(Cpu::new(crate::device::threads(None)), &md)
        .and_then(|e| Ok(e.run(&tokens)?.data));
    let got = BackendEngine::new(be.clone(), &md).and_then(|e| Ok(e.run(&tokens)?.data));
    match (got, want) {
        (Ok(g), Ok(w)) => r.close(name, &g, &w, bound),
        (Err(e), _) | (_, Err(e)) => r.check(name, false, format!("{e:#}")),
    }
}
