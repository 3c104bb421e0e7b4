//! A build without the `plugins` feature (the fuzz targets': they need no WebAssembly engine,
//! and wasmtime with Cranelift is a large part of an instrumented build). Loading a plugin is
//! refused with the reason, so no `Plugin` value ever exists and its other methods are never
//! reached: `never` cannot be constructed.

use std::path::Path;

use anyhow::{bail, Result};

use super::{Host, Limits};

pub struct Plugin {
    never: std::convert::Infallible,
    pub calls: u64,
    pub busy: std::time::Duration,
}

impl Plugin {
    pub fn load(path: &Path, _limits: Limits) -> Result<Self> {
        bail!(
            "{}: this dnabert was built without plugin support (cargo feature `plugins`)",
            path.display()
        )
    }

    pub fn host(&mut self) -> &mut Host {
        match self.never {}
    }

    pub fn path(&self) -> &Path {
        match self.never {}
    }

    pub fn exports(&mut self, _name: &str) -> bool {
        match self.never {}
    }

    pub fn call(&mut self, _export: &str, _input: &[u8], _at: &str) -> Result<()> {
        match self.never {}
    }

    pub fn call_optional(&mut self, _export: &str, _at: &str) -> Result<()> {
        match self.never {}
    }
}
