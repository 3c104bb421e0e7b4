#![no_main]
//! `vocab.txt`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dnabert::vocab::Vocab::parse(text);
    }
});
