//! The plugin runtime: wasmtime, with fuel, a memory limiter and only the `dnabert` imports.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::{Caller, Engine, Extern, Linker, Memory, Module, Store, TypedFunc};

use super::{abi, cache, imports, Host, Limits};

/// A loaded, instantiated plugin.
pub struct Plugin {
    store: Store<Host>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    instance: wasmtime::Instance,
    path: PathBuf,
    fuel: u64,
    limits: Limits,
    /// Calls into the plugin so far, and the time spent in them (host functions included).
    pub calls: u64,
    pub busy: std::time::Duration,
}

impl Plugin {
    /// Loads `path` (a `.wasm` binary, or `.wat` text), checks its imports and interface
    /// version, and instantiates it under `limits`.
    pub fn load(path: &Path, limits: Limits) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("{}: cannot read plugin", path.display()))?;
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|e| anyhow!("cannot start wasmtime: {e}"))?;
        let module = cache::module(&engine, &bytes)
            .with_context(|| format!("{}: not a WebAssembly module", path.display()))?;
        check_imports(&module, path)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let host = Host {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(limits.memory)
                .memories(1)
                .tables(4)
                .table_elements(1 << 20)
                .instances(1)
                .trap_on_grow_failure(true)
                .build(),
            name,
            labels: vec![],
            caps: vec![],
            passes: 1,
            declaring: false,
            features: Default::default(),
            record: None,
            windows: vec![],
            regions: vec![],
            failure: None,
        };
        let mut store = Store::new(&engine, host);
        store.limiter(|h| &mut h.limits);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| anyhow!("cannot set fuel: {e}"))?;
        let mut linker = Linker::new(&engine);
        imports::define(&mut linker)?;
        let instance = linker.instantiate(&mut store, &module).map_err(|e| {
            anyhow!(
                "{}: cannot start the plugin: {}",
                path.display(),
                limit_hint(&e.root_cause().to_string(), limits)
            )
        })?;
        let memory = instance.get_memory(&mut store, "memory").with_context(|| {
            format!(
                "{}: the plugin exports no memory named 'memory' (docs/plugins.md)",
                path.display()
            )
        })?;
        let version = instance
            .get_typed_func::<(), i32>(&mut store, abi::VERSION_EXPORT)
            .map_err(|_| {
                anyhow!(
                    "{}: no `{}() -> i32` export: not a dnabert plugin (docs/plugins.md)",
                    path.display(),
                    abi::VERSION_EXPORT
                )
            })?
            .call(&mut store, ())
            .map_err(|e| anyhow!("{}: {}: {e:#}", path.display(), abi::VERSION_EXPORT))?;
        if version != abi::VERSION {
            bail!(
                "{}: built for plugin interface version {version}; this dnabert speaks version {} \
                 (rebuild the plugin against docs/plugins.md of this release)",
                path.display(),
                abi::VERSION
            );
        }
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, abi::ALLOC_EXPORT)
            .map_err(|_| {
                anyhow!(
                    "{}: no `{}(len: i32) -> i32` export (docs/plugins.md)",
                    path.display(),
                    abi::ALLOC_EXPORT
                )
            })?;
        Ok(Self {
            store,
            memory,
            alloc,
            instance,
            path: path.to_owned(),
            fuel: limits.fuel,
            limits,
            calls: 0,
            busy: std::time::Duration::ZERO,
        })
    }

    pub fn host(&mut self) -> &mut Host {
        self.store.data_mut()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the plugin exports `name`.
    pub fn exports(&mut self, name: &str) -> bool {
        self.instance.get_func(&mut self.store, name).is_some()
    }

    /// Calls `export(ptr, len)` with `input` copied into the plugin's memory; `at` says what
    /// was being processed, for the error. A fresh fuel budget for every call.
    pub fn call(&mut self, export: &str, input: &[u8], at: &str) -> Result<()> {
        let f = self
            .instance
            .get_typed_func::<(i32, i32), ()>(&mut self.store, export)
            .map_err(|e| {
                anyhow!(
                    "{}: no `{export}(ptr: i32, len: i32)` export: {e}",
                    self.path.display()
                )
            })?;
        self.store
            .set_fuel(self.fuel)
            .map_err(|e| anyhow!("cannot set fuel: {e}"))?;
        let len = i32::try_from(input.len())
            .map_err(|_| anyhow!("{at}: {} bytes are too many for a plugin", input.len()))?;
        let ptr = self
            .alloc
            .call(&mut self.store, len)
            .map_err(|e| self.error(abi::ALLOC_EXPORT, at, e))?;
        let dest = usize::try_from(ptr)
            .ok()
            .and_then(|p| Some(p..p.checked_add(input.len())?))
            .filter(|r| r.end <= self.memory.data_size(&self.store));
        let Some(dest) = dest else {
            bail!(
                "{}: {} returned {ptr}, not room for {} bytes in its memory ({at})",
                self.path.display(),
                abi::ALLOC_EXPORT,
                input.len()
            );
        };
        self.memory.data_mut(&mut self.store)[dest].copy_from_slice(input);
        let started = std::time::Instant::now();
        let done = f.call(&mut self.store, (ptr, len));
        self.calls += 1;
        self.busy += started.elapsed();
        done.map_err(|e| self.error(export, at, e))
    }

    /// Calls an export without arguments, if the plugin has it.
    pub fn call_optional(&mut self, export: &str, at: &str) -> Result<()> {
        let Ok(f) = self
            .instance
            .get_typed_func::<(), ()>(&mut self.store, export)
        else {
            return Ok(());
        };
        self.store
            .set_fuel(self.fuel)
            .map_err(|e| anyhow!("cannot set fuel: {e}"))?;
        let started = std::time::Instant::now();
        let done = f.call(&mut self.store, ());
        self.calls += 1;
        self.busy += started.elapsed();
        done.map_err(|e| self.error(export, at, e))
    }

    /// A trap or failure as the user should read it.
    fn error(&mut self, export: &str, at: &str, e: wasmtime::Error) -> anyhow::Error {
        let why = match (
            self.store.data_mut().failure.take(),
            e.downcast_ref::<wasmtime::Trap>(),
        ) {
            (Some(reason), _) => reason,
            (None, Some(wasmtime::Trap::OutOfFuel)) => format!(
                "ran out of fuel ({} units for one call: a loop that never ends? raise \
                 --plugin-fuel if the work is real)",
                self.fuel
            ),
            (None, Some(wasmtime::Trap::StackOverflow)) => {
                "overflowed its stack (recursion too deep)".to_owned()
            }
            (None, Some(trap)) => format!("trapped: {trap}"),
            (None, None) => limit_hint(&e.root_cause().to_string(), self.limits),
        };
        anyhow!(
            "plugin {} failed in {export} ({at}): {why}",
            self.path.display()
        )
    }
}

