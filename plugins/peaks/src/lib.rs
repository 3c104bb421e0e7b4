//! A peak task (transcription-factor binding, open chromatin): a window centred on each peak
//! of a BED or narrowPeak file, labelled `peak`, and one `offset` bases upstream and one
//! downstream of it, labelled `flank` (local background with the same GC neighbourhood). A
//! peak's centre is its summit when the file gives one (narrowPeak's 10th column), else its
//! midpoint. A peak and its flanks share a group (the host's: the peak's name, else its
//! span), so they land in the same split.
//!
//! `--config window=200 offset=1000 types=bed` (the defaults; `types` may name GFF types
//! instead, e.g. `types=exon`, to take windows around those lines).
use dnabert_plugin::{emit, fail, features, label, Config, Feature, Label, Record, Task};

struct Peaks {
    half: u64,
    offset: u64,
    peak: Label,
    flank: Label,
}

impl Task for Peaks {
    fn start(config: &Config) -> Self {
        let window = config.number("window", 200);
        if window < 2 || window % 2 == 1 {
            fail(&format!(
                "--config window={window}: give an even number ≥ 2"
            ));
        }
        features(config.text("types", "bed"));
        Peaks {
            half: window / 2,
            offset: config.number("offset", 1000),
            peak: label("peak"),
            flank: label("flank"),
        }
    }

    fn transcript(&mut self, _t: &dnabert_plugin::Transcript, _record: &Record) {}

    fn feature(&mut self, f: &Feature, record: &Record) {
        let summit = f
            .attribute("col10")
            .and_then(|s| s.parse::<i64>().ok())
            .filter(|s| *s >= 0)
            .map(|s| f.start + s as u64);
        let centre = summit.unwrap_or((f.start + f.end) / 2);
        let take = |c: u64, l: Label| {
            if c >= self.half && c + self.half <= record.len {
                emit(c - self.half, c + self.half, f.plus(), l, "");
            }
        };
        take(centre, self.peak);
        if let Some(up) = centre.checked_sub(self.offset) {
            take(up, self.flank);
        }
        take(centre + self.offset, self.flank);
    }
}

dnabert_plugin::task!(Peaks);
