//! The plugin interface, version 1: a WebAssembly **core module** (not a component), so that
//! any compiler that emits wasm32 works with no bindings generator: Rust's
//! `wasm32-unknown-unknown`, clang `--target=wasm32`, AssemblyScript, or hand-written WAT.
//! docs/plugins.md is the guide; this file is the definition.
//!
//! Coordinates are 0-based and end-exclusive everywhere (BED's and Python's convention);
//! every text the host passes is UTF-8, one record per line, fields separated by tabs:
//!
//! ```text
//! record      ID  LENGTH
//! transcript  ID  GENE  STRAND(+|-)  START  END  EXONS(start-end,start-end,…)  LINE
//! pass        N  OF
//! feature     TYPE  STRAND(+|-|.)  START  END  LINE  ATTRIBUTES(key=value;key=value)
//! ```
//!
//! `feature` lines (any GFF3/GTF/BED line: `sandbox::features`) are sent only to a plugin that
//! asked for them with the `features` import, and only of the types it named.
//!
//! Exports (all plugins): `memory`; `dnabert_abi_version() -> i32` (returns 1);
//! `dnabert_alloc(len: i32) -> i32` (room for `len` bytes the host writes its input into).
//! Dataset tasks: `dnabert_task_start(ptr, len)` (optional: the `--config key=value` lines;
//! declare labels here), `dnabert_task_record(ptr, len)` (optional: a `record` line, before
//! that record's transcripts), `dnabert_task_transcript(ptr, len)` (one `transcript` line),
//! `dnabert_task_record_end()` (optional: after a record's transcripts, the record still
//! current), `dnabert_task_pass(ptr, len)` (optional: a `pass` line before each pass over the
//! genome, when the task asked for more than one with `passes`), `dnabert_task_finish()`
//! (optional), `dnabert_task_feature(ptr, len)` (one `feature` line, after the record's
//! transcripts; needed when the task asked for features). Region selectors:
//! `dnabert_select_start(ptr, len)` (optional: the `--select-config` lines),
//! `dnabert_select_record(ptr, len)`: the `record` line, then the `transcript` lines on it when
//! `--annotation` is given, then the `feature` lines it asked for.
//!
//! Imports, from module `dnabert`: see [`IMPORTS`]; their host side is `sandbox::imports`.

pub const VERSION: i32 = 1;
pub const VERSION_EXPORT: &str = "dnabert_abi_version";
pub const ALLOC_EXPORT: &str = "dnabert_alloc";
pub const TASK_START: &str = "dnabert_task_start";
pub const TASK_RECORD: &str = "dnabert_task_record";
pub const TASK_TRANSCRIPT: &str = "dnabert_task_transcript";
pub const TASK_RECORD_END: &str = "dnabert_task_record_end";
pub const TASK_PASS: &str = "dnabert_task_pass";
pub const TASK_FINISH: &str = "dnabert_task_finish";
pub const TASK_FEATURE: &str = "dnabert_task_feature";
pub const SELECT_START: &str = "dnabert_select_start";
pub const SELECT_RECORD: &str = "dnabert_select_record";

pub const IMPORT_MODULE: &str = "dnabert";
/// Every function a plugin may import.
pub const IMPORTS: [&str; 9] = [
    "label", "emit", "region", "sequence", "fail", "log", "cap", "passes", "features",
];

/// Passes over the genome a task may ask for (a task that samples the whole genome uniformly
/// needs one to count, one to choose; a third when what it counts depends on the annotation
/// of every chromosome).
pub const MAX_PASSES: u32 = 3;

/// Labels a task may declare (each gets its own seeded stream for the class cap).
pub const MAX_LABELS: usize = 32;
/// The longest window a task may emit, in bases.
pub const MAX_WINDOW: u64 = 1_000_000;
/// Emits (windows or regions) one call may make.
pub const MAX_EMITS_PER_CALL: usize = 1_000_000;

/// A window a task emitted on the current record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    pub plus: bool,
    pub label: usize,
    pub group: String,
}

/// A region a selector chose on the current record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

/// The `record` line.
pub fn record_line(id: &str, len: usize) -> String {
    format!("record\t{id}\t{len}\n")
}

/// The `pass` line: pass `n` (from 0) of `of`.
pub fn pass_line(n: u32, of: u32) -> String {
    format!("pass\t{n}\t{of}\n")
}

/// The `transcript` line of `t` (read 1-based inclusive from GFF/GTF; given 0-based,
/// end-exclusive).
pub fn transcript_line(t: &crate::splice::annotation::Transcript) -> String {
    let start = t.exons.first().map_or(0, |e| e.0.saturating_sub(1));
    let end = t.exons.last().map_or(0, |e| e.1);
    let exons: Vec<String> = t
        .exons
        .iter()
        .map(|(s, e)| format!("{}-{e}", s.saturating_sub(1)))
        .collect();
    format!(
        "transcript\t{}\t{}\t{}\t{start}\t{end}\t{}\t{}\n",
        t.id,
        t.gene,
        if t.plus { '+' } else { '-' },
        exons.join(","),
        t.first_line()
    )
}

/// The `feature` line of `f`.
pub fn feature_line(f: &super::features::Feature) -> String {
    format!(
        "feature\t{}\t{}\t{}\t{}\t{}\t{}\n",
        f.kind, f.strand, f.start, f.end, f.line, f.attributes
    )
}
