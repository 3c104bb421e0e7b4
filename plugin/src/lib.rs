//! DNABERT in Rust: k-mer tokenizer, Hugging Face model folders, an ONNX export of the encoder,
//! CPU inference through tract, and the `embed` pipeline.

pub mod checkpoint;
pub mod config;
pub mod cuda;
pub mod device;
pub mod embed;
pub mod engine;
pub mod fasta;
pub mod io_util;
pub mod model_dir;
pub mod npy;
pub mod onnx_export;
pub mod scatter;
pub mod splice;
pub mod tokenizer;
pub mod train;
pub mod vocab;
