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
//! ```
//!
//! Exports (all plugins): `memory`; `dnabert_abi_version() -> i32` (returns 1);
//! `dnabert_alloc(len: i32) -> i32` (room for `len` bytes the host writes its input into).
//! Dataset tasks: `dnabert_task_start(ptr, len)` (optional: the `--config key=value` lines;
//! declare labels here), `dnabert_task_record(ptr, len)` (optional: a `record` line, before
//! that record's transcripts), `dnabert_task_transcript(ptr, len)` (one `transcript` line),
//! `dnabert_task_finish()` (optional). Region selectors: `dnabert_select_record(ptr, len)`: the
//! `record` line, then the `transcript` lines on it when `--annotation` is given.
//!
//! Imports, from module `dnabert`: see [`IMPORTS`] and the functions below.

use anyhow::{anyhow, Result};
use wasmtime::{Caller, Linker};

use super::{read_bytes, read_str, refuse, Host};

pub const VERSION: i32 = 1;
pub const VERSION_EXPORT: &str = "dnabert_abi_version";
pub const ALLOC_EXPORT: &str = "dnabert_alloc";
pub const TASK_START: &str = "dnabert_task_start";
pub const TASK_RECORD: &str = "dnabert_task_record";
pub const TASK_TRANSCRIPT: &str = "dnabert_task_transcript";
pub const TASK_FINISH: &str = "dnabert_task_finish";
pub const SELECT_RECORD: &str = "dnabert_select_record";

pub const IMPORT_MODULE: &str = "dnabert";
/// Every function a plugin may import.
pub const IMPORTS: [&str; 6] = ["label", "emit", "region", "sequence", "fail", "log"];

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
        t.lines.first().copied().unwrap_or(0)
    )
}

/// The current record's length, or the refusal when there is none.
fn record_len(caller: &mut Caller<'_, Host>, what: &str) -> wasmtime::Result<u64> {
    match &caller.data().record {
        Some((_, seq)) => Ok(seq.len() as u64),
        None => refuse(caller, format!("called {what} outside a record")),
    }
}

/// `[start, end)` on the current record, or the refusal.
fn span(
    caller: &mut Caller<'_, Host>,
    what: &str,
    start: i64,
    end: i64,
) -> wasmtime::Result<(u64, u64)> {
    let len = record_len(caller, what)?;
    let id = caller
        .data()
        .record
        .as_ref()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    match (u64::try_from(start), u64::try_from(end)) {
        (Ok(s), Ok(e)) if s < e && e <= len => Ok((s, e)),
        _ => refuse(
            caller,
            format!("{what} [{start}, {end}) is not inside record '{id}' ({len} bases)"),
        ),
    }
}

