//! A region selector for `embed --select`: the promoter of every transcript on the record,
//! `TSS - 1000 .. TSS + 1000` cut to the record's ends, overlapping promoters merged into one
//! region. Needs `embed --annotation`; without it, nothing is selected.
use dnabert_plugin::{regions_merged, Record, Select, Transcript};

const FLANK: u64 = 1000;

struct Promoters;

impl Select for Promoters {
    fn new() -> Self {
        Promoters
    }

    fn record(&mut self, record: &Record, transcripts: &[Transcript]) {
        let spans = transcripts
            .iter()
            .map(|t| {
                let tss = if t.plus { t.start } else { t.end };
                (tss.saturating_sub(FLANK), tss + FLANK)
            })
            .collect();
        regions_merged(spans, record.len);
    }
}

dnabert_plugin::select!(Promoters);
