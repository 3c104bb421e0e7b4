//! The guest side of dnabert's plugin interface, version 1 (docs/plugins.md): the `dnabert`
//! imports as safe functions, the records the host passes, parsed, and two macros that write a
//! plugin's exports. A dataset task:
//!
//! ```ignore
//! struct Tss { label: Label }
//! impl Task for Tss {
//!     fn start(_config: &Config) -> Self { Tss { label: label("tss") } }
//!     fn transcript(&mut self, t: &Transcript, record: &Record) { /* emit(...) */ }
//! }
//! dnabert_plugin::task!(Tss);
//! ```
//!
//! Coordinates are 0-based, end-exclusive.

use std::collections::BTreeMap;

mod host {
    #[link(wasm_import_module = "dnabert")]
    extern "C" {
        pub fn label(ptr: *const u8, len: usize) -> i32;
        pub fn emit(start: i64, end: i64, strand: i32, label: i32, gptr: *const u8, glen: usize);
        pub fn region(start: i64, end: i64);
        pub fn sequence(start: i64, end: i64, out: *mut u8);
        pub fn fail(ptr: *const u8, len: usize);
        pub fn log(ptr: *const u8, len: usize);
        pub fn cap(label: i32, max: i64);
        pub fn passes(n: i32);
        pub fn features(ptr: *const u8, len: usize);
    }
}

/// The interface version this crate speaks.
pub const ABI_VERSION: i32 = 1;

/// A declared label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(i32);

/// Declares a label (only from [`Task::start`]); the same name gives the same label.
pub fn label(name: &str) -> Label {
    Label(unsafe { host::label(name.as_ptr(), name.len()) })
}

/// At most `max` windows of `label` are kept (a seeded sample), instead of the host's
/// `--max-per-class`; may be called at any time, the last call counts.
pub fn cap(label: Label, max: u64) {
    unsafe { host::cap(label.0, max.min(i64::MAX as u64) as i64) }
}

/// Asks the host to stream the annotation and genome `n` times (1 to 3; only from
/// [`Task::start`]): [`Task::pass`] says which pass begins. For tasks that must see the whole
/// genome before they choose (a uniform sample over every chromosome).
pub fn passes(n: u32) {
    unsafe { host::passes(n as i32) }
}

/// Asks the host to send the annotation's lines of these types (comma-separated GFF types
/// such as `"CDS,five_prime_UTR"`, `bed` for a BED file's lines, `*` for all) to
/// [`Task::feature`] or [`Select::features`]; only from [`Task::start`] or [`Select::start`].
pub fn features(types: &str) {
    unsafe { host::features(types.as_ptr(), types.len()) }
}

/// Emits the window `[start, end)` of the current record with `label`; on the minus strand the
/// host writes its reverse complement. `group` keeps windows together in one split (empty: the
/// transcript's gene).
pub fn emit(start: u64, end: u64, plus: bool, label: Label, group: &str) {
    let strand = if plus { 1 } else { -1 };
    unsafe {
        host::emit(
            start as i64,
            end as i64,
            strand,
            label.0,
            group.as_ptr(),
            group.len(),
        )
    }
}

/// Chooses the region `[start, end)` of the current record to embed (selectors).
pub fn region(start: u64, end: u64) {
    unsafe { host::region(start as i64, end as i64) }
}

/// The bases `[start, end)` of the current record, as the FASTA has them (soft-masked bases
/// lowercase).
pub fn sequence(start: u64, end: u64) -> Vec<u8> {
    let mut out = vec![0u8; end.saturating_sub(start) as usize];
    unsafe { host::sequence(start as i64, end as i64, out.as_mut_ptr()) };
    out
}

/// Chooses each of `spans` (cut to `[0, len)`) as a region, sorted and with overlapping or
/// touching spans merged into one, so no base is embedded twice.
pub fn regions_merged(mut spans: Vec<(u64, u64)>, len: u64) {
    spans.iter_mut().for_each(|s| s.1 = s.1.min(len));
    spans.retain(|(s, e)| s < e);
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

/// Ends the run with `message` (the host names the plugin and the annotation line).
pub fn fail(message: &str) -> ! {
    unsafe { host::fail(message.as_ptr(), message.len()) };
    // The host never returns from `fail`.
    std::process::abort()
}

/// A line on dnabert's stderr.
pub fn log(message: &str) {
    unsafe { host::log(message.as_ptr(), message.len()) }
}

/// `--config KEY=VALUE` parameters.
#[derive(Debug, Default, Clone)]
pub struct Config(pub BTreeMap<String, String>);

impl Config {
    pub fn parse(text: &str) -> Self {
        Config(
            text.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// A number parameter, or `default`; a value that is not a number ends the run.
    /// A text parameter, or `default`.
    pub fn text<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.0.get(key).map_or(default, String::as_str)
    }

    pub fn number(&self, key: &str, default: u64) -> u64 {
        match self.0.get(key) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(&format!("--config {key}={v}: not a whole number"))),
        }
    }
}

