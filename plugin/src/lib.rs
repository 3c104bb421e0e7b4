//! DNABERT in Rust: k-mer tokenizer, Hugging Face model folders (from disk or the Hub, in
//! safetensors or `pytorch_model.bin`), an ONNX export of the encoder, CPU inference through
//! tract, the `embed` pipeline, and training on CPU and GPU backends.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod config_reference;
pub mod convert;
pub mod cuda;
pub mod device;
pub mod embed;
pub mod engine;
pub mod fasta;
pub mod folder;
pub mod hub;
pub mod io_util;
pub mod layout;
pub mod model_dir;
pub mod net;
pub mod npy;
pub mod onnx_export;
pub mod remote;
pub mod rng;
pub mod scatter;
pub mod splice;
pub mod tokenizer;
pub mod train;
pub mod vocab;
