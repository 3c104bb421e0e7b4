//! Seeded random streams, by name. Every draw in the project comes from `rng(seed, stream,
//! step)`: a ChaCha8 generator seeded with the run's seed, on a stream of its own, positioned at
//! `step` — so batches, validation, masking, initialisation and data splits never share draws,
//! and any step's draws can be made again without the ones before it (what makes `--resume`
//! exact). The stream numbers are fixed: changing one changes every seeded output.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A stream of draws, each with its fixed number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Pretraining's masked batches; step = micro-batch index.
    PretrainBatches,
    /// Pretraining's validation batches; step = batch index.
    PretrainValidation,
    /// The order of a fine-tuning table before validation and test are split off.
    FinetuneSplit,
    /// The order of the training examples in fine-tuning epoch `n` (from 0).
    FinetuneEpoch(u64),
    /// `splice-sites`' negative positions.
    SpliceNegatives,
    /// `splice-sites`' decoy reservoir.
    SpliceDecoys,
    /// The order in which a dataset's groups are dealt to the splits (`tables`, for
    /// `splice-sites` and `make-dataset`).
    DatasetGroups,
    /// The order in which a dataset's label `n` (< 32) is capped.
    DatasetCap(u64),
    /// The order in which a dataset's label `n` is split 80/10/10 (`--split random`).
    DatasetSplit(u64),
    /// Fresh weights (`init`, new heads).
    InitWeights,
    /// `splice-report`'s bootstrap resamples of the test rows.
    Bootstrap,
}

impl Stream {
    pub fn number(self) -> u64 {
        match self {
            Stream::PretrainBatches => 0,
            Stream::PretrainValidation => 1,
            Stream::FinetuneSplit => 10,
            Stream::SpliceNegatives => 20,
            Stream::SpliceDecoys => 21,
            Stream::Bootstrap => 50,
            // Labels 0–9 keep the numbers `splice-sites` drew from before it shared `tables` with
            // make-dataset, so its datasets (results/splice-chrx.md) are drawn as they were;
            // higher labels go above every other stream, FinetuneEpoch's included.
            Stream::DatasetGroups => 22,
            Stream::DatasetCap(label @ 0..10) => 30 + label,
            Stream::DatasetSplit(label @ 0..10) => 40 + label,
            Stream::DatasetCap(label) => (1 << 33) + label,
            Stream::DatasetSplit(label) => (1 << 32) + label,
            Stream::InitWeights => 99,
            Stream::FinetuneEpoch(epoch) => 100 + epoch,
        }
    }
}

/// The generator for one step of one stream.
pub fn rng(seed: u64, stream: Stream, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream.number());
    rng.set_word_pos((step as u128) << 40);
    rng
}

/// A seeded Fisher–Yates shuffle, drawing from `rng(seed, stream, 0)`.
pub fn shuffle<T>(v: &mut [T], seed: u64, stream: Stream) {
    let mut r = rng(seed, stream, 0);
    for i in (1..v.len()).rev() {
        v.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_keep_their_numbers_and_never_collide() {
        let all = [
            Stream::PretrainBatches,
            Stream::PretrainValidation,
            Stream::FinetuneSplit,
            Stream::SpliceNegatives,
            Stream::SpliceDecoys,
            Stream::Bootstrap,
            Stream::DatasetGroups,
            Stream::DatasetCap(0),
            Stream::DatasetCap(31),
            Stream::DatasetSplit(0),
            Stream::DatasetSplit(31),
            Stream::InitWeights,
            Stream::FinetuneEpoch(0),
            Stream::FinetuneEpoch(7),
        ];
        let numbers: Vec<u64> = all.iter().map(|s| s.number()).collect();
        assert_eq!(
            numbers,
            [
                0,
                1,
                10,
                20,
                21,
                50,
                22,
                30,
                (1 << 33) + 31,
                40,
                (1 << 32) + 31,
                99,
                100,
                107
            ]
        );
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), numbers.len());
    }

    #[test]
    fn a_step_draws_the_same_whatever_came_before() {
        let a = rng(5, Stream::PretrainBatches, 3).next_u64();
        let mut r = rng(5, Stream::PretrainBatches, 2);
        r.next_u64();
        assert_eq!(a, rng(5, Stream::PretrainBatches, 3).next_u64());
        assert_ne!(a, rng(5, Stream::PretrainValidation, 3).next_u64());
    }
}
