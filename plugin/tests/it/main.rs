//! The integration tests, as one test binary: each file a module (they share the helpers in
//! `common`, `pipelines` and `cuda_emulator`, and one link of the crate). Run one part with
//! `cargo test --test it MODULE::` (e.g. `cargo test --test it gpu_parity::`).

mod common;
mod cuda_emulator;
mod pipelines;

mod bad_config;
mod bad_input;
mod cuda_emulated;
mod cuda_gemm;
mod cuda_kernels;
mod data_parallel;
mod embed_matches_hf;
mod finetune_predict;
mod gpu_parity;
mod models;
mod plugin_features;
mod plugins;
mod pretrain_resume;
mod report;
mod shipped_model;
mod splice_sites;
mod train_parity;
mod workflow_conventions;
mod workflows_local;
mod workflows_slurm;
