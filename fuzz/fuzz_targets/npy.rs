#![no_main]
//! A `.npy` part's header, as `gather-embeddings` reads it.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("part.npy", data);
    let _ = dnabert::npy::read_header(&path);
});
