//! Promoters as a dataset task: the window `TSS ± flank` of every transcript (the first base of
//! its first exon on its strand) labelled `promoter`, and, as negatives, a window of the same
//! size from the middle of the transcript's body labelled `background`, taken only when it lies
//! at least `min_distance` bases from the TSS. Windows that would run off the chromosome are
//! not emitted. Both on the transcript's strand; grouped by gene (the host's default).
//!
//! --config flank=N (default 150: 300-base windows), min_distance=N (default 1000).
use dnabert_plugin::{emit, label, Config, Label, Record, Task, Transcript};

struct Promoters {
    flank: u64,
    min_distance: u64,
    promoter: Label,
    background: Label,
}

impl Task for Promoters {
    fn start(config: &Config) -> Self {
        Promoters {
            flank: config.number("flank", 150),
            min_distance: config.number("min_distance", 1000),
            promoter: label("promoter"),
            background: label("background"),
        }
    }

    fn transcript(&mut self, t: &Transcript, record: &Record) {
        let f = self.flank;
        // The window's centre base is the TSS on either strand.
        let around = |centre: u64| {
            (centre >= f && centre + f <= record.len).then(|| (centre - f, centre + f))
        };
        let tss = if t.plus { t.start } else { t.end };
        if let Some((s, e)) = around(tss) {
            emit(s, e, t.plus, self.promoter, "");
        }
        let middle = t.start + (t.end - t.start) / 2;
        if middle.abs_diff(tss) >= self.min_distance {
            if let Some((s, e)) = around(middle) {
                emit(s, e, t.plus, self.background, "");
            }
        }
    }
}

dnabert_plugin::task!(Promoters);
