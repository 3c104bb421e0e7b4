//! Compiled plugins, cached so that a cluster's thousand tasks compile a plugin once per
//! machine type instead of once each: `$DNABERT_CACHE/plugins/SHA.cwasm` (default
//! `~/.cache/dnabert`), keyed by the plugin's bytes and wasmtime's compatibility hash (its
//! version, the target CPU's features and the engine's settings). `DNABERT_PLUGIN_CACHE=off`
//! compiles every time.
//!
//! A cached file is native code that wasmtime loads without recompiling, so the cache is only
//! as trusted as the folder it lives in: it is the user's own, written atomically, and a file
//! that fails to load is replaced.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

fn dir() -> Option<PathBuf> {
    match std::env::var("DNABERT_PLUGIN_CACHE") {
        Ok(v) if v == "off" || v == "0" => None,
        _ => Some(crate::remote::cache_root().join("plugins")),
    }
}

/// A `Hasher` into SHA-256, for wasmtime's compatibility hash.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = ShaHasher(Sha256::new());
    h.0.update(bytes);
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The module of `bytes` (binary or text), from the cache when it holds it.
pub fn module(engine: &Engine, bytes: &[u8]) -> Result<Module> {
    let Some(dir) = dir() else {
        return Module::new(engine, bytes).map_err(|e| anyhow!("{e:#}"));
    };
    let path = dir.join(format!("{}.cwasm", key(engine, bytes)));
    if path.is_file() {
        // SAFETY: the file was written by `precompile_module` of an engine with the same
        // compatibility hash (it is in the name), into the user's own cache; wasmtime checks
        // its header and refuses a mismatch, after which it is compiled again.
        if let Ok(m) = unsafe { Module::deserialize_file(engine, &path) } {
            return Ok(m);
        }
    }
    let module = Module::new(engine, bytes).map_err(|e| anyhow!("{e:#}"))?;
    // The cache is a convenience: a read-only or full disk only costs the next run a compile.
    if let Ok(compiled) = module.serialize() {
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = crate::io_util::write_atomic(&path, &compiled);
        }
    }
    Ok(module)
}
