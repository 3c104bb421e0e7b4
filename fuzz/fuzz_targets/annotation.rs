#![no_main]
//! GFF3 and GTF (the format told by content: the file has no telling extension).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("annotation", data);
    let _ = dnabert::splice::annotation::read(&path);
});
