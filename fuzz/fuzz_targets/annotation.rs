#![no_main]
//! GFF3, GTF and BED (the format told by content: the file has no telling extension), read as
//! transcripts (splice-sites) and as plugin features (every line).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("annotation", data);
    let _ = dnabert::splice::annotation::read(&path);
    let all = dnabert::sandbox::features::Wanted(vec!["*".into()]);
    let _ = dnabert::sandbox::features::read(&path, &all);
});
