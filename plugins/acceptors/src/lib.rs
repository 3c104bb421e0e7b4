//! The guide's example (docs/plugins.md), kept here so that it is built and tested as written.
use dnabert_plugin::{emit, label, Config, Label, Record, Task, Transcript};

struct Acceptors {
    half: u64,
    site: Label,
    intron: Label,
}

impl Task for Acceptors {
    fn start(config: &Config) -> Self {
        Acceptors {
            half: config.number("half", 100), // --config half=N
            site: label("acceptor"),
            intron: label("intron"),
        }
    }

    fn transcript(&mut self, t: &Transcript, record: &Record) {
        for &(start, _) in t.exons.iter().skip(1) {
            for (centre, l) in [(start, self.site), (start.saturating_sub(500), self.intron)] {
                if centre >= self.half && centre + self.half <= record.len {
                    emit(centre - self.half, centre + self.half, t.plus, l, "");
                }
            }
        }
    }
}

dnabert_plugin::task!(Acceptors);