/// A FASTA record (a chromosome).
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub id: String,
    pub len: u64,
}

/// A transcript of the annotation with its exons, sorted by start.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub id: String,
    pub gene: String,
    pub plus: bool,
    pub start: u64,
    pub end: u64,
    pub exons: Vec<(u64, u64)>,
    /// The annotation line it was read from.
    pub line: u64,
}

/// A line of the annotation (GFF3, GTF or BED) of a type the plugin asked for.
#[derive(Debug, Clone)]
pub struct Feature {
    /// GFF's type column (`gene`, `CDS`, …); `bed` for a BED line.
    pub kind: String,
    /// `+`, `-` or `.` (none).
    pub strand: char,
    pub start: u64,
    pub end: u64,
    /// The annotation line.
    pub line: u64,
    /// GFF3-style `key=value;key=value` (a GTF's pairs and a BED's name, score, col7, … too).
    pub attributes: String,
}

impl Feature {
    /// true unless on the minus strand.
    pub fn plus(&self) -> bool {
        self.strand != '-'
    }

    /// An attribute's value, GFF3's `%XX` escapes decoded.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_feature(line: &str) -> Option<Feature> {
    let f: Vec<&str> = line.splitn(7, '\t').collect();
    match f.as_slice() {
        ["feature", kind, strand, start, end, at, attributes] => Some(Feature {
            kind: (*kind).to_owned(),
            strand: strand.chars().next().unwrap_or('.'),
            start: number(start),
            end: number(end),
            line: number(at),
            attributes: (*attributes).to_owned(),
        }),
        _ => None,
    }
}

fn number(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("host sent '{s}' for a number")))
}

pub fn parse_record(line: &str) -> Option<Record> {
    let f: Vec<&str> = line.split('\t').collect();
    match f.as_slice() {
        ["record", id, len] => Some(Record {
            id: (*id).to_owned(),
            len: number(len),
        }),
        _ => None,
    }
}

/// The `pass N OF` line: (N, OF).
pub fn parse_pass(line: &str) -> Option<(u32, u32)> {
    match line.split('\t').collect::<Vec<_>>().as_slice() {
        ["pass", n, of] => Some((number(n) as u32, number(of) as u32)),
        _ => None,
    }
}

pub fn parse_transcript(line: &str) -> Option<Transcript> {
    let f: Vec<&str> = line.split('\t').collect();
    match f.as_slice() {
        ["transcript", id, gene, strand, start, end, exons, at] => Some(Transcript {
            id: (*id).to_owned(),
            gene: (*gene).to_owned(),
            plus: *strand == "+",
            start: number(start),
            end: number(end),
            exons: exons
                .split(',')
                .filter_map(|e| e.split_once('-'))
                .map(|(a, b)| (number(a), number(b)))
                .collect(),
            line: number(at),
        }),
        _ => None,
    }
}

/// A dataset task.
pub trait Task {
    fn start(config: &Config) -> Self;
    fn transcript(&mut self, t: &Transcript, record: &Record);
    /// Called before the transcripts of each record.
    fn record(&mut self, _record: &Record) {}
    /// Called after the transcripts of each record, while it is still current (`emit` and
    /// `sequence` work): for work that needs all of a record's transcripts.
    fn record_end(&mut self, _record: &Record) {}
    /// Called before pass `n` (from 0) of `of`, when the task asked for [`passes`].
    fn pass(&mut self, _n: u32, _of: u32) {}
    /// Each annotation line of the types asked for with [`features`], after the record's
    /// transcripts, in the file's order. An `emit` here without a group is grouped by the
    /// feature's gene_id, ID, Parent or BED name, else its own span.
    fn feature(&mut self, _f: &Feature, _record: &Record) {}
    fn finish(&mut self) {}
}

/// A region selector.
pub trait Select {
    fn new() -> Self;
    /// From the `--select-config` parameters; ask for [`features`] here.
    fn start(_config: &Config) -> Self
    where
        Self: Sized,
    {
        Self::new()
    }
    fn record(&mut self, record: &Record, transcripts: &[Transcript]);
    /// After [`Select::record`]: the record's annotation lines of the types asked for with
    /// [`features`], in the file's order.
    fn features(&mut self, _record: &Record, _features: &[Feature]) {}
}

/// Takes back the input the host wrote at `ptr` (allocated by `dnabert_alloc`).
///
/// # Safety
/// `ptr` and `len` are what the host was given by `dnabert_alloc(len)`.
pub unsafe fn take_input(ptr: *mut u8, len: usize) -> String {
    let bytes = Vec::from_raw_parts(ptr, len, len.max(1));
    String::from_utf8(bytes).unwrap_or_else(|_| fail("host sent text that is not UTF-8"))
}

