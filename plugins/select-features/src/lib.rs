//! A region selector for `embed --select`: the annotation's lines of the given types (exons by
//! default; CDS, genes, a BED file's peaks with `types=bed`), each widened by `flank` bases on
//! both sides and cut to the record's ends, overlapping regions merged into one.
//!
//! `embed --select select_features.wasm --annotation A --select-config types=exon
//! --select-config flank=0` (the defaults).
use dnabert_plugin::{features, region, Config, Feature, Record, Select, Transcript};

struct Features {
    flank: u64,
}

impl Select for Features {
    fn new() -> Self {
        Features::start(&Config::default())
    }

    fn start(config: &Config) -> Self {
        features(config.text("types", "exon"));
        Features {
            flank: config.number("flank", 0),
        }
    }

    fn record(&mut self, _record: &Record, _transcripts: &[Transcript]) {}

    fn features(&mut self, record: &Record, list: &[Feature]) {
        let mut spans: Vec<(u64, u64)> = list
            .iter()
            .map(|f| {
                let end = f.end.saturating_add(self.flank).min(record.len);
                (f.start.saturating_sub(self.flank), end)
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

dnabert_plugin::select!(Features);
