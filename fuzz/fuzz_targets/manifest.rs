#![no_main]
//! `split-fasta`'s manifest, as `gather-embeddings` reads it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("manifest.tsv", data);
    let _ = dnabert::scatter::read_manifest(&path);
});
