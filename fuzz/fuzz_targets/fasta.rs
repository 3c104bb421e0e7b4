#![no_main]
//! FASTA, plain or gzip (told apart by content): every record read to the end.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = dnabert_fuzz::as_file("in.fa", data);
    if let Ok(mut r) = dnabert::fasta::FastaReader::open(&path) {
        while let Some(rec) = r.next_record() {
            if rec.is_err() {
                break;
            }
        }
    }
});