/// Says which flag to raise when wasmtime's message is a limit's.
fn limit_hint(message: &str, limits: Limits) -> String {
    if message.contains("memory") && (message.contains("limit") || message.contains("grow")) {
        format!(
            "{message}: the plugin asked for more memory than --plugin-memory allows ({} MiB)",
            limits.memory >> 20
        )
    } else {
        message.to_owned()
    }
}

/// Refuses any import that is not one of ours, naming it, before anything runs.
fn check_imports(module: &Module, path: &Path) -> Result<()> {
    for import in module.imports() {
        let known = import.module() == abi::IMPORT_MODULE && abi::IMPORTS.contains(&import.name());
        if !known {
            bail!(
                "{}: the plugin imports '{}'.'{}', which dnabert does not give plugins: they get \
                 no filesystem, network, clock or environment (WASI), only the `{}` functions \
                 of docs/plugins.md ({})",
                path.display(),
                import.module(),
                import.name(),
                abi::IMPORT_MODULE,
                abi::IMPORTS.join(", ")
            );
        }
    }
    Ok(())
}

/// The plugin's memory, for the host functions.
pub(super) fn memory(caller: &mut Caller<'_, Host>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("the plugin exports no memory")),
    }
}

/// Ends the call with `why`, kept for the error message.
pub(super) fn refuse<T>(caller: &mut Caller<'_, Host>, why: String) -> wasmtime::Result<T> {
    caller.data_mut().failure = Some(why.clone());
    Err(wasmtime::Error::msg(why))
}

/// `len` bytes of the plugin's memory at `ptr`, copied out.
pub(super) fn read_bytes(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let mem = memory(caller)?;
    let range = usize::try_from(ptr)
        .ok()
        .zip(usize::try_from(len).ok())
        .and_then(|(p, l)| Some(p..p.checked_add(l)?));
    match range.and_then(|r| mem.data(&*caller).get(r)) {
        Some(b) => Ok(b.to_vec()),
        None => refuse(
            caller,
            format!("passed {len} bytes at {ptr}, outside its memory"),
        ),
    }
}

pub(super) fn read_str(
    caller: &mut Caller<'_, Host>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    let b = read_bytes(caller, ptr, len)?;
    match String::from_utf8(b) {
        Ok(s) => Ok(s),
        Err(_) => refuse(caller, format!("passed text at {ptr} that is not UTF-8")),
    }
}
