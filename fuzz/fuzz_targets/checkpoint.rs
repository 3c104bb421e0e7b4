#![no_main]
//! Weight files: safetensors (headers that claim terabytes included) and `torch.save` zips with
//! their pickles, told apart by content.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("model.weights", data);
    let _ = dnabert::checkpoint::Checkpoint::read_file(&path);
});
