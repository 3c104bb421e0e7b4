//! User plugins: WebAssembly core modules run by wasmtime in a sandbox. Two kinds, one
//! interface (`abi`, documented for plugin authors in docs/plugins.md): a **dataset task**
//! (`make-dataset`: labelled windows from a genome and its annotation) and a **region
//! selector** (`embed --select`: which parts of each record to embed).
//!
//! The sandbox: a plugin may import only the `dnabert` functions of `abi` (no WASI: no files,
//! network, clock or environment; an import of anything else is refused before the plugin
//! runs); its memory is capped (`--plugin-memory`, through the store's limiter: a plugin that
//! grows past it traps); each call into it gets a fuel budget (`--plugin-fuel`, roughly one
//! unit per WebAssembly instruction: a plugin that loops forever is stopped when it runs out).
//! A trap, a plugin's own `fail`, or a bad emit ends the run with an error naming the plugin,
//! the export and the annotation line being processed; outputs are written only after the
//! plugin finished, so nothing half-written is left.

pub mod abi;
mod cache;
pub mod dataset;
pub mod select;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use wasmtime::{Caller, Engine, Extern, Linker, Memory, Module, Store, StoreLimits, TypedFunc};

/// What a plugin may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of linear memory (all memories, tables aside).
    pub memory: usize,
    /// Fuel per call into the plugin.
    pub fuel: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory: 256 << 20,
            fuel: DEFAULT_FUEL,
        }
    }
}

/// About ten seconds of WebAssembly per call on a 2020s core: far more than a task needs for
/// one transcript, little enough that a runaway plugin ends soon.
pub const DEFAULT_FUEL: u64 = 20_000_000_000;

/// The flags every plugin-running command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Memory a plugin may use, in MiB; a plugin that asks for more traps.
    #[arg(long, default_value_t = 256)]
    pub plugin_memory: usize,
    /// Fuel per call into a plugin (about one unit per WebAssembly instruction); a plugin
    /// that runs out (a loop that never ends) is stopped with an error.
    #[arg(long, default_value_t = DEFAULT_FUEL)]
    pub plugin_fuel: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Result<Limits> {
        if self.plugin_memory == 0 || self.plugin_memory > 4096 {
            bail!(
                "--plugin-memory {} MiB: give 1 to 4096 (a wasm32 plugin cannot address more)",
                self.plugin_memory
            );
        }
        if self.plugin_fuel == 0 {
            bail!("--plugin-fuel 0 would stop every plugin at its first instruction");
        }
        Ok(Limits {
            memory: self.plugin_memory << 20,
            fuel: self.plugin_fuel,
        })
    }
}

/// The host's side of one plugin instance: what the `dnabert` imports read and write.
pub struct Host {
    limits: StoreLimits,
    /// The plugin's file name, for messages.
    pub name: String,
    /// Declared labels (dataset tasks), in declaration order.
    pub labels: Vec<String>,
    /// Labels may be declared only from `dnabert_task_start`.
    pub declaring: bool,
    /// The record being processed: its id and bases.
    pub record: Option<(String, Vec<u8>)>,
    /// What the plugin emitted in the call under way.
    pub windows: Vec<abi::Window>,
    pub regions: Vec<abi::Region>,
    /// The reason the plugin gave with `fail`, or the host's reason for a trap it raised.
    pub failure: Option<String>,
}

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
            declaring: false,
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
        abi::define_imports(&mut linker)?;
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
        f.call(&mut self.store, ())
            .map_err(|e| self.error(export, at, e))
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
fn memory(caller: &mut Caller<'_, Host>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("the plugin exports no memory")),
    }
}

/// Ends the call with `why`, kept for the error message.
fn refuse<T>(caller: &mut Caller<'_, Host>, why: String) -> wasmtime::Result<T> {
    caller.data_mut().failure = Some(why.clone());
    Err(wasmtime::Error::msg(why))
}

/// `len` bytes of the plugin's memory at `ptr`, copied out.
fn read_bytes(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
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

fn read_str(caller: &mut Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    let b = read_bytes(caller, ptr, len)?;
    match String::from_utf8(b) {
        Ok(s) => Ok(s),
        Err(_) => refuse(caller, format!("passed text at {ptr} that is not UTF-8")),
    }
}
