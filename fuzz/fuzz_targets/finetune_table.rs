#![no_main]
//! Finetune tables: CSV or TSV of sequence and label, with or without a header, quoted.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("table.csv", data);
    let _ = dnabert::train::finetune::read_table(&path, 3);
});
