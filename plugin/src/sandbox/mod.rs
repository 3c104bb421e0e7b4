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

//!
//! The WebAssembly engine is the `plugins` cargo feature (on by default); a build without it
//! (the fuzz targets', which need no engine) refuses to load a plugin (`unavailable`).

pub mod abi;
pub mod dataset;
pub mod features;
pub mod select;

#[cfg(feature = "plugins")]
mod cache;
#[cfg(feature = "plugins")]
mod imports;
#[cfg(feature = "plugins")]
mod runtime;
#[cfg(feature = "plugins")]
pub use runtime::Plugin;
#[cfg(not(feature = "plugins"))]
mod unavailable;
#[cfg(not(feature = "plugins"))]
pub use unavailable::Plugin;

use anyhow::{bail, Result};

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
    #[cfg(feature = "plugins")]
    limits: wasmtime::StoreLimits,
    /// The plugin's file name, for messages.
    pub name: String,
    /// Declared labels (dataset tasks), in declaration order.
    pub labels: Vec<String>,
    /// A label's own cap (`cap`), by label index; else --max-per-class.
    pub caps: Vec<Option<usize>>,
    /// Passes over the genome (`passes`, from `dnabert_task_start`; 1 unless asked).
    pub passes: u32,
    /// Labels, passes and features may be declared only from `dnabert_task_start` (features
    /// from `dnabert_select_start` too).
    pub declaring: bool,
    /// The feature types the plugin asked for (`features`); none unless it asks.
    pub features: features::Wanted,
    /// The record being processed: its id and bases.
    pub record: Option<(String, Vec<u8>)>,
    /// What the plugin emitted in the call under way.
    pub windows: Vec<abi::Window>,
    pub regions: Vec<abi::Region>,
    /// The reason the plugin gave with `fail`, or the host's reason for a trap it raised.
    pub failure: Option<String>,
}

/// `--config KEY=VALUE` arguments as the text a plugin's start export reads: one per line.
pub fn config_text(flag: &str, pairs: &[String]) -> Result<String> {
    let mut config = String::new();
    for kv in pairs {
        match kv.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() && !kv.contains('\n') => {
                config.push_str(kv);
                config.push('\n');
            }
            _ => bail!("{flag} {kv:?}: expected KEY=VALUE on one line"),
        }
    }
    Ok(config)
}
