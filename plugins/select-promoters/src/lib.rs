//! A region selector for `embed --select`: the promoter of every transcript on the record,
//! `TSS - 1000 .. TSS + 1000` cut to the record's ends, overlapping promoters merged into one
//! region. Needs `embed --annotation`; without it, nothing is selected.
use dnabert_plugin::{region, Record, Select, Transcript};

const FLANK: u64 = 1000;

struct Promoters;

impl Select for Promoters {
    fn new() -> Self {
        Promoters
    }

    fn record(&mut self, record: &Record, transcripts: &[Transcript]) {
        let mut spans: Vec<(u64, u64)> = transcripts
            .iter()
            .map(|t| {
                let tss = if t.plus { t.start } else { t.end };
                (tss.saturating_sub(FLANK), (tss + FLANK).min(record.len))
            })
            .filter(|(s, e)| s < e)
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u64, u64)> = vec![];
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        for (s, e) in merged {
            region(s, e);
        }
    }
}

dnabert_plugin::select!(Promoters);