pub fn define_imports(linker: &mut Linker<Host>) -> Result<()> {
    let m = IMPORT_MODULE;
    let e = |e: wasmtime::Error| anyhow!("cannot define the plugin imports: {e}");
    // label(ptr, len) -> index: declares a label (dataset tasks, in dnabert_task_start).
    linker
        .func_wrap(m, "label", |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
            let name = read_str(&mut c, ptr, len)?;
            if !c.data().declaring {
                return refuse(
                    &mut c,
                    format!("declared label '{name}' outside {TASK_START}"),
                );
            }
            if name.is_empty() || name.contains(['\t', '\n']) {
                return refuse(
                    &mut c,
                    format!("label {name:?} is empty or holds a tab or newline"),
                );
            }
            let labels = &mut c.data_mut().labels;
            if let Some(i) = labels.iter().position(|l| *l == name) {
                return Ok(i as i32);
            }
            if labels.len() == MAX_LABELS {
                return refuse(&mut c, format!("declared more than {MAX_LABELS} labels"));
            }
            labels.push(name);
            Ok(labels.len() as i32 - 1)
        })
        .map_err(e)?;
    // emit(start, end, strand, label, group_ptr, group_len): a window on the current record.
    linker
        .func_wrap(
            m,
            "emit",
            |mut c: Caller<'_, Host>,
             start: i64,
             end: i64,
             strand: i32,
             label: i32,
             gptr: i32,
             glen: i32| {
                let (s, e) = span(&mut c, "emitted window", start, end)?;
                if e - s > MAX_WINDOW {
                    return refuse(
                        &mut c,
                        format!("emitted a window of {} bases (at most {MAX_WINDOW})", e - s),
                    );
                }
                let plus = match strand {
                    1 => true,
                    -1 => false,
                    _ => {
                        return refuse(
                            &mut c,
                            format!("emitted strand {strand} (1 for +, -1 for -)"),
                        )
                    }
                };
                let n = c.data().labels.len();
                let Some(label) = usize::try_from(label).ok().filter(|l| *l < n) else {
                    return refuse(
                        &mut c,
                        format!("emitted label {label}, but declared {n} labels"),
                    );
                };
                let group = if glen == 0 {
                    String::new()
                } else {
                    read_str(&mut c, gptr, glen)?
                };
                if group.contains(['\t', '\n']) {
                    return refuse(
                        &mut c,
                        format!("emitted group {group:?} with a tab or newline"),
                    );
                }
                if c.data().windows.len() == MAX_EMITS_PER_CALL {
                    return refuse(
                        &mut c,
                        format!("emitted more than {MAX_EMITS_PER_CALL} windows in one call"),
                    );
                }
                c.data_mut().windows.push(Window {
                    start: s,
                    end: e,
                    plus,
                    label,
                    group,
                });
                Ok(())
            },
        )
        .map_err(e)?;
    // region(start, end): a region of the current record to embed (selectors).
    linker
        .func_wrap(
            m,
            "region",
            |mut c: Caller<'_, Host>, start: i64, end: i64| {
                let (s, e) = span(&mut c, "region", start, end)?;
                if c.data().regions.len() == MAX_EMITS_PER_CALL {
                    return refuse(
                        &mut c,
                        format!("chose more than {MAX_EMITS_PER_CALL} regions in one call"),
                    );
                }
                c.data_mut().regions.push(Region { start: s, end: e });
                Ok(())
            },
        )
        .map_err(e)?;
    // sequence(start, end, out_ptr): the current record's bases [start, end), as stored
    // (case kept), copied to out_ptr.
    linker
        .func_wrap(
            m,
            "sequence",
            |mut c: Caller<'_, Host>, start: i64, end: i64, out: i32| {
                let (s, e) = span(&mut c, "sequence", start, end)?;
                let mem = super::memory(&mut c)?;
                let bases: Vec<u8> = match &c.data().record {
                    Some((_, seq)) => seq[s as usize..e as usize].to_vec(),
                    None => vec![],
                };
                let dest = usize::try_from(out)
                    .ok()
                    .and_then(|o| Some(o..o.checked_add(bases.len())?));
                let (data, _) = mem.data_and_store_mut(&mut c);
                match dest.and_then(|d| data.get_mut(d)) {
                    Some(d) => {
                        d.copy_from_slice(&bases);
                        Ok(())
                    }
                    None => refuse(
                        &mut c,
                        format!(
                            "asked for {} bases at {out}, outside its memory",
                            bases.len()
                        ),
                    ),
                }
            },
        )
        .map_err(e)?;
    // fail(ptr, len): ends the run with the plugin's message.
    linker
        .func_wrap(
            m,
            "fail",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32| -> wasmtime::Result<()> {
                let b = read_bytes(&mut c, ptr, len)?;
                let why = format!("it said: {}", String::from_utf8_lossy(&b));
                refuse(&mut c, why)
            },
        )
        .map_err(e)?;
    // log(ptr, len): a line on stderr, prefixed with the plugin's name.
    linker
        .func_wrap(m, "log", |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
            let b = read_bytes(&mut c, ptr, len.min(4096))?;
            eprintln!(
                "{}: {}",
                c.data().name,
                String::from_utf8_lossy(&b).trim_end()
            );
            Ok(())
        })
        .map_err(e)?;
    Ok(())
}