/// Room for `len` bytes of input, owned by [`take_input`] afterwards.
pub fn alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// A panic ends the run with its message instead of a bare trap.
pub fn panics_fail() {
    std::panic::set_hook(Box::new(|info| fail(&info.to_string())));
}

/// The common exports.
#[macro_export]
macro_rules! common_exports {
    () => {
        #[no_mangle]
        pub extern "C" fn dnabert_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        #[no_mangle]
        pub extern "C" fn dnabert_alloc(len: usize) -> *mut u8 {
            $crate::alloc(len)
        }
    };
}

/// Writes the exports of a dataset task `T: Task`.
#[macro_export]
macro_rules! task {
    ($t:ty) => {
        $crate::common_exports!();
        thread_local! {
            static STATE: ::std::cell::RefCell<Option<($t, $crate::Record)>> =
                const { ::std::cell::RefCell::new(None) };
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_task_start(ptr: *mut u8, len: usize) {
            $crate::panics_fail();
            let text = $crate::take_input(ptr, len);
            let task = <$t as $crate::Task>::start(&$crate::Config::parse(&text));
            STATE.with(|s| *s.borrow_mut() = Some((task, $crate::Record::default())));
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_task_record(ptr: *mut u8, len: usize) {
            let text = $crate::take_input(ptr, len);
            let r = $crate::parse_record(text.trim_end())
                .unwrap_or_else(|| $crate::fail("host sent a bad record line"));
            STATE.with(|s| {
                if let Some((task, record)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::record(task, &r);
                    *record = r;
                }
            });
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_task_transcript(ptr: *mut u8, len: usize) {
            let text = $crate::take_input(ptr, len);
            let t = $crate::parse_transcript(text.trim_end())
                .unwrap_or_else(|| $crate::fail("host sent a bad transcript line"));
            STATE.with(|s| {
                if let Some((task, record)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::transcript(task, &t, record);
                }
            });
        }
        #[no_mangle]
        pub extern "C" fn dnabert_task_record_end() {
            STATE.with(|s| {
                if let Some((task, record)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::record_end(task, record);
                }
            });
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_task_pass(ptr: *mut u8, len: usize) {
            let text = $crate::take_input(ptr, len);
            let (n, of) = $crate::parse_pass(text.trim_end())
                .unwrap_or_else(|| $crate::fail("host sent a bad pass line"));
            STATE.with(|s| {
                if let Some((task, _)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::pass(task, n, of);
                }
            });
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_task_feature(ptr: *mut u8, len: usize) {
            let text = $crate::take_input(ptr, len);
            let f = $crate::parse_feature(text.trim_end_matches('\n'))
                .unwrap_or_else(|| $crate::fail("host sent a bad feature line"));
            STATE.with(|s| {
                if let Some((task, record)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::feature(task, &f, record);
                }
            });
        }
        #[no_mangle]
        pub extern "C" fn dnabert_task_finish() {
            STATE.with(|s| {
                if let Some((task, _)) = s.borrow_mut().as_mut() {
                    <$t as $crate::Task>::finish(task);
                }
            });
        }
    };
}

/// Writes the exports of a region selector `S: Select`.
#[macro_export]
macro_rules! select {
    ($s:ty) => {
        $crate::common_exports!();
        thread_local! {
            static STATE: ::std::cell::RefCell<Option<$s>> = const { ::std::cell::RefCell::new(None) };
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_select_start(ptr: *mut u8, len: usize) {
            $crate::panics_fail();
            let text = $crate::take_input(ptr, len);
            let sel = <$s as $crate::Select>::start(&$crate::Config::parse(&text));
            STATE.with(|s| *s.borrow_mut() = Some(sel));
        }
        #[no_mangle]
        pub unsafe extern "C" fn dnabert_select_record(ptr: *mut u8, len: usize) {
            $crate::panics_fail();
            let text = $crate::take_input(ptr, len);
            let mut lines = text.lines();
            let record = lines
                .next()
                .and_then($crate::parse_record)
                .unwrap_or_else(|| $crate::fail("host sent a bad record line"));
            let (mut transcripts, mut features) = (vec![], vec![]);
            for l in lines {
                if let Some(t) = $crate::parse_transcript(l) {
                    transcripts.push(t);
                } else if let Some(f) = $crate::parse_feature(l) {
                    features.push(f);
                }
            }
            STATE.with(|s| {
                let mut s = s.borrow_mut();
                let sel = s.get_or_insert_with(<$s as $crate::Select>::new);
                <$s as $crate::Select>::record(sel, &record, &transcripts);
                if !features.is_empty() {
                    <$s as $crate::Select>::features(sel, &record, &features);
                }
            });
        }
    };
}
