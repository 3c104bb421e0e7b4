//! The model shipped in `models/` loads (f16 weights) and has learned something: on windows
//! from the last 2% of the chrX slice, which its pretraining held out, its masked-k-mer loss is
//! well under the uniform baseline ln(4⁶) ≈ 8.32 (7.15 after its third stage of pretraining;
//! models/…/README.md).

use dnabert::layout::Layout;
use dnabert::model_dir::ModelDir;
use dnabert::rng::{rng, Stream};
use dnabert::tokenizer::Tokenizer;
use dnabert::train::cpu::Cpu;
use dnabert::train::data::{Genome, MaskStyle, Sampler, Split};
use dnabert::train::mlm;
use dnabert::train::store;
use dnabert::vocab::Vocab;

#[test]
fn the_shipped_model_predicts_held_out_masked_kmers() {
    let dir = crate::common::fixtures().join("../../models/dnabert6-chrx-4x256");
    let model = ModelDir::open(&dir).unwrap();
    let (params, _) = store::load(&model, Layout::Mlm, |_| false).unwrap();
    let genome = Genome::load(
        &[crate::common::shared_data().join("grch37_chrX_1-70Mb.fa.gz")],
        &Split::Fraction(0.02),
        1000,
    )
    .unwrap();
    let vocab = Vocab::parse(&dnabert::vocab::generate(6)).unwrap();
    let tokenizer = Tokenizer::new(&vocab);
    let sampler = Sampler::new(
        &genome.validation,
        &tokenizer,
        126,
        0.025,
        MaskStyle::Dnabert,
    );
    let be = Cpu::new(2);
    let (mut loss, mut n) = (0f64, 0usize);
    for i in 0..4 {
        let b = sampler.batch(&mut rng(123, Stream::PretrainValidation, i), 8);
        let (l, count, _) = mlm::evaluate(&be, &model.config, &params, &b);
        loss += l as f64 * count as f64;
        n += count;
    }
    let loss = loss / n as f64;
    eprintln!("held-out masked loss {loss:.3} over {n} masked tokens");
    assert!(
        loss < 7.6,
        "masked loss {loss} is not well under uniform (8.32)"
    );
}
