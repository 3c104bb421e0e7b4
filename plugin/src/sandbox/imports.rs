//! The host side of the `dnabert` imports (`abi::IMPORTS`): what a plugin's calls to
//! `label`, `emit`, `region`, `sequence`, `fail` and `log` do, each checked against the record
//! under way and the ABI's limits; a bad call ends the plugin's call with the reason.

use anyhow::{anyhow, Result};
use wasmtime::{Caller, Linker};

use super::abi::*;
use super::runtime::{read_bytes, read_str, refuse};
use super::Host;

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

pub fn define(linker: &mut Linker<Host>) -> Result<()> {
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
    // passes(n): the task reads the genome n times (1..=MAX_PASSES), in dnabert_task_start.
    linker
        .func_wrap(m, "passes", |mut c: Caller<'_, Host>, n: i32| {
            if !c.data().declaring {
                return refuse(&mut c, format!("asked for passes outside {TASK_START}"));
            }
            match u32::try_from(n) {
                Ok(n) if (1..=MAX_PASSES).contains(&n) => {
                    c.data_mut().passes = n;
                    Ok(())
                }
                _ => refuse(
                    &mut c,
                    format!("asked for {n} passes over the genome (1 to {MAX_PASSES})"),
                ),
            }
        })
        .map_err(e)?;
    // features(ptr, len): stream the annotation lines of these types (comma-separated, `*`
    // for all) to the plugin; in a start export.
    linker
        .func_wrap(
            m,
            "features",
            |mut c: Caller<'_, Host>, ptr: i32, len: i32| {
                let list = read_str(&mut c, ptr, len)?;
                if !c.data().declaring {
                    return refuse(
                        &mut c,
                        format!("asked for features outside {TASK_START} or {SELECT_START}"),
                    );
                }
                if list.contains(['\t', '\n']) || list.split(',').all(|t| t.trim().is_empty()) {
                    return refuse(
                        &mut c,
                        format!(
                            "asked for features {list:?}: give types separated by commas, or *"
                        ),
                    );
                }
                c.data_mut().features.add(&list);
                Ok(())
            },
        )
        .map_err(e)?;
    // cap(label, max): at most `max` windows of the label, a seeded sample, instead of
    // --max-per-class; at any time (the last call counts).
    linker
        .func_wrap(m, "cap", |mut c: Caller<'_, Host>, label: i32, max: i64| {
            let n = c.data().labels.len();
            let Some(label) = usize::try_from(label).ok().filter(|l| *l < n) else {
                return refuse(
                    &mut c,
                    format!("capped label {label}, but declared {n} labels"),
                );
            };
            let Ok(max) = usize::try_from(max) else {
                return refuse(&mut c, format!("capped a label at {max} windows"));
            };
            let caps = &mut c.data_mut().caps;
            caps.resize(n, None);
            if let Some(slot) = caps.get_mut(label) {
                *slot = Some(max);
            }
            Ok(())
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
                let mem = super::runtime::memory(&mut c)?;
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
