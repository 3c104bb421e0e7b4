//! What the embed pipeline runs its batches on, behind one trait: tract on an ONNX graph
//! (`tract::Engine`, cargo feature `onnx`), the built-in encoder on CPU kernels
//! (`embed::native`), or the training engine's encoder on a `Backend` (`embed::backend_engine`).

use anyhow::Result;

use crate::tokenizer::Tokens;

#[cfg(feature = "onnx")]
pub mod tract;
#[cfg(feature = "onnx")]
pub use tract::{set_threads, Engine};

/// The model's output for a batch: `batch × seq × hidden` floats, row-major. `seq` may exceed
/// the batch's (padding added by the engine); rows past a window's tokens are padding.
pub struct Hidden {
    pub data: Vec<f32>,
    pub seq: usize,
}

/// An engine: batches of tokens in, hidden states out.
pub trait Infer: Send + Sync {
    /// Hidden size: the width of every output row.
    fn hidden(&self) -> usize;
    fn run(&self, b: &Tokens) -> Result<Hidden>;
}
