//! A region selector for `embed --select`: the annotation's lines of the given types (exons by
//! default; CDS, genes, a BED file's peaks with `types=bed`), each widened by `flank` bases on
//! both sides and cut to the record's ends, overlapping regions merged into one.
//!
//! `embed --select select_features.wasm --annotation A --select-config types=exon
//! --select-config flank=0` (the defaults).
use dnabert_plugin::{features, regions_merged, Config, Feature, Record, Select, Transcript};

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
        let spans = list
            .iter()
            .map(|f| {
                (
                    f.start.saturating_sub(self.flank),
                    f.end.saturating_add(self.flank),
                )
            })
            .collect();
        regions_merged(spans, record.len);
    }
}

dnabert_plugin::select!(Features);
