#![no_main]
//! A model folder's `config.json`, validated (sizes checked against the machine's memory).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("config.json", data);
    let _ = dnabert::config::BertConfig::load(&path);
});
